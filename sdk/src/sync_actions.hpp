// Carrying out a sync plan: each action against the client or the local folder, with the
// state updated as each succeeds. Internal to the SDK (folder_sync.cpp).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "autosync/sdk/client.hpp"
#include "autosync/sdk/folder_sync.hpp"
#include "sync_state.hpp"

namespace autosync::sdk::internal {

struct action_context {
  client& remote;
  sync_state& state;
  std::filesystem::path local_root;
  std::filesystem::path temp_folder;  // inside the engine folder, same file system
  std::string remote_root;
  const folder_sync_options& options;
  // Called every so often during a long plan so a crash loses little.
  std::function<void()> checkpoint;
};

// Errors every further call would share end a run: nothing is gained by trying the rest.
bool ends_the_pass(const error& e);

class action_runner {
public:
  action_runner(action_context context, sync_summary& summary);

  // Runs the plan's actions in order. A failure of one path is recorded in the summary and
  // the run goes on; an error for which ends_the_pass() holds ends it and is returned.
  status run(const sync_plan& plan);

  // Something met on the way suggests another pass right away would do more: a remote
  // change not yet seen (an upload's conflict), a local file changed since the scan.
  bool again() const noexcept { return again_; }

private:
  status run_one(const sync_action& a);
  status upload(const sync_action& a);
  // The batches of small files: uploads (see flush_uploads) and downloads of files that are
  // one chunk (see flush_downloads). Both are sent before any delete and at the end.
  status flush_batches();
  status flush_uploads();
  status send_pack(const std::vector<const sync_action*>& batch,
                   const std::filesystem::path& pack_file,
                   std::vector<std::optional<file_plan>>& plans);
  status commit_pack(const std::vector<const sync_action*>& batch,
                     std::vector<std::optional<file_plan>>& plans);
  status flush_downloads();
  status download(const std::string& path, const remote_item& item, const local_item* before);
  status finish_download(const std::string& path, const remote_item& item, const local_item* before,
                         std::optional<std::string> content);
  status place(const std::string& path, const std::filesystem::path& temp, const entry& got,
               const local_item* before);
  status conflict(const sync_action& a);
  status delete_local(const sync_action& a);
  status delete_remote(const sync_action& a);
  status delete_local_folder(const sync_action& a);
  status move_local(const sync_action& a);
  status move_remote(const sync_action& a);
  status make_local_folder(const sync_action& a);
  status make_remote_folder(const sync_action& a);
  // Records a failure of one path (ok), or returns an error that ends the pass.
  status fail(const std::string& path, error e);
  void progress(const std::string& path, std::uint64_t bytes_now = 0);
  void done_with(std::uint64_t bytes);
  std::filesystem::path local(const std::string& rel) const;
  std::string remote(const std::string& rel) const;

  action_context c_;
  sync_summary& summary_;
  // Where moves this pass failed to move things from. The plan deletes a remote folder once
  // everything in it has moved out: one of these still holds what did not.
  std::vector<std::string> unmoved_;
  std::vector<const sync_action*> uploads_;  // small uploads not yet sent
  std::uint64_t uploads_bytes_ = 0;
  std::vector<const sync_action*> downloads_;  // one-chunk downloads not yet fetched
  std::uint64_t downloads_bytes_ = 0;
  sync_progress progress_;
  bool again_ = false;
  std::size_t since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_;
};

}  // namespace autosync::sdk::internal
