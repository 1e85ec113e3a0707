// What a folder sync remembers between passes, in LOCAL/.autosync/state.json. Internal to
// the SDK (folder_sync.cpp); the format is described here because it is only ever read
// by the build that wrote it or a newer one.
//
//   {"format": 1, "user": "alice", "remote_root": "/docs", "cursor": 1742,
//    "remote_listed": true, "scanned_at_ns": 1790000000000000000,
//    "remote":  {"a/b.txt": [0, id, revision, size, "sha256 hex", mtime_us],
//                "a": [1, id, revision, 0, "", 0]},
//    "synced":  {... as "remote" ...},
//    "scanned": {"a/b.txt": [0, size, mtime_ns, inode, "sha256 hex"], "a": [1, 0, mtime_ns, inode,
//    ""]}}
//
// `remote` is the remote folder as of `cursor` (the change feed is applied to it), `synced`
// what both sides held when each path was last synced, `scanned` the last local scan (a
// file with the same size, mtime and inode is not hashed again). Arrays rather than
// objects: a state of 100,000 files stays a few tens of MB.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "autosync/base/error.hpp"
#include "autosync/sdk/sync_plan.hpp"

namespace autosync::sdk::internal {

struct sync_state {
  static constexpr int format = 1;
  std::string user;
  std::string remote_root;
  std::uint64_t cursor = 0;        // the change feed's cursor `remote` is at
  sha256_digest cursor_hash;       // the event at `cursor` (zero: not known yet)
  bool remote_listed = false;      // false: the first pass lists the remote folder
  std::int64_t scanned_at_ns = 0;  // when the scan in `scanned` started
  remote_tree remote;
  remote_tree synced;
  local_tree scanned;
};

// Fails `not_found` when there is no state file (a first sync), `corruption` when it
// cannot be read back (the message says to delete it to start afresh).
result<sync_state> load_state(const std::filesystem::path& file);

// Replaces the file atomically and durably (written beside, fsynced, renamed, the folder
// fsynced): a crash leaves the old state or the new one.
status save_state(const std::filesystem::path& file, const sync_state& state);

// An exclusive lock on a file (flock), held while the object lives: one sync per folder.
class folder_lock {
public:
  // Fails `conflict` when another process holds it.
  static result<folder_lock> take(const std::filesystem::path& file);
  folder_lock(folder_lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  folder_lock& operator=(folder_lock&& other) noexcept;
  folder_lock(const folder_lock&) = delete;
  folder_lock& operator=(const folder_lock&) = delete;
  ~folder_lock();

private:
  explicit folder_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace autosync::sdk::internal
