#include "autosync/base/sha256.hpp"

// The one-shot digest uses OpenSSL's low-level SHA-256 (deprecated in OpenSSL 3, still
// shipped): through EVP every digest allocates and frees a provider context, measured at
// 8x the instructions of hashing a 200-byte event itself. Both run the same SHA-NI code.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace autosync {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Fetched once: OpenSSL 3 otherwise looks the algorithm up by name for every hasher.
const EVP_MD* sha256_algorithm() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::string sha256_digest::hex() const { return to_hex(view()); }

bool sha256_digest::is_zero() const noexcept {
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

std::optional<sha256_digest> sha256_digest::from_bytes(std::string_view raw) noexcept {
  if (raw.size() != size) return std::nullopt;
  sha256_digest d;
  std::memcpy(d.bytes.data(), raw.data(), size);
  return d;
}

std::optional<sha256_digest> sha256_digest::from_hex(std::string_view hex) noexcept {
  if (hex.size() != size * 2) return std::nullopt;
  sha256_digest d;
  for (std::size_t i = 0; i < size; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return d;
}

sha256_digest sha256(std::string_view data) noexcept {
  sha256_digest d;
  SHA256_CTX context;
  SHA256_Init(&context);
  SHA256_Update(&context, data.data(), data.size());
  SHA256_Final(d.bytes.data(), &context);
  return d;
}

sha256_hasher::sha256_hasher() : context_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(context_), sha256_algorithm(), nullptr);
}

sha256_hasher::~sha256_hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(context_)); }

void sha256_hasher::update(std::string_view data) noexcept {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(context_), data.data(), data.size());
}

sha256_digest sha256_hasher::finish() noexcept {
  sha256_digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(context_), d.bytes.data(), &len);
  return d;
}

}  // namespace autosync
