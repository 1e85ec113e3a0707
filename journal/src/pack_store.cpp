#include "pack_store.hpp"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>

#include "autosync/journal/journal.hpp"
#include "sealer.hpp"

namespace autosync::journal {

namespace fs = std::filesystem;

namespace {

constexpr char magic[4] = {'A', 'S', 'P', 'K'};

void put_u32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

std::uint32_t get_u32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(in[i]);
  return v;
}

void put_u64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

std::uint64_t get_u64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(in[i]);
  return v;
}

error io_error(const std::string& what, const fs::path& file, int err) {
  std::string message = what + " " + file.string() + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    return error(error_kind::unavailable,
                 message + "; the disk is full: free space, then retry (nothing was acknowledged)");
  }
  return error(error_kind::unavailable, message + "; check the disk, then retry");
}

status sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return io_error("opening folder", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("syncing folder", dir, err);
  return status::ok();
}

std::optional<std::uint32_t> pack_number(const fs::path& file) {
  const std::string name = file.filename().string();
  if (name.size() != 13 || file.extension() != ".pack") return std::nullopt;
  std::uint32_t n = 0;
  for (int i = 0; i < 8; ++i) {
    char c = name[static_cast<std::size_t>(i)];
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    n = n << 4 | static_cast<std::uint32_t>(v);
  }
  return n;
}

}  // namespace

fs::path pack_path(const fs::path& dir, std::uint32_t pack) {
  char name[32];
  std::snprintf(name, sizeof name, "%08x.pack", pack);
  return dir / name;
}

fs::path reclaimed_path(const fs::path& pack_file) {
  fs::path p = pack_file;
  return p.replace_extension(".reclaimed");
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> pack_store::reclaimed_ranges(
    const fs::path& pack_file) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const int fd = ::open(reclaimed_path(pack_file).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char entry[16];
  // A torn last entry (a crash mid-append) is ignored: its range was not punched yet.
  while (::read(fd, entry, sizeof entry) == static_cast<ssize_t>(sizeof entry)) {
    const std::uint64_t from = get_u64(entry), to = get_u64(entry + 8);
    if (from < to) out.emplace_back(from, to);
  }
  ::close(fd);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> pack_store::list(const fs::path& dir) {
  std::vector<std::pair<std::uint32_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (auto n = pack_number(entry.path())) found.emplace_back(*n, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

result<std::unique_ptr<pack_store>> pack_store::open(const fs::path& dir, bool read_only,
                                                     std::uint32_t first_unused,
                                                     reserve_fn reserve) {
  std::unique_ptr<pack_store> store(new pack_store(dir, read_only));
  store->reserve_ = std::move(reserve);
  if (read_only) return store;
  std::error_code ec;
  if (fs::create_directories(dir, ec)) {
    if (auto s = sync_dir(dir.parent_path()); !s) return std::move(s).err();
  }
  if (ec) return error(error_kind::unavailable, "cannot create " + dir.string() + ": " + ec.message());
  // Every open starts a new pack: whatever a crash left after the last record of the old
  // one stays at its end, so no byte of a pack is ever written twice and a pack can be
  // copied incrementally (backups) and walked record by record (verification).
  auto packs = list(dir);
  std::uint32_t next = packs.empty() ? 0 : *pack_number(packs.back()) + 1;
  next = std::max(next, first_unused);
  // A pack left empty by the previous run (opened, never written) is used rather than
  // leaving one empty file per restart; unless it has another name too (a checkpoint links
  // the packs of a live node, whose current one may still be empty: both would append to
  // the same file).
  if (!packs.empty() && fs::file_size(packs.back(), ec) == 0 && !ec &&
      fs::hard_link_count(packs.back(), ec) == 1 && !ec && *pack_number(packs.back()) + 1 == next) {
    --next;
  }
  if (auto s = store->open_for_append(next); !s) return std::move(s).err();
  return store;
}

pack_store::~pack_store() {
  if (current_fd_ >= 0) ::close(current_fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  for (auto& [pack, fd] : readers_) ::close(fd);
}

status pack_store::open_for_append(std::uint32_t pack) {
  const fs::path file = pack_path(dir_, pack);
  const bool existed = fs::exists(file);
  if (!existed && reserve_) {
    if (auto s = reserve_(pack); !s) return s;
  }
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("opening pack", file, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return io_error("reading the size of pack", file, err);
  }
  if (!existed) {
    if (auto s = sync_dir(dir_); !s) {
      ::close(fd);
      return s;
    }
  }
  if (current_fd_ >= 0) ::close(current_fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  current_fd_ = fd;
  // Where the file system has no direct I/O (tmpfs), every write goes through the cache.
  direct_fd_ = ::open(file.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  current_pack_ = pack;
  // Bytes past the last indexed record (a crash between write and index) are never
  // referenced; appending after them keeps the code simple and costs only their space.
  current_end_ = static_cast<std::uint64_t>(st.st_size);
  return status::ok();
}

std::uint32_t pack_store::checksum(std::string_view sealed) {
  // The CRC-32 of zlib and gzip (reflected, initial value and final xor all ones inside).
  return crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(sealed.data()),
                         static_cast<std::uint64_t>(sealed.size()));
}

result<std::vector<pack_location>> pack_store::append_durably(const std::vector<record>& records) {
  std::lock_guard lock(append_mutex_);
  if (read_only_) return error(error_kind::invalid, "chunk store is open read-only");
  if (current_fd_ < 0 || broken_) {
    // The last append failed part way: leave its bytes where they are, in a pack that gets
    // nothing more, and continue in a new one.
    if (auto s = open_for_append(current_pack_ + 1); !s) return std::move(s).err();
    broken_ = false;
  }
  std::uint64_t total = 0;
  for (const auto& r : records) total += header_bytes + r.sealed.size();
  if (current_end_ > 0 && current_end_ + total > pack_bytes_max) {
    if (::fdatasync(current_fd_) != 0) return io_error("syncing pack", pack_path(dir_, current_pack_), errno);
    if (auto s = open_for_append(current_pack_ + 1); !s) return std::move(s).err();
  }
  std::vector<pack_location> locations;
  std::vector<std::array<char, header_bytes>> headers(records.size());
  std::vector<iovec> iov;
  iov.reserve(records.size() * 2);
  std::uint64_t at = current_end_;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string_view sealed = records[i].sealed;
    auto& h = headers[i];
    std::memcpy(h.data(), magic, 4);
    put_u32(h.data() + 4, static_cast<std::uint32_t>(sealed.size()));
    put_u32(h.data() + 8, records[i].crc);
    put_u32(h.data() + 12, 0);
    iov.push_back({h.data(), header_bytes});
    iov.push_back({const_cast<char*>(sealed.data()), sealed.size()});
    locations.push_back({current_pack_, at, static_cast<std::uint32_t>(sealed.size())});
    at += header_bytes + sealed.size();
  }
  const fs::path file = pack_path(dir_, current_pack_);
  bool written = false;
  if (direct_fd_ >= 0 && total >= direct_bytes_min && total / records.size() >= bulk_record_bytes) {
    auto direct = write_direct(iov, total);
    if (!direct) return std::move(direct).err();
    written = *direct;
  }
  std::size_t done = written ? iov.size() : 0;
  std::uint64_t offset = current_end_;
  while (done < iov.size()) {
    const int count = static_cast<int>(std::min<std::size_t>(iov.size() - done, IOV_MAX));
    ssize_t n = ::pwritev(current_fd_, iov.data() + done, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      broken_ = true;
      return io_error("writing pack", file, errno);
    }
    offset += static_cast<std::uint64_t>(n);
    // Advance past fully written vectors; trim a partly written one.
    auto left = static_cast<std::size_t>(n);
    while (left > 0 && done < iov.size()) {
      if (left >= iov[done].iov_len) {
        left -= iov[done].iov_len;
        ++done;
      } else {
        iov[done].iov_base = static_cast<char*>(iov[done].iov_base) + left;
        iov[done].iov_len -= left;
        left = 0;
      }
    }
  }
  if (::fdatasync(current_fd_) != 0) {
    broken_ = true;
    return io_error("syncing pack", file, errno);
  }
  // Runs of bulk records leave the page cache (see release_cached); after a direct write
  // that is the page it began in, completed through the cache.
  for (std::size_t i = 0; i < locations.size();) {
    if (locations[i].sealed_length < bulk_record_bytes) {
      ++i;
      continue;
    }
    const std::uint64_t from = locations[i].offset;
    while (i < locations.size() && locations[i].sealed_length >= bulk_record_bytes) ++i;
    release_cached(from, i < locations.size() ? locations[i].offset : at);
  }
  current_end_ = at;
  return locations;
}

// Bulk appends skip the page cache for their whole pages. Written through the cache, every
// byte of an upload was copied into page-cache pages the guest had not touched for a
// while, and on a VM that hands free memory back to its host the first touch of each
// page faults it in again: that copy was a fifth of the server's CPU during an upload,
// even with the synced pages dropped after each append (release_cached). Gathered into
// staging memory that stays resident and written with O_DIRECT, the disk reads the bytes
// where they are. The partial pages at either end go through the cache as before, so the
// pack's format is unchanged: records stay back to back, no byte is padded or written
// twice. The fdatasync that follows covers both kinds of write.
result<bool> pack_store::write_direct(const std::vector<iovec>& iov, std::uint64_t total) {
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = current_end_;
  const std::uint64_t end = start + total;
  const std::uint64_t head_end = (start + page - 1) / page * page;
  const std::uint64_t tail_start = end / page * page;
  if (tail_start <= head_end) return false;
  // The byte at file offset start + i sits at staging + start % page + i, so the file's
  // whole pages are whole, aligned pages of memory.
  const std::uint64_t lead = start % page;
  const std::uint64_t wanted = (lead + total + page - 1) / page * page;
  if (staging_bytes_ < wanted) {
    staging_.reset();
    staging_bytes_ = 0;
    void* memory = nullptr;
    if (::posix_memalign(&memory, page, wanted) != 0) return false;
    staging_.reset(static_cast<char*>(memory));
    staging_bytes_ = wanted;
  }
  char* data = staging_.get() + lead;
  char* out = data;
  for (const auto& v : iov) {
    std::memcpy(out, v.iov_base, v.iov_len);
    out += v.iov_len;
  }
  if (auto s = write_at(data, head_end - start, start, false); !s) return std::move(s).err();
  if (auto s = write_at(data + (head_end - start), tail_start - head_end, head_end, true); !s) {
    return std::move(s).err();
  }
  if (auto s = write_at(data + (tail_start - start), end - tail_start, tail_start, false); !s) {
    return std::move(s).err();
  }
  return true;
}

status pack_store::write_at(const char* data, std::uint64_t len, std::uint64_t offset, bool direct) {
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  while (len > 0) {
    // A short direct write leaves the rest unaligned: the cache takes it from there.
    if (direct && (direct_fd_ < 0 || offset % page != 0 || len % page != 0)) direct = false;
    const ssize_t n = ::pwrite(direct ? direct_fd_ : current_fd_, data, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (direct && errno == EINVAL) {
        // The file system takes no direct writes after all: the cache does from now on.
        ::close(direct_fd_);
        direct_fd_ = -1;
        continue;
      }
      broken_ = true;
      return io_error("writing pack", pack_path(dir_, current_pack_), errno);
    }
    if (direct) direct_bytes_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    data += n;
    len -= static_cast<std::uint64_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return status::ok();
}

// A pack is written once and read back only when a device downloads, so the synced pages
// of bulk records (chunks of large files) are dropped from the page cache: a large upload
// then does not push the journal's working set (RocksDB's blocks, recent events, small
// files) out of memory, and the next write reuses the pages just freed instead of ones
// never touched. On a VM that hands free memory back to its host, writing into untouched
// pages cost 2 ms per MiB on the writer thread, ten times a reused page (measured: see
// docs/BENCHMARKS.md). Small records stay cached: they are little memory, and they are
// the files other devices fetch right after one synced them. The page a run ends in is
// kept: the next record or append fills it, and dropping it would make that append read it
// back from disk.
void pack_store::release_cached(std::uint64_t from, std::uint64_t to) const {
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = from / page * page;  // complete now, whatever it began with
  const std::uint64_t end = to / page * page;
  if (end <= start) return;
  // Advice only: when it fails (a file system without a page cache) nothing is lost.
  ::posix_fadvise(current_fd_, static_cast<off_t>(start), static_cast<off_t>(end - start),
                  POSIX_FADV_DONTNEED);
}

status pack_store::list_reclaimed(std::uint32_t pack,
                                  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& runs) {
  std::string entries;
  for (const auto& [from, to] : runs) {
    char entry[16];
    put_u64(entry, from);
    put_u64(entry + 8, to);
    entries.append(entry, sizeof entry);
  }
  const fs::path list = reclaimed_path(pack_path(dir_, pack));
  const int fd = ::open(list.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("opening the reclaimed list", list, errno);
  // After a torn last entry (a crash mid-append), the next entry goes where it began.
  struct stat st {};
  int err = 0;
  if (::fstat(fd, &st) != 0) err = errno;
  const auto whole = static_cast<off_t>(static_cast<std::uint64_t>(st.st_size) / 16 * 16);
  if (err == 0 && whole != st.st_size && ::ftruncate(fd, whole) != 0) err = errno;
  if (err == 0) {
    const auto n = ::pwrite(fd, entries.data(), entries.size(), whole);
    if (n != static_cast<ssize_t>(entries.size())) err = n < 0 ? errno : ENOSPC;
  }
  if (err == 0 && ::fdatasync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) return io_error("writing the reclaimed list", list, err);
  // Its name is durable once the folder is synced: once per list and process (a list
  // found already there may have been created by a run that crashed before that).
  if (!lists_synced_.count(pack)) {
    if (auto synced = sync_dir(dir_); !synced) return synced;
    lists_synced_.insert(pack);
  }
  return status::ok();
}

std::vector<pack_location> pack_store::release(std::vector<pack_location> records) {
  std::vector<pack_location> kept;
  if (read_only_) return records;
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.pack != b.pack ? a.pack < b.pack : a.offset < b.offset;
  });
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  for (std::size_t i = 0; i < records.size();) {
    const std::uint32_t pack = records[i].pack;
    std::size_t end_of_pack = i;
    while (end_of_pack < records.size() && records[end_of_pack].pack == pack) ++end_of_pack;
    const auto first = records.begin() + static_cast<std::ptrdiff_t>(i);
    const auto last = records.begin() + static_cast<std::ptrdiff_t>(end_of_pack);
    i = end_of_pack;
    const fs::path file = pack_path(dir_, pack);
    // Left for a later pass, saying why when it is a failure.
    auto keep = [&](std::optional<error> why) {
      if (why) {
        std::fprintf(stderr, "journal storage: %s; reclaimed space in it is released later\n",
                     why->to_string().c_str());
      }
      kept.insert(kept.end(), first, last);
    };
    const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) keep(io_error("opening pack", file, errno));
      continue;  // gone: nothing to give back
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_nlink > 1) {
      keep(std::nullopt);  // a checkpoint links this pack: it keeps every byte it had
      ::close(fd);
      continue;
    }
    // Runs of adjacent records, each [from, to), listed before anything is punched.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
    for (auto r = first; r != last; ++r) {
      const std::uint64_t from = r->offset;
      const std::uint64_t to = from + header_bytes + r->sealed_length;
      if (!runs.empty() && runs.back().second == from) {
        runs.back().second = to;
      } else {
        runs.emplace_back(from, to);
      }
    }
    if (auto listed = list_reclaimed(pack, runs); !listed) {
      keep(std::move(listed).err());
      ::close(fd);
      continue;
    }
    for (const auto& [from, to] : runs) {
      const std::uint64_t begin = (from + page - 1) / page * page;
      const std::uint64_t end = to / page * page;
      if (end <= begin) continue;
      // A file system without hole punching keeps the bytes: the space stays taken, and
      // nothing else changes.
      (void)::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(begin), static_cast<off_t>(end - begin));
    }
    // The punches durable before their pending records may go: lost in a crash, a range
    // would stay listed and full, with nothing left to release it again.
    if (::fdatasync(fd) != 0) keep(io_error("syncing pack", file, errno));
    ::close(fd);
  }
  return kept;
}

int pack_store::reader_fd(std::uint32_t pack) const {
  std::lock_guard lock(readers_mutex_);
  if (auto it = readers_.find(pack); it != readers_.end()) return it->second;
  int fd = ::open(pack_path(dir_, pack).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) readers_.emplace(pack, fd);
  return fd;
}

result<std::string> pack_store::read(const pack_location& at) const {
  auto checked = read_checked(at);
  if (checked) return checked;
  // A record whose space was reclaimed after its index entry was read (by this process,
  // or by the node beside a read-only view): gone, not damaged.
  for (const auto& [from, to] : reclaimed_ranges(pack_path(dir_, at.pack))) {
    if (from <= at.offset && at.offset < to) {
      return error(error_kind::not_found, "reclaimed after the retention period");
    }
  }
  return checked;
}

result<std::string> pack_store::read_checked(const pack_location& at) const {
  const fs::path file = pack_path(dir_, at.pack);
  int fd = reader_fd(at.pack);
  if (fd < 0) {
    return error(error_kind::corruption, "chunk pack " + file.string() + " is missing: " +
                                             std::strerror(errno) + "; restore it from a backup");
  }
  // The location comes from the index, which is not sealed: a damaged one must not size
  // an allocation of gigabytes.
  if (at.sealed_length > limits::chunk_bytes_max + sealed_overhead) {
    return error(error_kind::corruption,
                 "the index names a record of " + std::to_string(at.sealed_length) + " bytes in " +
                     file.string() +
                     ", larger than any chunk: the index is damaged; restore "
                     "it from a backup");
  }
  std::string record(header_bytes + at.sealed_length, '\0');
  std::size_t got = 0;
  while (got < record.size()) {
    ssize_t n = ::pread(fd, record.data() + got, record.size() - got,
                        static_cast<off_t>(at.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("reading pack", file, errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  const std::string where = file.string() + " at offset " + std::to_string(at.offset);
  if (got < record.size()) {
    return error(error_kind::corruption,
                 "pack " + where + " is truncated; restore it from a backup");
  }
  if (std::memcmp(record.data(), magic, 4) != 0 || get_u32(record.data() + 4) != at.sealed_length) {
    return error(error_kind::corruption, "pack " + where + " has no record of the indexed length");
  }
  std::string sealed = record.substr(header_bytes);
  if (pack_store::checksum(sealed) != get_u32(record.data() + 8)) {
    return error(error_kind::corruption, "pack " + where + " fails its CRC");
  }
  return sealed;
}

result<std::uint64_t> pack_store::verify_file(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("opening pack", file, errno);
  struct stat st {};
  ::fstat(fd, &st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = 0, records = 0;
  std::string buffer;
  std::optional<error> failure;
  const auto reclaimed = reclaimed_ranges(file);
  std::size_t next_reclaimed = 0;
  while (offset + header_bytes <= size) {
    // Reclaimed space: step over it, whatever it reads as (as it was, or zeros).
    while (next_reclaimed < reclaimed.size() && reclaimed[next_reclaimed].second <= offset) {
      ++next_reclaimed;
    }
    if (next_reclaimed < reclaimed.size() && reclaimed[next_reclaimed].first <= offset) {
      offset = reclaimed[next_reclaimed].second;
      continue;
    }
    char header[header_bytes];
    if (::pread(fd, header, header_bytes, static_cast<off_t>(offset)) != header_bytes) break;
    if (std::memcmp(header, magic, 4) != 0) break;  // the unindexed tail of a crash
    const std::uint32_t length = get_u32(header + 4);
    if (offset + header_bytes + length > size) break;
    buffer.resize(length);
    if (::pread(fd, buffer.data(), length, static_cast<off_t>(offset + header_bytes)) !=
            static_cast<ssize_t>(length) ||
        pack_store::checksum(buffer) != get_u32(header + 8)) {
      failure = error(error_kind::corruption, "pack " + file.string() + " record at offset " +
                                                  std::to_string(offset) + " fails its CRC");
      break;
    }
    ++records;
    offset += header_bytes + length;
  }
  ::close(fd);
  if (failure) return std::move(*failure);
  return records;
}

}  // namespace autosync::journal
