// RocksDB key layout (docs/journal-format.md is the reference; keep the two in step).
//
//   user prefix   = u8 length | user id bytes
//   events        = user prefix | seq (u64 big-endian)        -> sealed canonical Event
//   snapshots     = user prefix | seq (u64 big-endian)        -> sealed Snapshot
//   chunks        = user prefix | sha256 (32 bytes)            -> ChunkLocation (in a pack)
//   meta          = 'k' | user prefix                          -> the user's key salt (32 bytes)
//                   'l' | user prefix                          -> the seqs of the user's snapshots
//                                                                 (u64 big-endian each, ascending)
//                   "format"                                   -> journal format version
//                   "next_pack"                                -> first unused pack number
// Big-endian sequence numbers make RocksDB's byte order the numeric order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "autosync/base/sha256.hpp"

namespace autosync::journal::keys {

// Tags mixed into the associated data of sealed values, so that a value moved from one
// column family to another (same key bytes) fails authentication.
namespace family_tag {
inline constexpr char event = 'e';
inline constexpr char snapshot = 's';
inline constexpr char chunk = 'c';
}  // namespace family_tag

inline std::string user_prefix(std::string_view user) {
  std::string key;
  key.reserve(1 + user.size() + 32);
  key.push_back(static_cast<char>(user.size()));  // REQUIRES: validated, <= 255 bytes
  key.append(user.data(), user.size());
  return key;
}

inline void append_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline std::uint64_t read_u64(std::string_view bytes) {  // REQUIRES: 8 bytes
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(bytes[i]);
  return v;
}

inline std::string seq_key(std::string_view user, std::uint64_t seq) {
  std::string key = user_prefix(user);
  append_u64(key, seq);
  return key;
}

inline std::string chunk_key(std::string_view user, const sha256_digest& id) {
  std::string key = user_prefix(user);
  key.append(id.view());
  return key;
}

inline std::string salt_key(std::string_view user) { return "k" + user_prefix(user); }
inline std::string snapshot_list_key(std::string_view user) { return "l" + user_prefix(user); }
inline constexpr std::string_view format_key = "format";
inline constexpr std::string_view next_pack_key = "next_pack";

}  // namespace autosync::journal::keys
