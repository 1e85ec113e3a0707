// Chunk contents live in append-only pack files beside RocksDB, written once.
//
// Kept in RocksDB (even as blob files) every chunk byte is written twice, to the WAL and
// again at flush, and the disk's bandwidth halves; a pack is written once and fsynced
// before the index entry that names it, so an indexed chunk is always on disk.
//
// File: <journal>/chunks/<8 hex digits>.pack, each a sequence of records:
//   magic "ASPK" (4 bytes) | sealed length (u32 LE) | CRC-32 of the sealed bytes (u32 LE)
//   | reserved (4 bytes, zero) | sealed bytes
// No byte is ever written twice: a crash or a failed write may leave unindexed bytes at
// the end of a pack, and appends then continue in the next pack, so packs can be copied
// incrementally and walked record by record.
//
// Reclaimed space: <8 hex digits>.reclaimed beside a pack lists, append-only, the byte
// ranges of its records no index names any more (from, to: u64 LE each), each synced
// before the whole pages inside it are punched out of the pack (the space goes back to the
// file system; offsets stay). A walk steps over the listed ranges, and a read that lands in
// one is not_found, not corruption. A copy of a pack is valid with any copy of its list at
// least as new: a listed range reads either as it was or as zeros, and is never checked.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autosync/base/error.hpp"

namespace autosync::journal {

struct pack_location {
  std::uint32_t pack = 0;
  std::uint64_t offset = 0;         // of the record header
  std::uint32_t sealed_length = 0;  // bytes after the header
};

class pack_store {
public:
  static constexpr std::size_t header_bytes = 16;
  // A pack is closed when it passes this size: small enough to copy or verify in one go,
  // large enough that a big store has few files.
  static constexpr std::uint64_t pack_bytes_max = 1ull << 30;
  // Records at least this long are bulk (chunks of large files: their average is 64 KiB and
  // more; a small file's are 16 KiB on average): their pages leave the cache once synced.
  static constexpr std::uint32_t bulk_record_bytes = 32u << 10;
  // An append of bulk records this long or longer bypasses the page cache (O_DIRECT) for
  // its whole pages: see write_direct.
  static constexpr std::uint64_t direct_bytes_min = 256u << 10;

  // Durably records that pack numbers up to and including this one are taken; called
  // before a pack file is created.
  using reserve_fn = std::function<status(std::uint32_t pack)>;

  // Opens the packs in `dir` (creating it unless read-only). Appends go to a new pack
  // numbered at least `first_unused` and above every existing one.
  static result<std::unique_ptr<pack_store>> open(const std::filesystem::path& dir, bool read_only,
                                                  std::uint32_t first_unused, reserve_fn reserve);
  ~pack_store();
  pack_store(const pack_store&) = delete;
  pack_store& operator=(const pack_store&) = delete;

  // The CRC-32 a record carries for its sealed bytes. Callers compute it on their own
  // threads (beside the hashing and sealing), so that the single writer only writes.
  static std::uint32_t checksum(std::string_view sealed);

  struct record {
    std::string_view sealed;
    std::uint32_t crc = 0;  // checksum(sealed)
  };
  // Appends records and makes them durable (fdatasync) before returning their locations.
  // Thread safe. On failure nothing returned may be indexed.
  result<std::vector<pack_location>> append_durably(const std::vector<record>& records);

  // Releases the space of records no index names any more (see the file comment).
  // Adjacent records are released as one range. Returns those it left for later: records
  // in a pack another link also names (a checkpoint's, which must keep every byte), or in a
  // pack it could not change (reported on stderr). Records in a pack that is gone count as
  // released. Thread safe; reads of other records and appends go on meanwhile.
  std::vector<pack_location> release(std::vector<pack_location> records);

  // The reclaimed ranges listed beside `pack_file`, sorted by start.
  static std::vector<std::pair<std::uint64_t, std::uint64_t>> reclaimed_ranges(
      const std::filesystem::path& pack_file);

  // The sealed bytes at `at`, checked for framing and CRC; not_found when its space was
  // reclaimed. Thread safe.
  result<std::string> read(const pack_location& at) const;

  const std::filesystem::path& dir() const noexcept { return dir_; }
  // Bytes written with O_DIRECT since open.
  std::uint64_t direct_bytes() const noexcept {
    return direct_bytes_.load(std::memory_order_relaxed);
  }

  // Every pack file, in order.
  static std::vector<std::filesystem::path> list(const std::filesystem::path& dir);
  // Walks every record of one pack file, checking framing and CRCs, stepping over the
  // reclaimed ranges listed beside it; returns the count of records checked.
  static result<std::uint64_t> verify_file(const std::filesystem::path& file);

private:
  pack_store(std::filesystem::path dir, bool read_only) : dir_(std::move(dir)), read_only_(read_only) {}
  status open_for_append(std::uint32_t pack);
  // Writes `total` bytes of records at current_end_, whole pages through direct_fd_.
  // False when it wrote nothing and the caller should write them through the page cache.
  result<bool> write_direct(const std::vector<iovec>& iov, std::uint64_t total);
  // Writes len bytes at offset through the page cache, or through direct_fd_ (aligned),
  // continuing through the cache when the file system refuses direct writes.
  status write_at(const char* data, std::uint64_t len, std::uint64_t offset, bool direct);
  int reader_fd(std::uint32_t pack) const;
  result<std::string> read_checked(const pack_location& at) const;
  // Appends the runs to the pack's list of reclaimed ranges, durably.
  status list_reclaimed(std::uint32_t pack,
                        const std::vector<std::pair<std::uint64_t, std::uint64_t>>& runs);
  void release_cached(std::uint64_t from, std::uint64_t to) const;

  std::filesystem::path dir_;
  bool read_only_;
  reserve_fn reserve_;
  std::mutex append_mutex_;
  std::uint32_t current_pack_ = 0;
  int current_fd_ = -1;
  int direct_fd_ = -1;  // the same pack opened with O_DIRECT; -1 where unsupported
  std::atomic<std::uint64_t> direct_bytes_{0};
  // Page-aligned memory the records of a direct write are gathered into; kept between
  // appends (its pages stay resident, unlike the page cache's).
  std::unique_ptr<char, void (*)(void*)> staging_{nullptr, [](void* p) { std::free(p); }};
  std::uint64_t staging_bytes_ = 0;
  std::uint64_t current_end_ = 0;
  bool broken_ = false;  // the last append failed: continue in a new pack
  // Packs whose reclaimed list this process has created or found and whose folder it has
  // synced since. Only release() uses it, and releases never run at once.
  std::set<std::uint32_t> lists_synced_;
  mutable std::mutex readers_mutex_;
  mutable std::unordered_map<std::uint32_t, int> readers_;
};

std::filesystem::path pack_path(const std::filesystem::path& dir, std::uint32_t pack);
// The list of reclaimed ranges beside a pack file.
std::filesystem::path reclaimed_path(const std::filesystem::path& pack_file);

}  // namespace autosync::journal
