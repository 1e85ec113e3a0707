#include "local_watch.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "local_scan.hpp"

namespace autosync::sdk::internal {

namespace {

// What counts as a change. Not IN_ACCESS or IN_OPEN (reads), nor IN_ATTRIB (permissions:
// not synced; an mtime change alone does not change content either).
constexpr std::uint32_t watch_mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                                     IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                     IN_ONLYDIR;

}  // namespace

result<std::unique_ptr<local_watch>> local_watch::open(const std::filesystem::path& root) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return error(
        error_kind::unavailable,
        std::string("cannot watch the folder for changes (inotify: ") + std::strerror(errno) + ")");
  }
  return std::unique_ptr<local_watch>(new local_watch(fd, root));
}

local_watch::~local_watch() {
  ::close(fd_);
}

status local_watch::watch_tree() { return watch_from(root_); }

status local_watch::watch_from(const std::filesystem::path& top) {
  std::vector<std::filesystem::path> pending{top};
  while (!pending.empty()) {
    const auto folder = std::move(pending.back());
    pending.pop_back();
    // Adding a watch twice is harmless: the kernel returns the same one.
    const int wd = ::inotify_add_watch(fd_, folder.c_str(), watch_mask);
    if (wd < 0) {
      if (errno == ENOSPC) {
        return error(error_kind::unavailable,
                     "too many folders to watch (raise fs.inotify.max_user_watches); changes "
                     "here are still found by the periodic pass");
      }
      continue;  // gone, or unreadable (the scan reports it)
    }
    if (folder == root_) root_watch_ = wd;
    folders_[wd] = folder;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
      if (folder == root_ && it->path().filename() == engine_folder_name) continue;
      pending.push_back(it->path());
    }
  }
  return status::ok();
}

bool local_watch::wait(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return false;
  return read_events();
}

// Consumes every queued event; true if one is about the tree rather than the engine's own
// folder (whose entry in the root is the only part of it watched).
bool local_watch::read_events() {
  alignas(inotify_event) char buffer[64 * 1024];
  bool changed = false;
  for (;;) {
    const auto n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) break;
    for (std::size_t at = 0; at < static_cast<std::size_t>(n);) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
      at += sizeof(inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) changed = true;
      if (event->mask & IN_IGNORED) {
        folders_.erase(event->wd);
        continue;
      }
      const bool ours = event->wd == root_watch_ && event->len > 0 &&
                        std::strcmp(event->name, engine_folder_name) == 0;
      if (ours) continue;
      changed = true;
      if ((event->mask & IN_ISDIR) && (event->mask & (IN_CREATE | IN_MOVED_TO)) && event->len > 0) {
        if (auto at = folders_.find(event->wd); at != folders_.end()) {
          (void)watch_from(at->second / event->name);  // at the limit: the periodic pass
        }
      }
    }
  }
  return changed;
}

}  // namespace autosync::sdk::internal
