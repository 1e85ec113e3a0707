// SHA-256 digests: chunk names, whole-file hashes and the per-user event hash chain.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace autosync {

struct sha256_digest {
  static constexpr std::size_t size = 32;
  std::array<std::uint8_t, size> bytes{};

  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  std::string hex() const;
  bool is_zero() const noexcept;

  // Exactly 32 bytes, or nothing.
  static std::optional<sha256_digest> from_bytes(std::string_view raw) noexcept;
  // Exactly 64 hex digits (either case), or nothing.
  static std::optional<sha256_digest> from_hex(std::string_view hex) noexcept;

  friend bool operator==(const sha256_digest& a, const sha256_digest& b) noexcept {
    return a.bytes == b.bytes;
  }
  friend bool operator!=(const sha256_digest& a, const sha256_digest& b) noexcept {
    return !(a == b);
  }
  friend bool operator<(const sha256_digest& a, const sha256_digest& b) noexcept {
    return a.bytes < b.bytes;
  }
};

// One-shot digest. Uses the CPU's SHA extensions through OpenSSL where present.
sha256_digest sha256(std::string_view data) noexcept;

// Incremental digest for data that arrives in pieces (streamed uploads, whole files).
class sha256_hasher {
public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;

  void update(std::string_view data) noexcept;
  // Ends the digest; the hasher may not be updated afterwards.
  sha256_digest finish() noexcept;

private:
  void* context_;  // EVP_MD_CTX, kept opaque so OpenSSL headers stay out of this one
};

std::string to_hex(std::string_view bytes);

}  // namespace autosync
