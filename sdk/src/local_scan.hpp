// The local side of folder sync: what the folder holds, hashed only where it changed.
// Internal to the SDK.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "autosync/base/error.hpp"
#include "autosync/sdk/sync_plan.hpp"

namespace autosync::sdk::internal {

// The folder holding the engine's own files (state, lock, downloads in progress), at the
// top of the synced folder. Never synced.
inline constexpr const char* engine_folder_name = ".autosync";
// What client::get_file writes beside its target until the download is complete. Never
// synced (an `autosync get` into a synced folder may leave one behind).
inline constexpr const char* download_suffix = ".autosync-part";

// Whether a path relative to the synced folder is one of the names this sync keeps for
// itself (the engine folder at the top and what is below it, unfinished downloads).
bool is_reserved(const std::string& rel_path);

struct scan_result {
  local_tree tree;
  std::vector<std::string> frozen;  // unreadable paths and symbolic links: left alone
  std::vector<sync_skip> skipped;   // the same, with the reason for people
  std::int64_t started_ns = 0;      // wall clock when the scan began, as file times are
  std::uint64_t files_hashed = 0;
  std::uint64_t bytes_hashed = 0;
};

// Walks `root` (not its engine folder). A file the previous scan saw with the same size,
// mtime and inode keeps its hash, unless its mtime was within a second of that scan's
// start (a write in the same clock tick could have left the mtime unchanged); a file found
// under a new path with an old inode, size and mtime (renamed) keeps its hash too. Fails
// only when `root` itself cannot be read; `stop` true ends the walk early with an error.
// An entry that cannot be looked at (an error other than "gone"), and a folder whose
// listing fails part way, are frozen: left alone on both sides, never taken for deleted.
result<scan_result> scan_folder(const std::filesystem::path& root, const local_tree& previous,
                                std::int64_t previous_started_ns,
                                const std::function<bool()>& stop);

// The two system calls a scan lists folders with, so tests can make them fail the ways a
// disk or a permission can (a root test process is never refused a stat). `read_dir`
// behaves as readdir: null and errno 0 at the end, null and errno set on an error.
struct scan_io {
  std::function<int(int dir_fd, const char* name, struct stat* out)> stat_at;
  std::function<struct dirent*(DIR* dir)> read_dir;
};
result<scan_result> scan_folder(const std::filesystem::path& root, const local_tree& previous,
                                std::int64_t previous_started_ns, const std::function<bool()>& stop,
                                const scan_io& io);

// The SHA-256 of a file's content, read in pieces.
result<sha256_digest> hash_file(const std::filesystem::path& file);

// What lstat says about `file` (no hash). Fails `not_found` when it does not exist.
result<local_item> stat_item(const std::filesystem::path& file);

// Same size, mtime and inode: unchanged, as far as a scan can tell without reading.
bool same_file(const local_item& a, const local_item& b);

// The wall clock in nanoseconds since 1970, as file times are kept.
std::int64_t wall_clock_ns();

}  // namespace autosync::sdk::internal
