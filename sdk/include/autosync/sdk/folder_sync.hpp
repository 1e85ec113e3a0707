// Two-way sync of a local folder with a remote folder, over one client.
//
// A pass (run_once) reads the remote changes since the last pass from the change feed (the
// first pass lists the remote folder instead), scans the local folder (hashing only files
// whose size, mtime or inode changed), decides every path with plan_sync (sync_plan.hpp:
// uploads, downloads, deletes, moves, conflicted copies) and carries the decisions out.
// What was synced is remembered in LOCAL/.autosync/state.json, so the next pass knows which
// side changed what. `watch` repeats passes whenever either side changes.
//
// Safe by construction rather than by care:
//   - uploads name the revision they replace, so a remote change the pass had not seen yet
//     fails as a conflict instead of being overwritten (the pass then runs again);
//   - a local file is replaced or deleted only if it is still as scanned;
//   - downloads land in .autosync/tmp and are renamed into place once complete and checked;
//   - a pass that would delete many files stops before changing anything (max_delete);
//   - paths the scan cannot read are left alone on both sides, never taken for deletions;
//   - a folder is deleted on the server as of the view the pass planned from: what another
//     device put inside meanwhile makes it a conflict, and it is fetched next;
//   - a file that becomes a folder (or the reverse) on one side wins over two passes, the
//     old entry first; when the other side added inside the folder, nothing is touched
//     and the clash is reported;
//   - a server that forgot history this side saw (restored from a backup: the cursor is
//     unknown or names another event, synced revisions lie past its newest change, or the
//     feed shows another change at a seq this side wrote) makes
//     the folder start over with nothing counted as synced: what it forgot goes up again,
//     a file that differs becomes a conflicted copy, and nothing is deleted for it;
//   - the names this sync keeps for itself (.autosync at the top, *.autosync-part) are
//     skipped on the server's side too.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autosync/base/error.hpp"
#include "autosync/sdk/sync_plan.hpp"

namespace autosync::sdk {

class client;

// Where a pass is. Files: the actions of the pass (uploads, downloads, deletes, moves, ...);
// bytes: the content to upload and download, whole files (dedup may send less).
struct sync_progress {
  std::uint64_t files_done = 0;
  std::uint64_t files_total = 0;
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::string path;  // what is being worked on
};

struct sync_failure {
  std::string path;
  error err;
};

// What one pass did.
struct sync_summary {
  std::size_t uploaded = 0;
  std::size_t downloaded = 0;
  std::size_t deleted_local = 0;   // files and folders deleted here
  std::size_t deleted_remote = 0;  // files and folders deleted on the server
  std::size_t moved_local = 0;     // remote moves applied here
  std::size_t moved_remote = 0;    // local renames applied on the server
  std::size_t folders_created_local = 0;
  std::size_t folders_created_remote = 0;
  std::size_t conflicts = 0;     // conflicted copies made
  std::uint64_t bytes_sent = 0;  // chunk bytes uploaded (what the server lacked)
  std::uint64_t bytes_received = 0;
  std::vector<sync_skip> skipped;    // left alone, with the reason
  std::vector<sync_failure> failed;  // not synced this pass; the next pass tries again
  std::uint64_t cursor = 0;          // the change feed's cursor after the pass

  // Anything at all changed on either side.
  bool changed() const noexcept;
};

struct folder_sync_options {
  std::filesystem::path local;  // created if missing
  std::string remote = "/";     // absolute; created if missing
  // Files one pass may delete (both sides together). Unset: 1000, and at most half of the
  // synced files once more than 10 are synced.
  std::optional<std::size_t> max_delete;
  // Called often during a pass, on the caller's thread.
  std::function<void(const sync_progress&)> progress;
  // Polled between files: true ends a pass early (what was done is remembered).
  std::function<bool()> stop;
  // Uploads of files up to this size go in batches: their new chunks travel together in one
  // pipelined upload, their commits in one pipelined commit_many. (Downloads of files small
  // enough to be one chunk are batched too: their chunks come in one pipelined get_chunks.)
  std::uint64_t batch_file_bytes_max = 1u << 20;
  // watch(): a full pass at least this often even when nothing was noticed (inotify misses
  // changes on network file systems, and a queue overflow loses events).
  std::chrono::seconds idle_pass_interval{600};
};

class folder_sync {
public:
  // Opens (or starts) the sync of options.local with options.remote: takes the folder's
  // lock (one sync per folder at a time) and reads its state. Nothing is contacted yet.
  // `c` must outlive the folder_sync; both are used on the caller's thread only. Fails
  // `invalid` when the folder already syncs with another remote folder or another user,
  // `conflict` when another sync holds the folder.
  static result<std::unique_ptr<folder_sync>> open(client& c, folder_sync_options options);
  ~folder_sync();
  folder_sync(const folder_sync&) = delete;
  folder_sync& operator=(const folder_sync&) = delete;

  // One pass. A pass that met a remote change it had not seen yet (a conflict on upload) or
  // a local file changing under it runs again at once, up to three times. Fails for what
  // another pass would meet too (unauthenticated, unavailable, the deletion limit, ...);
  // paths that failed alone are in the summary's `failed`.
  result<sync_summary> run_once();

  // Passes until `stop()`: one now, then one after each local change (inotify, every
  // folder watched) or remote change (a subscription to the change feed), waiting for a
  // burst of local changes to settle first. `on_pass` gets every pass's outcome. Returns
  // ok once stopped, or the error of a pass that retrying cannot fix (unauthenticated,
  // forbidden, invalid: the deletion limit, a remote folder deleted, ...); other failures
  // are retried with backoff.
  status watch(const std::function<bool()>& stop,
               const std::function<void(const result<sync_summary>&)>& on_pass);

  const std::filesystem::path& local_folder() const noexcept;
  const std::string& remote_folder() const noexcept;

  struct impl;

private:
  explicit folder_sync(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace autosync::sdk
