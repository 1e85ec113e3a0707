// The pure core of folder sync: three trees in, a list of actions out. No files, no
// network, no clock, so every decision can be tested on its own (tests/unit/sdk/).
//
// The three trees (the "three-tree" model):
//   local   what is in the local folder now (scanned, with content hashes);
//   remote  what is in the remote folder as of the change feed's cursor;
//   synced  what both sides held when a path was last synced (remote revision and hash).
// A side "changed" a path when it differs from `synced`. Changed on one side only: the
// change is copied to the other side. Changed on both: the same content is simply recorded;
// different content is a conflict (see plan_sync). Paths are relative to the synced folder,
// '/'-separated, with no leading or trailing '/' ("docs/report.pdf").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autosync/base/error.hpp"
#include "autosync/base/sha256.hpp"

namespace autosync::sdk {

struct change;
struct entry;

// A file or folder on the server, as the feed or a list reported it.
struct remote_item {
  bool folder = false;
  // Stable across moves (the server's entry id, or for folders the feed created, one made
  // from their creation seq). 0: unknown, so moves of this item are not recognised.
  std::uint64_t id = 0;
  std::uint64_t revision = 0;  // files: the revision (only grows); folders: informational
  std::uint64_t size = 0;
  sha256_digest hash;         // files: of the whole content
  std::int64_t mtime_us = 0;  // files: the modification time a download gives the file
};

// A file or folder in the local folder as scanned.
struct local_item {
  bool folder = false;
  std::uint64_t size = 0;
  sha256_digest hash;  // files
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
};

using remote_tree = std::map<std::string, remote_item>;
using local_tree = std::map<std::string, local_item>;

struct sync_trees {
  local_tree local;
  remote_tree remote;
  remote_tree synced;
  // The inode each path had when last scanned: a folder with a new path and an old inode
  // was renamed locally.
  std::map<std::string, std::uint64_t> last_inodes;
  // Paths the scan could not read (permissions, symbolic links): they and everything below
  // are left alone on both sides, never mistaken for deletions.
  std::vector<std::string> frozen;
};

struct sync_action {
  enum class kind {
    make_remote_folder,    // create `path` on the server
    move_remote,           // a local rename: move `path` to `to` on the server
    move_local,            // a remote move: rename local `path` to `to`
    make_local_folder,     // create local folder `path`
    upload,                // put `path` with `base_revision` (0: must not exist remotely)
    download,              // get `path` (the remote `item`)
    conflict,              // both sides changed `path`: the local file becomes `to` and is
                           // uploaded as new, the remote one is downloaded to `path`
    record,                // both sides already hold the same: remember `item` as synced
    forget,                // both sides deleted `path`: forget it
    delete_local,          // delete local file `path` (if still as scanned: `local`)
    delete_remote,         // delete remote file `path` at `base_revision`
    delete_local_folder,   // remove local folder `path` if empty
    delete_remote_folder,  // delete remote folder `path` with everything below
  };
  kind what = kind::record;
  std::string path;
  std::string to;  // moves, conflict
  std::uint64_t base_revision = 0;
  remote_item item;  // download, record, make_local_folder: what the server holds
  local_item local;  // upload, conflict, delete_local, moves: the local file as scanned
};
const char* to_string(sync_action::kind kind) noexcept;

// A path the plan leaves alone, and why (for people: it says what to do).
struct sync_skip {
  std::string path;
  std::string reason;
};

struct sync_plan {
  std::vector<sync_action> actions;  // in the order to run them
  std::vector<sync_skip> skipped;
  // Files the plan deletes, counted before a folder delete absorbs the files below it.
  std::size_t local_files_deleted = 0;
  std::size_t remote_files_deleted = 0;
  // This pass clears the way (a file that became a folder, or the reverse, on one side
  // only: the other side's entry goes now); the next pass brings the new one across.
  bool another_pass = false;
};

struct plan_options {
  std::string device;  // names conflicted copies
  std::string date;    // YYYY-MM-DD, names conflicted copies
};

// Decides every path of the union of the three trees.
//
// Moves come first: a remote item whose id is now at a new path, with the old path still
// as synced locally, is renamed locally; a local file that vanished while a new local file
// has exactly its hash (the same inode breaks ties), or a local folder with a new path
// and the old inode, is moved on the server. The moved paths are then compared as usual,
// so a move plus an edit is a move plus an upload.
//
// Conflicts are decided the same way on every device: the server's version keeps the name
// (it was accepted first), the local version becomes "name (conflicted copy DEVICE
// YYYY-MM-DD).ext" and is uploaded too, so both devices end with both files. An edit
// beats a deletion: a file edited on one side and deleted on the other is kept, edited.
// A remote folder is deleted with one call once nothing below it is kept.
sync_plan plan_sync(const sync_trees& trees, const plan_options& options);

// The deletion safety limit. `max_delete` set: at most that many files. Unset: at most
// 1000, and at most half of `tracked_files` when more than 10 are tracked. Fails
// `invalid` with a message saying how to go ahead (--max-delete N) when exceeded.
status check_deletions(const sync_plan& plan, std::size_t tracked_files,
                       std::optional<std::size_t> max_delete);

// "dir/name (conflicted copy DEVICE 2026-11-21).ext"; `n` > 1 adds a number before ")"
// for a second copy of the same day. The extension is what follows the last '.', unless
// the name starts with its only '.' (".bashrc").
std::string conflicted_copy_name(const std::string& path, const std::string& device,
                                 const std::string& date, int n = 1);

// --- the remote tree from the change feed -------------------------------------------------

// "/docs/a.txt" under root "/docs" -> "a.txt"; the root itself -> ""; outside: nothing.
std::optional<std::string> relative_to(const std::string& root, const std::string& path);
// The inverse: "a.txt" under "/docs" -> "/docs/a.txt".
std::string remote_path(const std::string& root, const std::string& relative);

struct feed_outcome {
  enum class kind {
    applied,       // the tree is as of the change
    ignored,       // outside the root, or nothing the tree holds
    fetch_needed,  // something came in from outside the root: list `path` as of the change
    root_gone,     // the root itself was deleted or moved away
  };
  kind what = kind::ignored;
  std::string path;  // fetch_needed: the absolute path to list; root_gone: where it moved
};

// Applies one change of the feed to `tree`, the remote folder `root`. Deletes and moves of
// folders take everything below. Files committed below folders the tree lacks create
// those folders (with unknown ids).
feed_outcome apply_change(remote_tree& tree, const std::string& root, const change& c);

// The id given to a folder the feed reports created at `seq` (changes carry no folder ids):
// the high bit keeps it apart from the server's entry ids. make_remote_folder uses it too,
// so a folder this device created matches the feed's report of it.
constexpr std::uint64_t feed_folder_id(std::uint64_t seq) noexcept {
  return 1ull << 63 | seq;
}

// Puts `item` at `relative`, with any missing parent folders.
void insert_with_parents(remote_tree& tree, const std::string& relative, const remote_item& item);

// Removes `relative` and everything below it.
void erase_subtree(remote_tree& tree, const std::string& relative);

// Renames `from` and everything below it to the same place under `to`.
void move_subtree(remote_tree& tree, const std::string& from, const std::string& to);
void move_subtree(local_tree& tree, const std::string& from, const std::string& to);

// The item an entry (from stat, list, a commit or the feed) describes.
remote_item remote_item_of(const entry& e);

}  // namespace autosync::sdk
