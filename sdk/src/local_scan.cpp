#include "local_scan.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

namespace autosync::sdk::internal {

namespace {

constexpr std::size_t hash_piece_bytes = 1u << 20;
// A file written this close to a scan's start may be written again within the same clock
// tick, leaving size and mtime as they were: its hash is not trusted next time.
constexpr std::int64_t racy_window_ns = 1'000'000'000;

local_item item_of(const struct stat& st) {
  local_item item;
  item.folder = S_ISDIR(st.st_mode);
  item.size = item.folder ? 0 : static_cast<std::uint64_t>(st.st_size);
  item.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  item.inode = static_cast<std::uint64_t>(st.st_ino);
  return item;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Names the server accepts: valid UTF-8 (no overlong forms or surrogates) without control
// characters, as actors/path.hpp checks them. Others are left alone with a reason rather
// than failing on every pass.
bool syncable_name(const std::string& name) {
  for (std::size_t i = 0; i < name.size();) {
    const auto b0 = static_cast<unsigned char>(name[i]);
    if (b0 < 0x80) {
      if (b0 < 0x20 || b0 == 0x7f) return false;
      ++i;
      continue;
    }
    const std::size_t len = (b0 & 0xe0) == 0xc0   ? 2
                            : (b0 & 0xf0) == 0xe0 ? 3
                            : (b0 & 0xf8) == 0xf0 ? 4
                                                  : 0;
    if (len == 0 || i + len > name.size()) return false;
    std::uint32_t cp = b0 & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(name[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3f);
    }
    static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp < 0xa0) return false;  // C1 control characters
    i += len;
  }
  return true;
}

class scanner {
public:
 scanner(const std::filesystem::path& root, const local_tree& previous,
         std::int64_t previous_started_ns, const std::function<bool()>& stop, const scan_io& io)
     : root_(root),
       previous_(previous),
       trusted_before_ns_(previous_started_ns - racy_window_ns),
       stop_(stop),
       io_(io) {
   for (const auto& [path, item] : previous_) {
     if (!item.folder) by_inode_.emplace(item.inode, &item);
   }
 }

  result<scan_result> run();

private:
  status walk(const std::string& folder, std::vector<std::string>& pending);
  void add(const std::string& rel, const struct stat& st, std::vector<std::string>& pending);
  void add_file(const std::string& rel, local_item item);
  const local_item* known(const std::string& rel, const local_item& item) const;
  void freeze(const std::string& rel, std::string reason) {
    out_.frozen.push_back(rel);
    out_.skipped.push_back({rel, std::move(reason)});
  }
  std::filesystem::path absolute(const std::string& rel) const {
    return rel.empty() ? root_ : root_ / rel;
  }

  std::filesystem::path root_;
  const local_tree& previous_;
  std::int64_t trusted_before_ns_;
  const std::function<bool()>& stop_;
  const scan_io& io_;
  std::multimap<std::uint64_t, const local_item*> by_inode_;
  bool stopped_ = false;
  scan_result out_;
};

result<scan_result> scanner::run() {
  out_.started_ns = wall_clock_ns();
  std::vector<std::string> pending{""};
  while (!pending.empty()) {
    if (stopped_ || (stop_ && stop_()))
      return error(error_kind::unavailable, "the scan was stopped");
    const auto folder = std::move(pending.back());
    pending.pop_back();
    if (auto walked = walk(folder, pending); !walked) return walked.err();
  }
  if (stopped_) return error(error_kind::unavailable, "the scan was stopped");
  return std::move(out_);
}

// Lists one folder, adding what it holds and queueing its subfolders.
status scanner::walk(const std::string& folder, std::vector<std::string>& pending) {
  DIR* dir = ::opendir(absolute(folder).c_str());
  if (dir == nullptr) {
    const int e = errno;
    if (folder.empty()) {
      return error(error_kind::local_io, "cannot read the folder " + root_.string() + ": " +
                                                std::strerror(e) +
                                                "; check the disk and its permissions");
    }
    if (e == ENOENT || e == ENOTDIR) {
      out_.tree.erase(folder);  // gone while scanning: as if it had not been seen
    } else {
      freeze(folder, std::string("cannot be read (") + std::strerror(e) +
                         "); fix its permissions or move it out of the folder");
    }
    return status::ok();
  }
  for (;;) {
    errno = 0;
    const dirent* d = io_.read_dir(dir);
    if (d == nullptr) {
      // A listing cut short would make everything not yet listed look deleted here, and
      // be deleted on the server: the whole folder is left alone instead.
      const int e = errno;
      if (e != 0 && folder.empty()) {
        ::closedir(dir);
        return error(error_kind::local_io, "cannot list the folder " + root_.string() + ": " +
                                                  std::strerror(e) + "; check the disk");
      }
      if (e != 0) {
        freeze(folder, std::string("could not be listed (") + std::strerror(e) +
                           "); check the disk, or move it out of the folder");
      }
      break;
    }
    const std::string name = d->d_name;
    if (name == "." || name == "..") continue;
    const std::string rel = folder.empty() ? name : folder + "/" + name;
    if (is_reserved(rel)) continue;
    if (!syncable_name(name)) {
      freeze(rel, "has a name that is not valid UTF-8 or holds control characters; rename it");
      continue;
    }
    struct stat st {};
    if (io_.stat_at(::dirfd(dir), d->d_name, &st) != 0) {
      const int e = errno;
      if (e == ENOENT) continue;  // gone since it was listed
      // Skipped, it would look deleted and be deleted on the server.
      freeze(rel, std::string("cannot be looked at (") + std::strerror(e) +
                      "); fix the permissions of its folder or move it out");
      continue;
    }
    add(rel, st, pending);
  }
  ::closedir(dir);
  return status::ok();
}

void scanner::add(const std::string& rel, const struct stat& st,
                  std::vector<std::string>& pending) {
  if (S_ISDIR(st.st_mode)) {
    out_.tree[rel] = item_of(st);
    pending.push_back(rel);
  } else if (S_ISREG(st.st_mode)) {
    add_file(rel, item_of(st));
  } else if (S_ISLNK(st.st_mode)) {
    freeze(rel, "is a symbolic link; links are not synced (copy what it points to instead)");
  } else {
    freeze(rel, "is not a regular file or folder; not synced");
  }
}

void scanner::add_file(const std::string& rel, local_item item) {
  if (const auto* before = known(rel, item)) {
    item.hash = before->hash;
    out_.tree[rel] = item;
    return;
  }
  if (stop_ && stop_()) {
    stopped_ = true;  // the tree now lacks files: run() must not return it
    return;
  }
  auto hash = hash_file(absolute(rel));
  if (!hash) {
    if (hash.err().kind() != error_kind::not_found) freeze(rel, hash.err().message());
    return;
  }
  item.hash = *hash;
  ++out_.files_hashed;
  out_.bytes_hashed += item.size;
  out_.tree[rel] = item;
}

// The previous scan's item for this content: at the same path, or (renamed) at another
// path with the same inode, size and mtime. Only if old enough to be trusted.
const local_item* scanner::known(const std::string& rel, const local_item& item) const {
  auto trusted = [&](const local_item& before) {
    return !before.folder && same_file(before, item) && before.mtime_ns < trusted_before_ns_;
  };
  if (auto it = previous_.find(rel); it != previous_.end() && trusted(it->second)) {
    return &it->second;
  }
  auto [first, last] = by_inode_.equal_range(item.inode);
  for (auto it = first; it != last; ++it) {
    if (trusted(*it->second)) return it->second;
  }
  return nullptr;
}

}  // namespace

bool is_reserved(const std::string& rel_path) {
  const std::string engine = engine_folder_name;
  return rel_path == engine || rel_path.compare(0, engine.size() + 1, engine + "/") == 0 ||
         ends_with(rel_path, download_suffix);
}

result<scan_result> scan_folder(const std::filesystem::path& root, const local_tree& previous,
                                std::int64_t previous_started_ns,
                                const std::function<bool()>& stop) {
  static const scan_io system{[](int dir_fd, const char* name, struct stat* out) {
                                return ::fstatat(dir_fd, name, out, AT_SYMLINK_NOFOLLOW);
                              },
                              [](DIR* dir) { return ::readdir(dir); }};
  return scan_folder(root, previous, previous_started_ns, stop, system);
}

result<scan_result> scan_folder(const std::filesystem::path& root, const local_tree& previous,
                                std::int64_t previous_started_ns, const std::function<bool()>& stop,
                                const scan_io& io) {
  return scanner(root, previous, previous_started_ns, stop, io).run();
}

result<sha256_digest> hash_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return error(error_kind::not_found, file.string() + " is gone");
    return error(error_kind::local_io,
                 std::string("cannot be read (") + std::strerror(e) +
                     "); fix its permissions or move it out of the folder");
  }
  sha256_hasher hasher;
  std::string piece(hash_piece_bytes, '\0');
  for (;;) {
    const auto n = ::read(fd, piece.data(), piece.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return error(error_kind::local_io,
                   std::string("cannot be read (") + std::strerror(e) + ")");
    }
    if (n == 0) break;
    hasher.update(std::string_view(piece.data(), static_cast<std::size_t>(n)));
  }
  ::close(fd);
  return hasher.finish();
}

result<local_item> stat_item(const std::filesystem::path& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return error(error_kind::not_found, file.string() + " does not exist");
    return error(error_kind::local_io, "cannot stat " + file.string() + ": " + std::strerror(e));
  }
  return item_of(st);
}

bool same_file(const local_item& a, const local_item& b) {
  return a.folder == b.folder && a.size == b.size && a.mtime_ns == b.mtime_ns && a.inode == b.inode;
}

std::int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace autosync::sdk::internal
