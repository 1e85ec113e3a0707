// Noticing local changes for folder_sync::watch: inotify on every folder of the tree.
// Internal to the SDK. Linux only, like the rest of the sync engine's file handling.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <unordered_map>

#include "autosync/base/error.hpp"

namespace autosync::sdk::internal {

class local_watch {
public:
  static result<std::unique_ptr<local_watch>> open(const std::filesystem::path& root);
  ~local_watch();
  local_watch(const local_watch&) = delete;
  local_watch& operator=(const local_watch&) = delete;

  // Watches every folder of the tree not watched yet (inotify is not recursive: folders
  // made since the last call need their own watch), except the engine folder. Fails
  // `unavailable` when the system's watch limit is reached; the folders watched so far
  // stay watched.
  status watch_tree();

  // Waits up to `timeout` for events and consumes all that are queued. True when any of
  // them was a change in the tree (or the queue overflowed, losing some). A folder made
  // (or moved in) is watched at once, with everything below it: a write into it before
  // the next pass's watch_tree() would otherwise go unnoticed.
  bool wait(std::chrono::milliseconds timeout);

private:
  local_watch(int fd, std::filesystem::path root) : fd_(fd), root_(std::move(root)) {}
  bool read_events();
  status watch_from(const std::filesystem::path& top);

  int fd_;
  std::filesystem::path root_;
  int root_watch_ = -1;
  std::unordered_map<int, std::filesystem::path> folders_;  // watch descriptor -> folder
};

}  // namespace autosync::sdk::internal
