#include "autosync/sdk/folder_sync.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "autosync/base/name_fold.hpp"
#include "autosync/base/utc_time.hpp"
#include "autosync/sdk/client.hpp"
#include "local_scan.hpp"
#include "local_watch.hpp"
#include "sync_actions.hpp"
#include "sync_state.hpp"

namespace autosync::sdk {

namespace {

using namespace std::chrono_literals;

// A pass that met changes it had not seen (see action_runner::again) runs again at once,
// at most this many rounds in all: a file rewritten non-stop must not hold a pass forever.
constexpr int rounds_max = 3;
// Changes per feed request (the server allows up to 10,000; smaller keeps replies small).
constexpr std::uint32_t changes_page_max = 1000;
// watch(): how long one wait in the client for remote changes lasts before the local watch
// is looked at again, i.e. the delay before a local change is noticed.
constexpr auto wait_step = 250ms;
// A burst of local changes (a build, an unzip) is synced once it has been quiet this long,
// or after settle_max at the latest.
constexpr auto settle_quiet = 300ms;
constexpr auto settle_max = 5s;
// After a failed pass, the next one waits this long, doubling up to the maximum.
constexpr auto retry_delay_min = std::chrono::seconds(2);
constexpr auto retry_delay_max = std::chrono::seconds(300);
// When folders cannot all be watched, local changes are found by passes this often.
constexpr auto unwatched_pass_interval = std::chrono::seconds(60);

std::string today_utc() {
  return format_utc(internal::wall_clock_ns() / 1000).substr(0, 10);
}

std::string parent_path_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

result<std::string> normalize_remote(std::string remote) {
  if (remote.empty() || remote[0] != '/') {
    return error(error_kind::invalid,
                 "the remote folder \"" + remote + "\" must be an absolute path such as /docs");
  }
  while (remote.size() > 1 && remote.back() == '/') remote.pop_back();
  return remote;
}

std::size_t files_in(const remote_tree& tree) {
  return static_cast<std::size_t>(
      std::count_if(tree.begin(), tree.end(), [](const auto& kv) { return !kv.second.folder; }));
}

// Errors another pass cannot fix without someone acting first.
bool retrying_cannot_fix(const error& e) {
  switch (e.kind()) {
    case error_kind::unauthenticated:
    case error_kind::forbidden:
    case error_kind::invalid:
    case error_kind::corruption:
      return true;
    default:
      return false;
  }
}

// The change touches the remote folder (or moves or deletes it).
bool concerns(const std::string& root, const change& c) {
  auto touches = [&](const std::string& path) {
    return !path.empty() && (relative_to(root, path) || relative_to(path, root));
  };
  return touches(c.path) || touches(c.from_path) || (c.file && touches(c.file->path));
}

void add_counts(sync_summary& total, const sync_summary& s) {
  total.uploaded += s.uploaded;
  total.downloaded += s.downloaded;
  total.deleted_local += s.deleted_local;
  total.deleted_remote += s.deleted_remote;
  total.moved_local += s.moved_local;
  total.moved_remote += s.moved_remote;
  total.folders_created_local += s.folders_created_local;
  total.folders_created_remote += s.folders_created_remote;
  total.conflicts += s.conflicts;
  total.bytes_sent += s.bytes_sent;
  total.bytes_received += s.bytes_received;
}

}  // namespace

bool sync_summary::changed() const noexcept {
  return uploaded + downloaded + deleted_local + deleted_remote + moved_local + moved_remote +
             folders_created_local + folders_created_remote + conflicts >
         0;
}

struct folder_sync::impl {
  impl(client& c, folder_sync_options o, internal::folder_lock l, internal::sync_state s)
      : remote(c), options(std::move(o)), lock(std::move(l)), state(std::move(s)) {
    engine_folder = options.local / internal::engine_folder_name;
    state_file = engine_folder / "state.json";
    temp_folder = engine_folder / "tmp";
  }

  // The state says which files are synced: the files it names must be on disk first, or a
  // crash (of the machine, not the process) could leave a downloaded file empty while the
  // state says it is synced, and the next pass would send the empty file to every device.
  // One syncfs for everything written since the last save, instead of an fsync per file;
  // none when this round changed nothing here (`local_changes`: what its summary counts of
  // local writes, renames and deletes so far).
  status save(std::size_t local_changes = 0) {
    const int fd = local_changes != local_flushed
                       ? ::open(options.local.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                       : -1;
    if (fd >= 0) {
      const int flushed = ::syncfs(fd);
      const int e = errno;
      ::close(fd);
      if (flushed != 0) {
        return error(error_kind::local_io, "cannot flush " + options.local.string() +
                                                  " to disk (" + std::strerror(e) +
                                                  "); check the disk and sync again");
      }
      local_flushed = local_changes;
    }
    return internal::save_state(state_file, state);
  }
  std::size_t local_flushed = 0;
  result<bool> run_round(sync_summary& summary);
  status refresh_remote();
  status follow_feed();
  status start_over();
  void learn_cursor_hash();
  status apply(remote_tree& tree, const change& c);
  error root_gone(const std::string& moved_to) const;
  status fetch_at(remote_tree& tree, const std::string& path, std::uint64_t seq);
  status list_remote();
  void wait_for_change(internal::local_watch* local, bool& subscribed, const bool& remote_dirty,
                       const std::function<bool()>& stop, std::chrono::seconds wait_max,
                       std::chrono::seconds resubscribe_delay);

  client& remote;
  folder_sync_options options;
  internal::folder_lock lock;
  internal::sync_state state;
  std::filesystem::path engine_folder;
  std::filesystem::path state_file;
  std::filesystem::path temp_folder;
};

result<std::unique_ptr<folder_sync>> folder_sync::open(client& c, folder_sync_options options) {
  auto root = normalize_remote(options.remote);
  if (!root) return std::move(root).err();
  options.remote = *root;
  std::error_code ec;
  std::filesystem::create_directories(options.local, ec);
  if (!ec) options.local = std::filesystem::canonical(options.local, ec);
  if (ec || !std::filesystem::is_directory(options.local, ec)) {
    return error(error_kind::invalid, options.local.string() +
                                          " cannot be used as the local "
                                          "folder: " +
                                          (ec ? ec.message() : "it is not a folder"));
  }
  const auto engine = options.local / internal::engine_folder_name;
  std::filesystem::create_directories(engine / "tmp", ec);
  if (ec)
    return error(error_kind::local_io,
                 "cannot create " + engine.string() + ": " + ec.message() + "; check the disk");
  auto lock = internal::folder_lock::take(engine / "lock");
  if (!lock) return std::move(lock).err();
  // Left by an interrupted pass: partial downloads and upload packs.
  for (std::filesystem::directory_iterator it(engine / "tmp", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ignored;
    std::filesystem::remove_all(it->path(), ignored);
  }
  auto state = internal::load_state(engine / "state.json");
  if (!state && state.err().kind() != error_kind::not_found) return std::move(state).err();
  if (!state) {
    internal::sync_state fresh;
    fresh.user = c.user();
    fresh.remote_root = options.remote;
    state = std::move(fresh);
  }
  const auto start_over = "; to change that, delete " + engine.string() +
                          " (the next sync then compares both sides afresh and keeps both "
                          "versions of any file that differs)";
  // Names on the server ignore letter case and normalization: "/docs" is "/Docs".
  if (fold_name(state->remote_root) != fold_name(options.remote)) {
    return error(error_kind::invalid, options.local.string() + " syncs with " + state->remote_root +
                                          ", not " + options.remote + start_over);
  }
  options.remote = state->remote_root;  // the server's spelling, once learnt
  if (state->user != c.user()) {
    return error(error_kind::invalid, options.local.string() + " syncs the files of " +
                                          state->user + ", not " + c.user() + start_over);
  }
  return std::unique_ptr<folder_sync>(new folder_sync(
      std::make_unique<impl>(c, std::move(options), std::move(*lock), std::move(*state))));
}

folder_sync::folder_sync(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}
folder_sync::~folder_sync() = default;

const std::filesystem::path& folder_sync::local_folder() const noexcept {
  return impl_->options.local;
}
const std::string& folder_sync::remote_folder() const noexcept {
  return impl_->options.remote;
}

result<sync_summary> folder_sync::run_once() {
  sync_summary total;
  for (int round = 0; round < rounds_max; ++round) {
    sync_summary summary;
    auto again = impl_->run_round(summary);
    add_counts(total, summary);
    // What was skipped or failed in an earlier round was tried again by this one.
    total.skipped = std::move(summary.skipped);
    total.failed = std::move(summary.failed);
    if (!again) return std::move(again).err();
    if (!*again || (impl_->options.stop && impl_->options.stop())) break;
  }
  total.cursor = impl_->state.cursor;
  return total;
}

// One round: remote changes in, local scan, plan, act. True when another round would do
// more (see action_runner::again).
result<bool> folder_sync::impl::run_round(sync_summary& summary) {
  if (auto refreshed = refresh_remote(); !refreshed) return std::move(refreshed).err();
  auto scan =
      internal::scan_folder(options.local, state.scanned, state.scanned_at_ns, options.stop);
  if (!scan) return std::move(scan).err();
  sync_trees trees;
  trees.local = scan->tree;
  trees.remote = state.remote;
  trees.synced = state.synced;
  for (const auto& [path, item] : state.scanned) trees.last_inodes[path] = item.inode;
  trees.frozen = scan->frozen;
  const auto plan = plan_sync(trees, {remote.device_id(), today_utc()});
  summary.skipped = plan.skipped;
  summary.skipped.insert(summary.skipped.end(), scan->skipped.begin(), scan->skipped.end());
  // The remote tree and cursor moved on: keep them even when the pass goes no further.
  if (auto allowed = check_deletions(plan, files_in(state.synced), options.max_delete); !allowed) {
    (void)save();
    return std::move(allowed).err();
  }
  state.scanned = std::move(scan->tree);
  state.scanned_at_ns = scan->started_ns;
  local_flushed = 0;
  const auto local_changes = [&summary] {
    return summary.downloaded + summary.deleted_local + summary.moved_local +
           summary.folders_created_local + summary.conflicts;
  };
  internal::action_runner runner({remote, state, options.local, temp_folder, options.remote,
                                  options, [&] { (void)save(local_changes()); }},
                                 summary);
  auto ran = runner.run(plan);
  auto saved = save(local_changes());
  if (!ran) return std::move(ran).err();
  if (!saved) return std::move(saved).err();
  summary.cursor = state.cursor;
  return runner.again();
}

// Brings the remote tree to the end of the change feed. The changes are applied to a copy
// that replaces the tree only once all are in, so a failure leaves tree and cursor as they
// were, together.
status folder_sync::impl::refresh_remote() {
  if (!state.remote_listed) return list_remote();
  if (auto s = follow_feed(); !s) return s;
  // A server restored from a backup may still know the cursor but not what came after it:
  // a revision this side synced beyond the server's newest change says it lost history.
  // Those files must not read as deleted there: start over as after an unknown cursor.
  if (std::any_of(state.synced.begin(), state.synced.end(),
                  [&](const auto& synced) { return synced.second.revision > state.cursor; })) {
    return start_over();
  }
  return status::ok();
}

// The server lost history this side saw. What was synced since is not on it, and must not
// read as deleted there: forget what was synced and list afresh, so this side's files go
// up again (a file that differs from the server's becomes a conflicted copy, never a
// delete).
status folder_sync::impl::start_over() {
  state.synced.clear();
  return list_remote();
}

status folder_sync::impl::follow_feed() {
  std::optional<sha256_digest> seen;
  if (!state.cursor_hash.is_zero()) seen = state.cursor_hash;
  auto page = remote.changes(state.cursor, changes_page_max, seen);
  // The server does not know the cursor, or another event stands there: its journal was
  // restored to an earlier point.
  const auto forgot = [](const result<change_page>& p) {
    return !p && p.err().kind() == error_kind::stale_cursor;
  };
  if (forgot(page)) return start_over();
  if (!page) return std::move(page).err();
  if (page->changes.empty() && !page->more) {
    state.cursor = page->cursor;
    state.cursor_hash = page->cursor_hash;
    return status::ok();
  }
  // What this side wrote since its cursor, by seq: the feed must show it there. Another
  // change at that seq means a server restored from a backup went on without it.
  std::map<std::uint64_t, std::string> ours;
  for (const auto& [path, item] : state.synced) {
    if (item.revision > state.cursor) ours.emplace(item.revision, remote_path(options.remote, path));
  }
  remote_tree tree = state.remote;
  for (;;) {
    for (const auto& c : page->changes) {
      if (auto it = ours.find(c.seq); it != ours.end()) {
        // Compared as the server compares names: it may spell a folder as it holds it.
        const bool same = fold_name(c.path) == fold_name(it->second) &&
                          (c.what == change::kind::committed ||
                                                   c.what == change::kind::restored ||
                                                   c.what == change::kind::folder_created);
        if (!same) return start_over();
      }
      if (auto applied = apply(tree, c); !applied) return applied;
    }
    if (!page->more) break;
    // Each page from where the last ended, named by its hash: a restore between two pages
    // of one pass is caught too.
    page = remote.changes(page->cursor, changes_page_max, page->cursor_hash);
    if (forgot(page)) return start_over();
    if (!page) return std::move(page).err();
  }
  state.remote = std::move(tree);
  state.cursor = page->cursor;
  state.cursor_hash = page->cursor_hash;
  return status::ok();
}

// A listing gives a seq, not the hash of its event: the page that ends on that seq does.
// Without it the next pass could not tell a restored server that went on differently
// from the one listed; failing to learn it leaves that check off until the next page.
void folder_sync::impl::learn_cursor_hash() {
  state.cursor_hash = {};
  if (state.cursor == 0) return;
  auto page = remote.changes(state.cursor - 1, 1);
  if (page && page->cursor == state.cursor) state.cursor_hash = page->cursor_hash;
}

// The remote folder itself went away: nothing here is deleted for that, people decide.
error folder_sync::impl::root_gone(const std::string& moved_to) const {
  const auto start_over = "delete " + engine_folder.string() + " and sync again";
  if (!moved_to.empty()) {
    return error(error_kind::invalid,
                 "the remote folder " + options.remote + " was moved to " + moved_to +
                     " on the server; nothing was changed here. To follow it, " + start_over +
                     " with " + moved_to + " (files that differ are kept in both versions)");
  }
  return error(error_kind::invalid,
               "the remote folder " + options.remote +
                   " was deleted on the server; nothing was changed here. To upload this "
                   "folder there again, " +
                   start_over +
                   "; to get the files back instead, see autosync history and "
                   "undelete");
}

status folder_sync::impl::apply(remote_tree& tree, const change& c) {
  const auto outcome = apply_change(tree, options.remote, c);
  switch (outcome.what) {
    case feed_outcome::kind::root_gone:
      return root_gone(outcome.path);
    case feed_outcome::kind::fetch_needed:
      return fetch_at(tree, outcome.path, c.seq);
    default:
      return status::ok();
  }
}

// Something arrived from outside the remote folder (a move in, a restored folder): the
// feed does not carry its contents, so they are listed as of the change.
status folder_sync::impl::fetch_at(remote_tree& tree, const std::string& path, std::uint64_t seq) {
  const auto rel = relative_to(options.remote, path);
  if (!rel || rel->empty()) return status::ok();
  client::list_options at;
  at.at_seq = seq;
  auto siblings = remote.list(parent_path_of(path), at);
  if (!siblings) return std::move(siblings).err();
  const auto it = std::find_if(siblings->begin(), siblings->end(),
                               [&](const entry& e) { return e.path == path; });
  if (it == siblings->end()) return status::ok();
  insert_with_parents(tree, *rel, remote_item_of(*it));
  if (!it->folder) return status::ok();
  at.recursive = true;
  auto below = remote.list(path, at);
  if (!below) return std::move(below).err();
  for (const auto& e : *below) {
    if (auto r = relative_to(options.remote, e.path); r && !r->empty()) {
      insert_with_parents(tree, *r, remote_item_of(e));
    }
  }
  return status::ok();
}

// The first pass: the remote folder listed together with the feed's sequence number the
// listing is as of, so the feed continues exactly after it, nothing missed or applied
// twice.
status folder_sync::impl::list_remote() {
  if (options.remote != "/") {
    auto root = remote.stat(options.remote);
    if (!root && root.err().kind() == error_kind::not_found) {
      auto made = remote.make_folder(options.remote);
      if (made) {
        state.remote.clear();
        state.cursor = *made;
        learn_cursor_hash();
        state.remote_listed = true;
        return status::ok();
      }
      if (made.err().kind() != error_kind::conflict) return std::move(made).err();
      root = remote.stat(options.remote);  // another device made it meanwhile
    }
    if (!root) return std::move(root).err();
    if (!root->folder) {
      return error(error_kind::invalid, options.remote + " is a file on the server; name a folder");
    }
    // Paths in listings and the change feed are spelt as the server holds them: the root
    // must be too, or nothing below it would be recognised (and would read as deleted).
    options.remote = root->path;
    state.remote_root = root->path;
  }
  client::list_options everything;
  everything.recursive = true;
  auto listed = remote.list_with_cursor(options.remote, everything);
  if (!listed) return std::move(listed).err();
  remote_tree tree;
  for (const auto& e : listed->entries) {
    if (auto r = relative_to(options.remote, e.path); r && !r->empty()) {
      insert_with_parents(tree, *r, remote_item_of(e));
    }
  }
  state.remote = std::move(tree);
  state.cursor = listed->seq;
  state.cursor_hash = listed->seq_hash;
  if (state.cursor_hash.is_zero()) learn_cursor_hash();  // a server that does not send it
  state.remote_listed = true;
  return status::ok();
}

// --- watch ---------------------------------------------------------------------------------

status folder_sync::watch(const std::function<bool()>& stop,
                          const std::function<void(const result<sync_summary>&)>& on_pass) {
  auto& i = *impl_;
  std::unique_ptr<internal::local_watch> local;
  if (auto opened = internal::local_watch::open(i.options.local)) local = std::move(*opened);
  // Watched before the first pass, so that what changes during it is not left for the
  // idle pass; each pass then adds the folders it made.
  if (local) (void)local->watch_tree();
  bool subscribed = false;
  bool remote_dirty = false;
  // The subscription's callback refers to remote_dirty: it must end with this call.
  struct unsubscribe_at_exit {
    client& c;
    ~unsubscribe_at_exit() { c.unsubscribe(); }
  } unsubscribe{i.remote};
  auto retry_delay = retry_delay_min;
  // Without a subscription, remote changes are only found by passes: one comes this soon
  // (doubling while subscribing keeps failing), not after the idle pass interval.
  auto resubscribe_delay = retry_delay_min;
  while (!stop()) {
    remote_dirty = false;
    auto pass = run_once();
    if (on_pass) on_pass(pass);
    std::chrono::seconds wait_max = i.options.idle_pass_interval;
    if (!pass) {
      if (retrying_cannot_fix(pass.err())) return pass.err();
      wait_max = retry_delay;
      retry_delay = std::min(retry_delay * 2, retry_delay_max);
    } else {
      retry_delay = retry_delay_min;
    }
    if (!subscribed) {
      subscribed = i.remote
                       .subscribe(i.state.cursor,
                                  [&](const change& c) {
                                    if (concerns(i.options.remote, c)) remote_dirty = true;
                                  })
                       .is_ok();
    }
    if (!subscribed) wait_max = std::min(wait_max, resubscribe_delay);
    if (!local || !local->watch_tree()) wait_max = std::min(wait_max, unwatched_pass_interval);
    i.wait_for_change(local.get(), subscribed, remote_dirty, stop, wait_max, resubscribe_delay);
    resubscribe_delay =
        subscribed ? retry_delay_min : std::min(resubscribe_delay * 2, retry_delay_max);
  }
  return status::ok();
}

// Returns once a change is noticed on either side, `stop()` holds, or `wait_max` passed;
// within `resubscribe_delay` once the subscription ends (a server restart, a new token
// needed), so that the next pass catches up and subscribes again.
void folder_sync::impl::wait_for_change(internal::local_watch* local, bool& subscribed,
                                        const bool& remote_dirty, const std::function<bool()>& stop,
                                        std::chrono::seconds wait_max,
                                        std::chrono::seconds resubscribe_delay) {
  auto until = std::chrono::steady_clock::now() + wait_max;
  while (!remote_dirty && !stop() && std::chrono::steady_clock::now() < until) {
    if (subscribed) {
      auto waited = remote.wait_for_changes(wait_step, [&] { return remote_dirty || stop(); });
      if (!waited) {
        subscribed = false;
        until = std::min(until, std::chrono::steady_clock::now() + resubscribe_delay);
      }
    }
    const auto local_wait = subscribed ? 0ms : wait_step;
    if (!local) {
      std::this_thread::sleep_for(local_wait);
      continue;
    }
    if (local->wait(local_wait)) {
      const auto settle_until = std::chrono::steady_clock::now() + settle_max;
      while (local->wait(settle_quiet) && !stop() &&
             std::chrono::steady_clock::now() < settle_until) {
      }
      return;
    }
  }
}

}  // namespace autosync::sdk
