#include "autosync/sdk/sync_plan.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "autosync/sdk/client.hpp"
#include "autosync/base/name_fold.hpp"
#include "local_scan.hpp"

namespace autosync::sdk {

namespace {

// Without --max-delete, a pass deletes at most this many files: more is far more often a
// mistake (an unmounted disk, a wrong folder) than an intention.
constexpr std::size_t default_delete_files_max = 1000;
// ... and at most half of the synced files, once there are enough for a half to mean much.
constexpr std::size_t half_rule_files_min = 10;
// Moves found in one pass are looked for again after the first round, since a folder move
// can reveal moves below it; this bounds the rounds.
constexpr int move_rounds_max = 4;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// `path` is `folder` or below it. The empty folder is the top: everything is below it.
bool is_under(const std::string& path, const std::string& folder) {
  if (folder.empty() || path == folder) return true;
  return path.size() > folder.size() && path[folder.size()] == '/' && starts_with(path, folder);
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// Renames the key `from` and every key below it to the same place under `to`.
template <class Map>
void rebase(Map& map, const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, typename Map::mapped_type>> moved;
  if (auto it = map.find(from); it != map.end()) {
    moved.emplace_back(to, it->second);
    map.erase(it);
  }
  const std::string prefix = from + "/";
  for (auto it = map.lower_bound(prefix); it != map.end() && starts_with(it->first, prefix);) {
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
    it = map.erase(it);
  }
  for (auto& [key, value] : moved) map[key] = std::move(value);
}

// True when `fn` holds for every key strictly below `folder`. (Not a walk from `folder`
// itself: "a b" and "a.txt" sort between "a" and "a/x".)
template <class Map, class Fn>
bool all_below(const Map& map, const std::string& folder, Fn&& fn) {
  const std::string prefix = folder + "/";
  for (auto it = map.lower_bound(prefix); it != map.end() && starts_with(it->first, prefix); ++it) {
    if (!fn(it->first)) return false;
  }
  return true;
}

template <class Map>
const typename Map::mapped_type* find(const Map& map, const std::string& key) {
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

bool same_content(const local_item& l, const remote_item& r) {
  return l.folder == r.folder && (l.folder || l.hash == r.hash);
}

bool local_changed(const local_item* l, const remote_item* s) {
  if (!l || !s) return l || s;
  return l->folder != s->folder || (!l->folder && l->hash != s->hash);
}

bool remote_changed(const remote_item* r, const remote_item* s) {
  if (!r || !s) return r || s;
  return r->folder != s->folder ||
         (!r->folder && (r->revision != s->revision || r->hash != s->hash));
}

// Where actions go, in the order they run: a move's target must not exist yet, folders
// exist before files are put in them, contents go before the folders that held them.
enum phase : std::size_t {
  moves,
  remote_folders,
  local_folders,
  contents,
  file_deletes,
  folder_deletes,
  phase_count,
};

class planner {
public:
  planner(const sync_trees& trees, const plan_options& options)
      : local_(trees.local),
        remote_(trees.remote),
        synced_(trees.synced),
        inodes_(trees.last_inodes),
        frozen_(trees.frozen),
        options_(options) {
    freeze_reserved_names();
  }

  sync_plan run();

private:
  bool detect_remote_moves();
  void detect_local_folder_moves();
  void detect_local_file_moves();
  void move_remote(const std::string& from, const std::string& to, const local_item& local);
  void ensure_remote_parents(const std::string& path);
  void decide(const std::string& path);
  void push_local_change(const std::string& path, const local_item* l, const remote_item* r);
  void pull_remote_change(const std::string& path, const local_item* l, const remote_item* r);
  void decide_both_changed(const std::string& path, const local_item* l, const remote_item* r);
  void skip_case_collisions();
  void freeze_reserved_names();
  void finish_folder_deletes();
  void drop_unfinished_type_changes(std::vector<std::string>& remote_deleted);
  std::string conflicted_copy_of(const std::string& path);
  bool frozen(const std::string& path) const;
  // Below an entry whose type changes this pass: decided by the next one, once the entry
  // of the old type is gone.
  bool held_below(const std::string& path) const {
    return std::any_of(hold_below_.begin(), hold_below_.end(), [&](const std::string& h) {
      return path != h && is_under(path, h);
    });
  }
  void skip(const std::string& path, std::string reason) {
    plan_.skipped.push_back({path, std::move(reason)});
  }
  sync_action& add(phase p, sync_action::kind what, const std::string& path) {
    auto& action = phases_[p].emplace_back();
    action.what = what;
    action.path = path;
    return action;
  }

  // Working copies: moves rebase them so the per-path comparison sees the moved paths.
  local_tree local_;
  remote_tree remote_;
  remote_tree synced_;
  std::map<std::string, std::uint64_t> inodes_;
  std::vector<std::string> frozen_;
  const plan_options& options_;
  std::array<std::vector<sync_action>, phase_count> phases_;
  std::set<std::string> copies_;  // conflicted copy names chosen so far
  std::set<std::string> hold_below_;
  std::set<std::string> type_changes_;  // paths whose old entry this pass deletes
  sync_plan plan_;
};

const char* const type_clash =
    "is a folder on one side and a file on the other; rename one of them and sync again";

sync_plan planner::run() {
  for (int round = 0; round < move_rounds_max && detect_remote_moves(); ++round) {
  }
  detect_local_folder_moves();
  detect_local_file_moves();
  skip_case_collisions();
  std::set<std::string> paths;
  for (const auto& [path, item] : local_) paths.insert(path);
  for (const auto& [path, item] : remote_) paths.insert(path);
  for (const auto& [path, item] : synced_) paths.insert(path);
  for (const auto& path : paths) {
    if (!frozen(path) && !held_below(path)) decide(path);
  }
  finish_folder_deletes();
  for (auto& actions : phases_) {
    for (auto& action : actions) plan_.actions.push_back(std::move(action));
  }
  return std::move(plan_);
}

// The names this sync keeps for itself locally (its engine folder at the top, unfinished
// downloads) are never scanned here: a remote entry with one would be fetched into a place
// the scan does not look, and the next pass would take it for deleted here and delete it
// on the server. Such entries are left alone on both sides.
void planner::freeze_reserved_names() {
  const std::string engine = internal::engine_folder_name;
  for (const auto& [path, item] : remote_) {
    if (!internal::is_reserved(path) || frozen(path)) continue;
    frozen_.push_back(path);
    skip(path, "has a name this sync keeps for its own files (" + engine + " at the top, \"" +
                   internal::download_suffix + "\" at the end); rename it on the server to sync it");
  }
}

bool planner::frozen(const std::string& path) const {
  return std::any_of(frozen_.begin(), frozen_.end(),
                     [&](const std::string& f) { return is_under(path, f); });
}

// A synced item whose id now lives at a path the synced tree does not know was moved on
// the server: rename it here too, if it is still here and the new name is free.
bool planner::detect_remote_moves() {
  std::map<std::uint64_t, std::string> arrived;
  for (const auto& [path, item] : remote_) {
    if (item.id != 0 && synced_.count(path) == 0) arrived.emplace(item.id, path);
  }
  std::vector<std::pair<std::string, std::string>> moves_found;
  for (const auto& [path, item] : synced_) {
    if (item.id == 0 || remote_.count(path) != 0) continue;
    if (auto it = arrived.find(item.id); it != arrived.end())
      moves_found.emplace_back(path, it->second);
  }
  bool moved = false;
  for (const auto& [from, to] : moves_found) {
    const auto* s = find(synced_, from);
    const auto* l = find(local_, from);
    // Gone: it moved along with its folder (handled in the next round).
    if (!s || !l || l->folder != s->folder || local_.count(to) != 0 || synced_.count(to) != 0 ||
        is_under(to, from) || frozen(from) || frozen(to)) {
      continue;
    }
    auto& action = add(moves, sync_action::kind::move_local, from);
    action.to = to;
    action.local = *l;
    rebase(local_, from, to);
    rebase(synced_, from, to);
    rebase(inodes_, from, to);
    moved = true;
  }
  return moved;
}

// A synced folder gone from here while a new folder has its old inode was renamed here.
void planner::detect_local_folder_moves() {
  std::map<std::uint64_t, std::string> new_folders;
  for (const auto& [path, item] : local_) {
    if (item.folder && item.inode != 0 && synced_.count(path) == 0 && remote_.count(path) == 0) {
      new_folders.emplace(item.inode, path);
    }
  }
  std::vector<std::pair<std::string, std::string>> moves_found;
  for (const auto& [path, item] : synced_) {
    if (!item.folder || local_.count(path) != 0) continue;
    const auto inode = inodes_.find(path);
    if (inode == inodes_.end()) continue;
    if (auto it = new_folders.find(inode->second); it != new_folders.end()) {
      moves_found.emplace_back(path, it->second);
    }
  }
  for (const auto& [from, to] : moves_found) {
    const auto* r = find(remote_, from);
    const auto* s = find(synced_, from);
    if (!r || !s || !r->folder || remote_.count(to) != 0 || is_under(to, from) || frozen(from) ||
        frozen(to)) {
      continue;
    }
    move_remote(from, to, local_.at(to));
  }
}

// A synced file gone from here (and unchanged on the server) while a file new on both sides
// has exactly its content was renamed here. Several candidates: the one with the old inode,
// else the first by path. Empty files all share one hash, so they need the inode.
void planner::detect_local_file_moves() {
  std::multimap<sha256_digest, std::string> new_files;
  for (const auto& [path, item] : local_) {
    if (!item.folder && synced_.count(path) == 0 && remote_.count(path) == 0) {
      new_files.emplace(item.hash, path);
    }
  }
  std::vector<std::string> gone;
  for (const auto& [path, item] : synced_) {
    const auto* r = find(remote_, path);
    if (!item.folder && local_.count(path) == 0 && r && !remote_changed(r, &item)) {
      gone.push_back(path);
    }
  }
  for (const auto& from : gone) {
    const auto s = synced_.at(from);
    const auto inode = inodes_.count(from) != 0 ? inodes_.at(from) : 0;
    auto [first, last] = new_files.equal_range(s.hash);
    auto pick = last;
    for (auto it = first; it != last; ++it) {
      if (inode != 0 && local_.at(it->second).inode == inode) pick = it;
    }
    if (pick == last && s.size > 0) pick = first;
    if (pick == last || frozen(from) || frozen(pick->second)) continue;
    const std::string to = pick->second;
    new_files.erase(pick);
    move_remote(from, to, local_.at(to));
  }
}

void planner::move_remote(const std::string& from, const std::string& to, const local_item& local) {
  ensure_remote_parents(to);
  auto& action = add(moves, sync_action::kind::move_remote, from);
  action.to = to;
  action.local = local;
  rebase(remote_, from, to);
  rebase(synced_, from, to);
  rebase(inodes_, from, to);
}

// A move needs the target's folder on the server: create the missing ones first.
void planner::ensure_remote_parents(const std::string& path) {
  std::vector<std::string> missing;
  for (auto p = parent_of(path); !p.empty() && remote_.count(p) == 0; p = parent_of(p)) {
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    add(moves, sync_action::kind::make_remote_folder, *it);
    remote_item folder;
    folder.folder = true;
    remote_[*it] = folder;
  }
}

void planner::decide(const std::string& path) {
  const auto* l = find(local_, path);
  const auto* r = find(remote_, path);
  const auto* s = find(synced_, path);
  if (l && r && same_content(*l, *r)) {
    if (!s || remote_changed(r, s) || s->folder != r->folder || s->id != r->id) {
      add(contents, sync_action::kind::record, path).item = *r;
    }
    return;
  }
  if (!l && !r) {
    if (s) add(contents, sync_action::kind::forget, path);
    return;
  }
  const bool here = local_changed(l, s);
  const bool there = remote_changed(r, s);
  if (here && !there) {
    push_local_change(path, l, r);
  } else if (there && !here) {
    pull_remote_change(path, l, r);
  } else if (here && there) {
    decide_both_changed(path, l, r);
  }
}


// Changed here only (the server still holds what was synced, or nothing).
void planner::push_local_change(const std::string& path, const local_item* l,
                                const remote_item* r) {
  if (!l) {
    if (r->folder) {
      add(folder_deletes, sync_action::kind::delete_remote_folder, path);
    } else {
      add(file_deletes, sync_action::kind::delete_remote, path).base_revision = r->revision;
      ++plan_.remote_files_deleted;
    }
  } else if (r && l->folder != r->folder) {
    // Only this side changed the type, so it wins: the server's entry goes in this pass (a
    // folder once everything below it goes too), and the next pass sends the new one.
    if (r->folder) {
      add(folder_deletes, sync_action::kind::delete_remote_folder, path);
    } else {
      add(file_deletes, sync_action::kind::delete_remote, path).base_revision = r->revision;
      ++plan_.remote_files_deleted;
      hold_below_.insert(path);
    }
    type_changes_.insert(path);
  } else if (l->folder) {
    add(remote_folders, sync_action::kind::make_remote_folder, path);
  } else {
    auto& action = add(contents, sync_action::kind::upload, path);
    action.base_revision = r ? r->revision : 0;
    action.local = *l;
  }
}

// Changed on the server only (here is still what was synced, or nothing).
void planner::pull_remote_change(const std::string& path, const local_item* l,
                                 const remote_item* r) {
  if (!r) {
    if (l->folder) {
      add(folder_deletes, sync_action::kind::delete_local_folder, path);
    } else {
      add(file_deletes, sync_action::kind::delete_local, path).local = *l;
      ++plan_.local_files_deleted;
    }
  } else if (l && l->folder != r->folder) {
    // Only the server changed the type: the entry here goes in this pass, the server's
    // comes with the next.
    if (l->folder) {
      add(folder_deletes, sync_action::kind::delete_local_folder, path);
    } else {
      add(file_deletes, sync_action::kind::delete_local, path).local = *l;
      ++plan_.local_files_deleted;
      hold_below_.insert(path);
    }
    type_changes_.insert(path);
  } else if (r->folder) {
    add(local_folders, sync_action::kind::make_local_folder, path).item = *r;
  } else {
    auto& action = add(contents, sync_action::kind::download, path);
    action.item = *r;
    if (l) action.local = *l;
  }
}

// Changed on both sides, differently (the same result was recorded in decide()).
void planner::decide_both_changed(const std::string& path, const local_item* l,
                                  const remote_item* r) {
  if (!l) {  // deleted here, edited there: the edit wins
    pull_remote_change(path, nullptr, r);
  } else if (!r) {  // edited here, deleted there: the edit wins
    push_local_change(path, l, nullptr);
  } else if (l->folder != r->folder) {
    skip(path, type_clash);
  } else {
    auto& action = add(contents, sync_action::kind::conflict, path);
    action.to = conflicted_copy_of(path);
    action.item = *r;
    action.local = *l;
  }
}

std::string planner::conflicted_copy_of(const std::string& path) {
  for (int n = 1;; ++n) {
    auto name = conflicted_copy_name(path, options_.device, options_.date, n);
    if (local_.count(name) == 0 && remote_.count(name) == 0 && synced_.count(name) == 0 &&
        copies_.insert(name).second) {
      return name;
    }
  }
}

// The server compares names without letter case or Unicode normalization (base/name_fold), so
// of two paths that differ only in case it holds one: a local path clashing with another is
// left alone, with the reason, rather than failing as a conflict on every pass.
void planner::skip_case_collisions() {
  const auto fold = [](const std::string& path) { return fold_name(path); };
  std::map<std::string, std::string> first;  // folded -> the path that keeps the name
  for (const auto& [path, item] : remote_) first.emplace(fold(path), path);
  for (const auto& [path, item] : local_) {
    const auto [it, inserted] = first.emplace(fold(path), path);
    if (inserted || it->second == path || frozen(path)) continue;
    frozen_.push_back(path);
    skip(path, "differs only in letter case from " + it->second +
                   ", and names on the server ignore case; rename one of them");
  }
}

// A type change goes on only if its old entry's delete stayed in the plan (a folder is
// deleted only once nothing below it is kept: the other side may have added something).
// One that cannot is not made in part either: nothing at or below it is touched (the other
// side's new entries could not land below an entry of the other type), and it is reported.
void planner::drop_unfinished_type_changes(std::vector<std::string>& remote_deleted) {
  auto at = [](const std::string& path) {
    return [&path](const sync_action& a) { return a.path == path; };
  };
  for (const auto& path : type_changes_) {
    if (std::any_of(phases_[file_deletes].begin(), phases_[file_deletes].end(), at(path)) ||
        std::any_of(phases_[folder_deletes].begin(), phases_[folder_deletes].end(), at(path))) {
      plan_.another_pass = true;
      continue;
    }
    for (auto& actions : phases_) {
      actions.erase(std::remove_if(actions.begin(), actions.end(),
                                   [&](const sync_action& a) {
                                     if (!is_under(a.path, path) &&
                                         (a.to.empty() || !is_under(a.to, path))) {
                                       return false;
                                     }
                                     if (a.what == sync_action::kind::delete_remote) {
                                       --plan_.remote_files_deleted;
                                     } else if (a.what == sync_action::kind::delete_local) {
                                       --plan_.local_files_deleted;
                                     }
                                     return true;
                                   }),
                    actions.end());
    }
    remote_deleted.erase(std::remove_if(remote_deleted.begin(), remote_deleted.end(),
                                        [&](const std::string& f) { return is_under(f, path); }),
                         remote_deleted.end());
    skip(path, std::string(type_clash) +
                   " (the other side added entries inside the folder since the last sync)");
  }
}

// A folder is deleted only once nothing below it is kept. On the server one delete takes
// everything below, so the file deletes under a deleted folder are dropped; here folders
// are removed deepest first, each only if empty by then.
void planner::finish_folder_deletes() {
  std::set<std::string> remote_gone, local_gone;
  for (const auto* actions : {&phases_[file_deletes], &phases_[folder_deletes]}) {
    for (const auto& a : *actions) {
      auto& gone = (a.what == sync_action::kind::delete_remote ||
                    a.what == sync_action::kind::delete_remote_folder)
                       ? remote_gone
                       : local_gone;
      gone.insert(a.path);
    }
  }
  auto all_gone = [](const auto& tree, const std::set<std::string>& gone, const std::string& p) {
    return all_below(tree, p, [&](const std::string& below) { return gone.count(below) != 0; });
  };
  auto holds_frozen = [&](const std::string& p) {
    return std::any_of(frozen_.begin(), frozen_.end(),
                       [&](const std::string& f) { return f != p && is_under(f, p); });
  };
  std::vector<std::string> remote_deleted;
  auto& folders = phases_[folder_deletes];
  auto kept = [&](const sync_action& a) {
    if (a.what == sync_action::kind::delete_local_folder) {
      return all_gone(local_, local_gone, a.path) && !holds_frozen(a.path);
    }
    if (!all_gone(remote_, remote_gone, a.path)) return false;
    remote_deleted.push_back(a.path);
    return true;
  };
  folders.erase(std::remove_if(folders.begin(), folders.end(),
                               [&](const sync_action& a) { return !kept(a); }),
                folders.end());
  // Before any file delete is absorbed into a folder's: what is dropped here is uncounted.
  drop_unfinished_type_changes(remote_deleted);
  // The topmost deleted remote folder takes everything below it.
  auto absorbed = [&](const sync_action& a) {
    if (a.what != sync_action::kind::delete_remote &&
        a.what != sync_action::kind::delete_remote_folder) {
      return false;
    }
    return std::any_of(remote_deleted.begin(), remote_deleted.end(),
                       [&](const std::string& f) { return a.path != f && is_under(a.path, f); });
  };
  for (auto* actions : {&phases_[file_deletes], &folders}) {
    actions->erase(std::remove_if(actions->begin(), actions->end(), absorbed), actions->end());
  }
  std::sort(folders.begin(), folders.end(),
            [](const sync_action& a, const sync_action& b) { return a.path > b.path; });
}

}  // namespace

const char* to_string(sync_action::kind kind) noexcept {
  switch (kind) {
    case sync_action::kind::make_remote_folder:
      return "make_remote_folder";
    case sync_action::kind::move_remote:
      return "move_remote";
    case sync_action::kind::move_local:
      return "move_local";
    case sync_action::kind::make_local_folder:
      return "make_local_folder";
    case sync_action::kind::upload:
      return "upload";
    case sync_action::kind::download:
      return "download";
    case sync_action::kind::conflict:
      return "conflict";
    case sync_action::kind::record:
      return "record";
    case sync_action::kind::forget:
      return "forget";
    case sync_action::kind::delete_local:
      return "delete_local";
    case sync_action::kind::delete_remote:
      return "delete_remote";
    case sync_action::kind::delete_local_folder:
      return "delete_local_folder";
    case sync_action::kind::delete_remote_folder:
      return "delete_remote_folder";
  }
  return "unknown";
}

sync_plan plan_sync(const sync_trees& trees, const plan_options& options) {
  return planner(trees, options).run();
}

status check_deletions(const sync_plan& plan, std::size_t tracked_files,
                       std::optional<std::size_t> max_delete) {
  const std::size_t deleted = plan.local_files_deleted + plan.remote_files_deleted;
  std::size_t limit = max_delete.value_or(default_delete_files_max);
  if (!max_delete && tracked_files > half_rule_files_min)
    limit = std::min(limit, tracked_files / 2);
  if (deleted <= limit) return status::ok();
  return error(error_kind::invalid,
               "this sync would delete " + std::to_string(deleted) + " of " +
                   std::to_string(tracked_files) + " synced files (" +
                   std::to_string(plan.local_files_deleted) + " here, " +
                   std::to_string(plan.remote_files_deleted) +
                   " on the server) and was stopped before changing anything; check that the "
                   "folders are the right ones, and if so run again with --max-delete " +
                   std::to_string(deleted));
}

std::string conflicted_copy_name(const std::string& path, const std::string& device,
                                 const std::string& date, int n) {
  const auto slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = path.substr(folder.size());
  const auto dot = name.rfind('.');
  const bool has_extension = dot != std::string::npos && dot != 0;
  std::string device_name = device;
  // A device name is free text; in a file name a '/' would make a folder.
  std::replace(device_name.begin(), device_name.end(), '/', '-');
  std::string copy = " (conflicted copy " + device_name + " " + date;
  if (n > 1) copy += " " + std::to_string(n);
  copy += ")";
  std::string stem = name.substr(0, has_extension ? dot : name.size());
  std::string extension = has_extension ? name.substr(dot) : "";
  // A name may be 255 bytes: a long one gives up the end of its stem (whole characters) so
  // that the copy can exist at all; the rename would fail on every pass otherwise.
  constexpr std::size_t name_bytes_max = 255;
  if (stem.size() + copy.size() + extension.size() > name_bytes_max) {
    if (extension.size() > (name_bytes_max - copy.size()) / 2) {
      stem += extension;  // an "extension" that long is part of the name
      extension.clear();
    }
    std::size_t keep = name_bytes_max - copy.size() - extension.size();
    while (keep > 0 && keep < stem.size() &&
           (static_cast<unsigned char>(stem[keep]) & 0xc0) == 0x80) {
      --keep;
    }
    stem.resize(std::min(keep, stem.size()));
  }
  return folder + stem + copy + extension;
}

// --- the remote tree from the change feed -------------------------------------------------

std::optional<std::string> relative_to(const std::string& root, const std::string& path) {
  if (root == "/") {
    if (path.empty() || path[0] != '/') return std::nullopt;
    return path.substr(1);
  }
  if (path == root) return std::string();
  if (path.size() > root.size() && path[root.size()] == '/' && starts_with(path, root)) {
    return path.substr(root.size() + 1);
  }
  return std::nullopt;
}

std::string remote_path(const std::string& root, const std::string& relative) {
  if (relative.empty()) return root;
  return root == "/" ? "/" + relative : root + "/" + relative;
}

void insert_with_parents(remote_tree& tree, const std::string& relative, const remote_item& item) {
  for (auto p = parent_of(relative); !p.empty() && tree.count(p) == 0; p = parent_of(p)) {
    remote_item folder;
    folder.folder = true;
    tree[p] = folder;
  }
  tree[relative] = item;
}

void erase_subtree(remote_tree& tree, const std::string& relative) {
  tree.erase(relative);
  const std::string prefix = relative + "/";
  for (auto it = tree.lower_bound(prefix); it != tree.end() && starts_with(it->first, prefix);) {
    it = tree.erase(it);
  }
}

void move_subtree(remote_tree& tree, const std::string& from, const std::string& to) {
  rebase(tree, from, to);
}

void move_subtree(local_tree& tree, const std::string& from, const std::string& to) {
  rebase(tree, from, to);
}

remote_item remote_item_of(const entry& e) {
  remote_item item;
  item.folder = e.folder;
  item.id = e.id;
  item.revision = e.revision;
  item.size = e.size;
  item.hash = e.hash;
  item.mtime_us = e.mtime_us;
  return item;
}

namespace {

feed_outcome outcome(feed_outcome::kind what, std::string path = {}) {
  return {what, std::move(path)};
}

feed_outcome apply_write(remote_tree& tree, const std::string& root, const change& c) {
  const std::string& path = c.file ? c.file->path : c.path;
  const auto rel = relative_to(root, path);
  if (!rel || rel->empty()) return outcome(feed_outcome::kind::ignored);
  // A restored folder comes without its contents.
  if (!c.file) return outcome(feed_outcome::kind::fetch_needed, path);
  insert_with_parents(tree, *rel, remote_item_of(*c.file));
  return outcome(feed_outcome::kind::applied);
}

feed_outcome apply_delete(remote_tree& tree, const std::string& root, const change& c) {
  if (relative_to(c.path, root)) return outcome(feed_outcome::kind::root_gone);
  const auto rel = relative_to(root, c.path);
  if (!rel) return outcome(feed_outcome::kind::ignored);
  erase_subtree(tree, *rel);
  return outcome(feed_outcome::kind::applied);
}

feed_outcome apply_move(remote_tree& tree, const std::string& root, const change& c) {
  if (auto below = relative_to(c.from_path, root)) {
    return outcome(feed_outcome::kind::root_gone, remote_path(c.path, *below));
  }
  const auto from = relative_to(root, c.from_path);
  const auto to = relative_to(root, c.path);
  if (to && to->empty()) return outcome(feed_outcome::kind::ignored);
  if (!from) {
    return to ? outcome(feed_outcome::kind::fetch_needed, c.path)
              : outcome(feed_outcome::kind::ignored);
  }
  remote_tree moved;
  if (auto it = tree.find(*from); it != tree.end()) {
    moved.emplace(it->first, it->second);
    tree.erase(it);
  }
  const std::string prefix = *from + "/";
  for (auto it = tree.lower_bound(prefix); it != tree.end() && starts_with(it->first, prefix);) {
    moved.emplace(it->first, it->second);
    it = tree.erase(it);
  }
  if (to) {
    for (auto& [path, item] : moved)
      insert_with_parents(tree, *to + path.substr(from->size()), item);
  }
  return outcome(feed_outcome::kind::applied);
}

}  // namespace

feed_outcome apply_change(remote_tree& tree, const std::string& root, const change& c) {
  switch (c.what) {
    case change::kind::committed:
    case change::kind::restored:
      return apply_write(tree, root, c);
    case change::kind::deleted:
      return apply_delete(tree, root, c);
    case change::kind::moved:
      return apply_move(tree, root, c);
    case change::kind::folder_created: {
      const auto rel = relative_to(root, c.path);
      if (!rel || rel->empty()) return outcome(feed_outcome::kind::ignored);
      remote_item folder;
      folder.folder = true;
      folder.id = feed_folder_id(c.seq);
      folder.revision = c.seq;
      insert_with_parents(tree, *rel, folder);
      return outcome(feed_outcome::kind::applied);
    }
    case change::kind::quota_changed:
      return outcome(feed_outcome::kind::ignored);
  }
  return outcome(feed_outcome::kind::ignored);
}

}  // namespace autosync::sdk
