#include "autosync/actors/decide.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "autosync/actors/path.hpp"

namespace autosync::actors {

namespace {

// A false that depends on T, for a static_assert in the last branch of a visit.
template <class T>
constexpr bool always_false = false;


entry_info info_of(const namespace_state& state, const node& n) {
  return {n.id, state.path_of(n.id), n.folder, n.revision, n.content.size, n.content.hash};
}

refusal refuse(error_kind kind, std::string message, std::optional<entry_info> current = {}) {
  return refusal{error(kind, std::move(message)), std::move(current), {}};
}

// Builds the events of one decision; new nodes get ids from the state's counter.
class event_list {
public:
  event_list(const namespace_state& state, const command& cmd)
      : cmd_(cmd),
        digest_(command_digest(cmd)),
        timestamp_us_(std::max(cmd.timestamp_us, state.last_timestamp_us())),
        next_id_(state.next_node_id()) {}

  schema::Event::Builder add() {
    auto message = std::make_unique<capnp::MallocMessageBuilder>();
    auto event = message->initRoot<schema::Event>();
    event.setTimestampUs(timestamp_us_);
    event.setDeviceId(cmd_.device_id);
    event.setOperationId(cmd_.operation_id);
    event.setCommandDigest(digest_);
    events_.push_back(std::move(message));
    return event;
  }
  node_id new_id() { return next_id_++; }
  decision finish() { return decision{std::move(events_), std::nullopt}; }

private:
  const command& cmd_;
  const std::uint64_t digest_;
  const std::int64_t timestamp_us_;
  node_id next_id_;
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events_;
};

// Plans a folderCreated event for every missing ancestor of `path` and returns the parent's
// path as stored (existing names keep their letter case). Refuses when an ancestor is a
// file, or is `moving` (a folder cannot move into itself).
std::variant<std::string, refusal> plan_parents(const namespace_state& state,
                                                std::string_view path, event_list& events,
                                                std::optional<node_id> moving = std::nullopt) {
  const auto parent = parent_of(path);
  if (parent == "/") return std::string("/");
  const node* at = state.get(root_id);
  bool creating = false;
  std::string stored;
  for (auto name : split_path(parent)) {
    if (!creating) {
      const node* next = state.child(at->id, name);
      if (next != nullptr) {
        stored += "/" + next->name;
        if (!next->folder) {
          return refuse(error_kind::conflict, stored + " is a file, not a folder",
                        info_of(state, *next));
        }
        if (moving && next->id == *moving) {
          return refuse(error_kind::invalid, "cannot move a folder into itself");
        }
        at = next;
        continue;
      }
      creating = true;
    }
    stored += "/" + std::string(name);
    auto folder = events.add().initFolderCreated();
    folder.setNodeId(events.new_id());
    folder.setPath(stored);
  }
  return stored;
}

std::string join(const std::string& parent, std::string_view name) {
  return (parent == "/" ? "" : parent) + "/" + std::string(name);
}

status check_content(const file_content& content) {
  std::uint64_t total = 0;
  std::map<sha256_digest, std::uint64_t> sizes;
  for (const auto& c : content.chunks) {
    if (c.size == 0) return error(error_kind::invalid, "a chunk of size 0");
    if (auto [at, added] = sizes.emplace(c.hash, c.size); !added && at->second != c.size) {
      return error(error_kind::invalid, "chunk " + c.hash.hex() + " is listed with two sizes");
    }
    total += c.size;
  }
  if (total != content.size) {
    return error(error_kind::invalid, "chunk sizes add up to " + std::to_string(total) +
                                          " bytes, not the file's " + std::to_string(content.size));
  }
  return status::ok();
}

// The chunks of `content` to ask the store about, with the sizes the content claims for
// them: all but those of `held`, content a revision in the state refers to. A reclaim keeps
// every chunk a revision refers to, so they are there, with the sizes `held` gives. An edit
// of a large file then asks for its few new chunks, not its thousands (each a lookup in the
// chunk index). A chunk of `held` claimed at another size is a refusal.
struct chunks_to_ask {
  std::vector<sha256_digest> ids;
  std::vector<std::uint64_t> claimed;
  std::optional<refusal> wrong_size;
};

chunks_to_ask new_chunks(const file_content& content, const file_content* held) {
  chunks_to_ask out;
  std::vector<std::pair<sha256_digest, std::uint64_t>> known;  // sorted by hash
  if (held != nullptr) {
    known.reserve(held->chunks.size());
    for (const auto& c : held->chunks) known.emplace_back(c.hash, c.size);
    std::sort(known.begin(), known.end());
  }
  std::set<sha256_digest> seen;
  for (const auto& c : content.chunks) {
    if (!seen.insert(c.hash).second) continue;
    auto k =
        std::lower_bound(known.begin(), known.end(), c.hash,
                         [](const auto& entry, const sha256_digest& h) { return entry.first < h; });
    if (k != known.end() && k->first == c.hash) {
      if (k->second == c.size) continue;
      out.wrong_size = refuse(error_kind::invalid,
                              "chunk " + c.hash.hex() + " is " + std::to_string(k->second) +
                                  " bytes, not " + std::to_string(c.size) + " as the content says");
      return out;
    }
    out.ids.push_back(c.hash);
    out.claimed.push_back(c.size);
  }
  return out;
}

// The content a commit's file holds now, if it is a file.
const file_content* held_at(const namespace_state& state, const std::string& path) {
  const node* existing = state.lookup(path);
  return existing != nullptr && !existing->folder ? &existing->content : nullptr;
}

// The chunks of `content` the store lacks, as a refusal; nothing when all are there. A
// chunk stored with another size than the content says is refused too: sizes are what
// quotas count and what downloads expect. REQUIRES: check_content(content).
std::optional<refusal> missing_chunks(const file_content& content, const chunk_presence& has,
                                      const file_content* held = nullptr) {
  auto asked = new_chunks(content, held);
  if (asked.wrong_size) return std::move(asked.wrong_size);
  const auto& ids = asked.ids;
  const auto& claimed = asked.claimed;
  if (ids.empty()) return std::nullopt;
  const auto stored = has(ids);
  refusal missing{error(error_kind::not_found, ""), std::nullopt, {}};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i >= stored.size() || !stored[i]) {
      missing.missing_chunks.push_back(ids[i]);
    } else if (*stored[i] != claimed[i]) {
      return refuse(error_kind::invalid, "chunk " + ids[i].hex() + " is " +
                                             std::to_string(*stored[i]) + " bytes, not " +
                                             std::to_string(claimed[i]) + " as the content says");
    }
  }
  if (missing.missing_chunks.empty()) return std::nullopt;
  missing.reason = error(error_kind::not_found,
                         std::to_string(missing.missing_chunks.size()) +
                             " chunks of the content are not in the store: upload them, then retry");
  return missing;
}

std::optional<refusal> over_quota(const namespace_state& state, std::uint64_t removed,
                                  std::uint64_t added) {
  const std::uint64_t used = state.used_bytes() - removed + added;
  if (state.quota_bytes() == 0 || used <= state.quota_bytes()) return std::nullopt;
  return refuse(error_kind::quota_exceeded,
                "this would use " + std::to_string(used) + " bytes of a quota of " +
                    std::to_string(state.quota_bytes()) + ": delete files or raise the quota");
}

decide_result decide_commit(const namespace_state& state, const command& cmd,
                            const commit_file& commit, const chunk_presence& has) {
  if (auto s = check_content(commit.content); !s) return refusal{std::move(s).err(), {}, {}};
  const node* existing = state.lookup(commit.path);
  if (existing != nullptr && existing->folder) {
    return refuse(error_kind::conflict, commit.path + " is a folder", info_of(state, *existing));
  }
  const std::uint64_t current = existing != nullptr ? existing->revision : 0;
  if (commit.base_revision != current) {
    std::string why = existing == nullptr
                          ? commit.path + " no longer exists (based on revision " +
                                std::to_string(commit.base_revision) + ")"
                      : commit.base_revision == 0
                          ? commit.path + " already exists"
                          : commit.path + " changed: it is at revision " + std::to_string(current) +
                                ", not " + std::to_string(commit.base_revision);
    std::optional<entry_info> now;
    if (existing != nullptr) now = info_of(state, *existing);
    return refuse(error_kind::conflict, why, now);
  }
  const std::uint64_t old_size = existing != nullptr ? existing->content.size : 0;
  if (auto r = over_quota(state, old_size, commit.content.size)) return std::move(*r);
  if (auto r = missing_chunks(commit.content, has, held_at(state, commit.path))) {
    return std::move(*r);
  }
  event_list events(state, cmd);
  std::string path;
  node_id id = 0;
  if (existing != nullptr) {
    path = state.path_of(existing->id);
    id = existing->id;
  } else {
    auto parent = plan_parents(state, commit.path, events);
    if (auto* r = std::get_if<refusal>(&parent)) return std::move(*r);
    path = join(std::get<std::string>(parent), name_of(commit.path));
    id = events.new_id();
  }
  auto committed = events.add().initFileCommitted();
  committed.setNodeId(id);
  committed.setPath(path);
  committed.setBaseRevision(commit.base_revision);
  content_to(commit.content, committed.initContent());
  return events.finish();
}

decide_result decide_delete(const namespace_state& state, const command& cmd,
                            const delete_entry& del) {
  const node* existing = state.lookup(del.path);
  if (existing == nullptr) return refuse(error_kind::not_found, del.path + " does not exist");
  if (!existing->folder && del.base_revision != 0 && del.base_revision != existing->revision) {
    return refuse(error_kind::conflict,
                  del.path + " changed: it is at revision " + std::to_string(existing->revision) +
                      ", not " + std::to_string(del.base_revision),
                  info_of(state, *existing));
  }
  // A folder's base is the seq of the caller's view of it: what was written or moved in
  // since is something the caller never saw, and is not deleted on its behalf.
  if (existing->folder && del.base_revision > state.last_seq()) {
    return refuse(error_kind::invalid,
                  "delete of " + del.path + " as of seq " + std::to_string(del.base_revision) +
                      ", past the newest change (" + std::to_string(state.last_seq()) +
                      "): list the folder again");
  }
  if (existing->folder && del.base_revision != 0) {
    if (const node* changed = state.changed_after(existing->id, del.base_revision)) {
      return refuse(error_kind::conflict,
                    del.path + " changed after " + std::to_string(del.base_revision) + ": " +
                        state.path_of(changed->id) + " is newer (list it again)",
                    info_of(state, *changed));
    }
  }
  event_list events(state, cmd);
  auto deleted = events.add().initFileDeleted();
  deleted.setNodeId(existing->id);
  deleted.setPath(state.path_of(existing->id));
  deleted.setBaseRevision(existing->revision);
  deleted.setIsFolder(existing->folder);
  return events.finish();
}

decide_result decide_move(const namespace_state& state, const command& cmd, const move_entry& mv) {
  const node* source = state.lookup(mv.from);
  if (source == nullptr) return refuse(error_kind::not_found, mv.from + " does not exist");
  if (mv.from == mv.to) return refuse(error_kind::invalid, "moving " + mv.from + " onto itself");
  const node* target = state.lookup(mv.to);
  if (target != nullptr && target->id != source->id) {
    return refuse(error_kind::conflict, mv.to + " already exists", info_of(state, *target));
  }
  event_list events(state, cmd);
  auto parent = plan_parents(state, mv.to, events, source->id);
  if (auto* r = std::get_if<refusal>(&parent)) return std::move(*r);
  const std::string from = state.path_of(source->id);
  const std::string to = join(std::get<std::string>(parent), name_of(mv.to));
  if (to == from) {
    // The target's folders are the source's, named in another letter case: nothing moves.
    return refuse(error_kind::invalid, "moving " + mv.from + " onto itself (" + mv.to + " is " +
                                           from + ": names are compared without letter case)");
  }
  // Every path below a moved folder gets longer or shorter with it: one that would pass
  // the limit could be neither read nor deleted afterwards.
  if (const auto longest = to.size() + state.deepest_below(source->id);
      longest > path_limits::path_bytes_max) {
    return refuse(error_kind::invalid,
                  "moving " + mv.from + " to " + mv.to + " would make a path below it " +
                      std::to_string(longest) + " bytes long, over the limit of " +
                      std::to_string(path_limits::path_bytes_max) + ": choose a shorter target");
  }
  auto moved = events.add().initMoved();
  moved.setNodeId(source->id);
  moved.setFromPath(from);
  moved.setToPath(to);
  moved.setIsFolder(source->folder);
  return events.finish();
}

decide_result decide_folder(const namespace_state& state, const command& cmd,
                            const create_folder& folder) {
  if (const node* existing = state.lookup(folder.path)) {
    return refuse(error_kind::conflict, folder.path + " already exists", info_of(state, *existing));
  }
  event_list events(state, cmd);
  auto parent = plan_parents(state, folder.path, events);
  if (auto* r = std::get_if<refusal>(&parent)) return std::move(*r);
  auto created = events.add().initFolderCreated();
  created.setNodeId(events.new_id());
  created.setPath(join(std::get<std::string>(parent), name_of(folder.path)));
  return events.finish();
}

decide_result decide_restore(const namespace_state& state, const command& cmd,
                             const std::string& path, std::optional<std::uint64_t> revision) {
  const node* file = state.lookup(path);
  if (file != nullptr && file->folder) return refuse(error_kind::invalid, path + " is a folder");
  if (file == nullptr) file = state.find_deleted_file(path);
  if (file == nullptr) {
    return refuse(error_kind::not_found,
                  "no file is at " + path + ", and none was deleted there within the retention "
                  "period (older deletions are reclaimed)");
  }
  auto find = [&](const node& n) -> const version* {
    const version* found = nullptr;
    for (const auto& v : n.history) {
      if (v.deletion) continue;
      if (!revision || v.revision == *revision) found = &v;  // undelete: the last content
    }
    return found;
  };
  const version* wanted = find(*file);
  if (wanted == nullptr && !file->deleted) {
    // The revision may be a deleted file's whose name another file took since.
    if (const node* gone = state.find_deleted_file(path); gone != nullptr && find(*gone) != nullptr) {
      return refuse(error_kind::conflict,
                    path + " is another file now (" + state.path_of(file->id) +
                        "): move or delete it, then restore revision " +
                        std::to_string(revision.value_or(0)),
                    info_of(state, *file));
    }
  }
  if (wanted == nullptr) {
    return refuse(error_kind::not_found,
                  path + " has no revision " + std::to_string(revision.value_or(0)) +
                      " (revisions older than the retention period are reclaimed)");
  }
  if (auto r = over_quota(state, file->deleted ? 0 : file->content.size, wanted->content.size)) {
    return std::move(*r);
  }
  // The store is not asked about the revision's chunks: it is in the state, and a reclaim
  // keeps every chunk a revision in the state refers to.
  event_list events(state, cmd);
  std::string target = state.path_of(file->id);
  if (file->deleted) {
    auto parent = plan_parents(state, path, events);
    if (auto* r = std::get_if<refusal>(&parent)) return std::move(*r);
    target = join(std::get<std::string>(parent), name_of(path));
  }
  auto restored = events.add().initRevisionRestored();
  restored.setNodeId(file->id);
  restored.setPath(target);
  restored.setRestoredRevision(wanted->revision);
  restored.setBaseRevision(file->deleted ? 0 : file->revision);
  content_to(wanted->content, restored.initContent());
  return events.finish();
}

// Tombstones deleted before the cutoff (folders once nothing below them remains), and files
// with revisions older than it.
decide_result decide_retention(const namespace_state& state, const command& cmd,
                               const apply_retention& retention) {
  std::set<node_id> removed;
  std::vector<node_id> trimmed;
  std::vector<const node*> folders;
  for (const node* n : state.all_nodes()) {
    if (n->id == root_id) continue;
    if (n->folder) {
      if (n->deleted) folders.push_back(n);
      continue;
    }
    if (n->deleted && !n->history.empty() && n->history.back().timestamp_us < retention.cutoff_us) {
      removed.insert(n->id);
      continue;
    }
    const auto keep = kept_by_retention(n->history, retention.cutoff_us);
    if (std::find(keep.begin(), keep.end(), false) != keep.end()) trimmed.push_back(n->id);
  }
  // A deleted folder goes once every entry that was below it is gone: a file deleted with
  // it shares its deletion time, so this follows the files' cutoff.
  std::map<node_id, std::size_t> remaining;  // folder -> entries still below it
  for (const node* n : state.all_nodes()) {
    if (n->id != root_id && removed.count(n->id) == 0) ++remaining[n->parent];
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const node* f : folders) {
      if (removed.count(f->id) != 0 || remaining[f->id] != 0) continue;
      removed.insert(f->id);
      --remaining[f->parent];
      changed = true;
    }
  }
  // Nothing to reclaim writes nothing: the policy runs often, and an empty record would
  // only lengthen the history.
  if (removed.empty() && trimmed.empty()) return decision{};
  event_list events(state, cmd);
  auto applied = events.add().initRetentionApplied();
  applied.setCutoffUs(retention.cutoff_us);
  auto removed_list = applied.initRemovedNodes(static_cast<unsigned>(removed.size()));
  unsigned i = 0;
  for (auto id : removed) removed_list.set(i++, id);
  auto trimmed_list = applied.initTrimmedFiles(static_cast<unsigned>(trimmed.size()));
  for (unsigned k = 0; k < trimmed.size(); ++k) trimmed_list.set(k, trimmed[k]);
  return events.finish();
}

status validate(const command_body& body) {
  if (const auto* c = std::get_if<commit_file>(&body)) return validate_path(c->path);
  if (const auto* d = std::get_if<delete_entry>(&body)) return validate_path(d->path);
  if (const auto* f = std::get_if<create_folder>(&body)) return validate_path(f->path);
  if (const auto* r = std::get_if<restore_revision>(&body)) return validate_path(r->path);
  if (const auto* u = std::get_if<undelete_file>(&body)) return validate_path(u->path);
  if (const auto* m = std::get_if<move_entry>(&body)) {
    if (auto s = validate_path(m->from); !s) return s;
    return validate_path(m->to);
  }
  return status::ok();
}

}  // namespace

std::uint64_t command_digest(const command& cmd) {
  // A canonical text of the arguments: a tag per kind, then each field, length-prefixed
  // so that no two commands write the same bytes.
  std::string text;
  auto field = [&](std::string_view s) {
    text += std::to_string(s.size());
    text += ':';
    text.append(s.data(), s.size());
  };
  auto number = [&](auto n) { field(std::to_string(n)); };
  auto content = [&](const file_content& c) {
    number(c.size);
    field(c.hash.view());
    number(c.mtime_us);
    for (const auto& chunk : c.chunks) {
      field(chunk.hash.view());
      number(chunk.size);
    }
  };
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, commit_file>) {
          field("commit");
          field(body.path);
          number(body.base_revision);
          content(body.content);
        } else if constexpr (std::is_same_v<T, delete_entry>) {
          field("delete");
          field(body.path);
          number(body.base_revision);
        } else if constexpr (std::is_same_v<T, move_entry>) {
          field("move");
          field(body.from);
          field(body.to);
        } else if constexpr (std::is_same_v<T, create_folder>) {
          field("folder");
          field(body.path);
        } else if constexpr (std::is_same_v<T, set_quota>) {
          field("quota");
          number(body.bytes);
        } else if constexpr (std::is_same_v<T, restore_revision>) {
          field("restore");
          field(body.path);
          number(body.revision);
        } else if constexpr (std::is_same_v<T, undelete_file>) {
          field("undelete");
          field(body.path);
        } else if constexpr (std::is_same_v<T, apply_retention>) {
          field("retention");
          number(body.cutoff_us);
        } else {
          static_assert(always_false<T>, "the digest must cover every command kind");
        }
      },
      cmd.body);
  const auto digest = sha256(text);
  std::uint64_t out = 0;
  for (int i = 7; i >= 0; --i) out = out << 8 | digest.bytes[static_cast<std::size_t>(i)];
  return out == 0 ? 1 : out;  // 0 means "not recorded"
}

std::vector<sha256_digest> chunks_to_look_up(const namespace_state& state, const command& cmd) {
  const auto* commit = std::get_if<commit_file>(&cmd.body);
  if (commit == nullptr) return {};
  return new_chunks(commit->content, held_at(state, commit->path)).ids;
}

decide_result decide(const namespace_state& state, const command& cmd, const chunk_presence& has) {
  // A retry of an applied command: the original result, nothing appended.
  if (!cmd.operation_id.empty()) {
    if (const auto* applied = state.find_operation(cmd.operation_id)) {
      if (applied->command_digest != 0 && applied->command_digest != command_digest(cmd)) {
        // Not a retry: another change under an id already used. Answering with the first
        // change's result would report this one done when nothing was done.
        return refuse(error_kind::invalid,
                      "operation id " + cmd.operation_id + " was used for another change (seq " +
                          std::to_string(applied->first_seq) +
                          "): give each change an id of its own");
      }
      return decision{{}, *applied};
    }
  }
  if (auto s = validate(cmd.body); !s) return refusal{std::move(s).err(), {}, {}};
  return std::visit(
      [&](const auto& body) -> decide_result {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, commit_file>) {
          return decide_commit(state, cmd, body, has);
        } else if constexpr (std::is_same_v<T, delete_entry>) {
          return decide_delete(state, cmd, body);
        } else if constexpr (std::is_same_v<T, move_entry>) {
          return decide_move(state, cmd, body);
        } else if constexpr (std::is_same_v<T, create_folder>) {
          return decide_folder(state, cmd, body);
        } else if constexpr (std::is_same_v<T, restore_revision>) {
          return decide_restore(state, cmd, body.path, body.revision);
        } else if constexpr (std::is_same_v<T, apply_retention>) {
          return decide_retention(state, cmd, body);
        } else if constexpr (std::is_same_v<T, undelete_file>) {
          if (const node* live = state.lookup(body.path)) {
            return refuse(error_kind::conflict, body.path + " exists", info_of(state, *live));
          }
          return decide_restore(state, cmd, body.path, std::nullopt);
        } else if constexpr (std::is_same_v<T, set_quota>) {
          event_list events(state, cmd);
          events.add().initQuotaChanged().setQuotaBytes(body.bytes);
          return events.finish();
        } else {
          static_assert(always_false<T>, "decide() must handle every command kind");
        }
      },
      cmd.body);
}

}  // namespace autosync::actors
