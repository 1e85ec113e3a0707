// Authenticated encryption of stored values (AES-256-GCM) under per-user keys.
//
// Sealed layout: version (1 byte, = 1) | nonce (12 bytes, random) | ciphertext | tag (16).
// The associated data is the value's RocksDB key (with a column family tag), so a sealed
// value copied to another key, user or sequence number fails authentication.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "autosync/base/error.hpp"
#include "autosync/journal/master_key.hpp"

namespace autosync::journal {

struct data_key {
  std::array<std::uint8_t, 32> bytes{};
};

// HKDF-SHA256(ikm = master, salt = the user's random salt, info = "autosync user key v1" + user).
// The salt is stored in the journal; deleting it (and its backups) makes the user's data
// unreadable even to a holder of the master key: crypto-shredding.
data_key derive_user_key(const master_key& master, std::string_view salt, std::string_view user);

constexpr std::size_t sealed_overhead = 1 + 12 + 16;

// What a sealed value is bound to: its column family's tag and its RocksDB key.
struct binding {
  char family_tag;
  std::string_view key;
};

// Appends the sealed form of the concatenated `pieces` to `out`. Pieces spare the caller
// a copy when the plaintext is several buffers (a Cap'n Proto message's segments).
void seal(const data_key& key, binding bound, const std::string_view* pieces, std::size_t count,
          std::string& out);
inline void seal(const data_key& key, binding bound, std::string_view plaintext, std::string& out) {
  seal(key, bound, &plaintext, 1, out);
}

// Opens a sealed value into `out`, which must have room for sealed.size() - sealed_overhead
// bytes. Returns false on any mismatch: wrong key, tampered bytes, a value moved to another
// key, truncation, an unknown version. The caller names what failed.
bool open_sealed(const data_key& key, binding bound, std::string_view sealed, char* out);

// 32 bytes from the operating system's generator.
std::string random_salt();

}  // namespace autosync::journal
