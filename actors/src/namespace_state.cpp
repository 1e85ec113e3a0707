#include "autosync/actors/namespace_state.hpp"

#include <algorithm>
#include <cstring>

#include "autosync/actors/path.hpp"

namespace autosync::actors {

namespace {

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

sha256_digest digest(capnp::Data::Reader data) {
  auto d = sha256_digest::from_bytes({reinterpret_cast<const char*>(data.begin()), data.size()});
  return d ? *d : sha256_digest{};
}

error does_not_fit(std::uint64_t seq, const std::string& what) {
  return error(error_kind::corruption,
               "event seq " + std::to_string(seq) + " does not fit the namespace: " + what);
}

// The history entry an event makes for a file.
version version_of(std::uint64_t seq, const std::string& path,
                   schema::FileContent::Reader content, schema::Event::Reader event) {
  version v;
  v.revision = seq;
  v.path = path;
  v.content = content_from(content);
  v.device_id = text(event.getDeviceId());
  v.timestamp_us = event.getTimestampUs();
  return v;
}

}  // namespace

file_content content_from(schema::FileContent::Reader reader) {
  file_content out;
  out.size = reader.getSize();
  out.hash = digest(reader.getContentHash());
  out.mtime_us = reader.getMtimeUs();
  for (auto c : reader.getChunks()) out.chunks.push_back({digest(c.getHash()), c.getSize()});
  return out;
}

void content_to(const file_content& content, schema::FileContent::Builder builder) {
  builder.setSize(content.size);
  builder.setContentHash({content.hash.bytes.data(), content.hash.bytes.size()});
  builder.setMtimeUs(content.mtime_us);
  auto chunks = builder.initChunks(static_cast<unsigned>(content.chunks.size()));
  for (unsigned i = 0; i < content.chunks.size(); ++i) {
    const auto& c = content.chunks[i];
    chunks[i].setHash({c.hash.bytes.data(), c.hash.bytes.size()});
    chunks[i].setSize(c.size);
  }
}

namespace_state::namespace_state() {
  node root;
  root.id = root_id;
  root.folder = true;
  nodes_.emplace(root_id, std::move(root));
}

const node* namespace_state::get(node_id id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const node* namespace_state::child(node_id folder, std::string_view name) const {
  const node* parent = get(folder);
  if (parent == nullptr) return nullptr;
  auto it = parent->children.find(fold_case(name));
  return it == parent->children.end() ? nullptr : get(it->second);
}

const node* namespace_state::lookup(std::string_view path) const {
  if (path == "/") return get(root_id);
  if (!validate_path(path)) return nullptr;
  const node* at = get(root_id);
  for (auto name : split_path(path)) {
    if (!at->folder) return nullptr;
    at = child(at->id, name);
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string namespace_state::path_of(node_id id) const {
  if (id == root_id) return "/";
  std::vector<const std::string*> names;
  for (const node* n = get(id); n != nullptr && n->id != root_id; n = get(n->parent)) {
    names.push_back(&n->name);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + **it;
  return path;
}

std::vector<const node*> namespace_state::children(node_id folder) const {
  std::vector<const node*> out;
  const node* parent = get(folder);
  if (parent == nullptr) return out;
  for (const auto& [folded, id] : parent->children) out.push_back(get(id));
  std::sort(out.begin(), out.end(), [](const node* a, const node* b) { return a->name < b->name; });
  return out;
}

bool namespace_state::is_inside(node_id id, node_id ancestor) const {
  for (const node* n = get(id); n != nullptr; n = n->id == root_id ? nullptr : get(n->parent)) {
    if (n->id == ancestor) return true;
  }
  return false;
}

void namespace_state::link(const node& n) {
  nodes_.at(n.parent).children[fold_case(n.name)] = n.id;
}

void namespace_state::unlink(const node& n) { nodes_.at(n.parent).children.erase(fold_case(n.name)); }

const applied_operation* namespace_state::find_operation(std::string_view operation_id) const {
  return operations_.find(operation_id);
}

result<node_id> namespace_state::parent_for(std::string_view path, std::uint64_t seq) const {
  const node* parent = lookup(parent_of(path));
  if (parent == nullptr || !parent->folder) {
    return does_not_fit(seq, "no folder " + std::string(parent_of(path)));
  }
  if (child(parent->id, name_of(path)) != nullptr) {
    return does_not_fit(seq, std::string(path) + " is taken");
  }
  return parent->id;
}

status namespace_state::apply(std::uint64_t seq, const sha256_digest& hash,
                              schema::Event::Reader event) {
  if (seq != last_seq_ + 1) {
    return does_not_fit(seq, "expected seq " + std::to_string(last_seq_ + 1));
  }
  // The chain is part of the state: an event follows only the event whose hash it names.
  const auto prev = event.getPrevHash();
  if (prev.size() != last_hash_.bytes.size() ||
      std::memcmp(prev.begin(), last_hash_.bytes.data(), prev.size()) != 0) {
    return does_not_fit(seq, "prevHash does not match the hash of seq " +
                                 std::to_string(last_seq_) + ": the chain is broken");
  }
  status s;
  switch (event.which()) {
    case schema::Event::FILE_COMMITTED: s = apply_commit(seq, event); break;
    case schema::Event::FILE_DELETED: s = apply_delete(seq, event); break;
    case schema::Event::MOVED: s = apply_move(seq, event); break;
    case schema::Event::FOLDER_CREATED: s = apply_folder(seq, event); break;
    case schema::Event::QUOTA_CHANGED: quota_bytes_ = event.getQuotaChanged().getQuotaBytes(); break;
    case schema::Event::REVISION_RESTORED: s = apply_restore(seq, event); break;
    case schema::Event::RETENTION_APPLIED: s = apply_retention(seq, event); break;
    default: s = does_not_fit(seq, "unknown event kind: upgrade AutoSync");
  }
  if (!s) return s;
  last_seq_ = seq;
  last_hash_ = hash;
  last_timestamp_us_ = std::max(last_timestamp_us_, event.getTimestampUs());
  const auto op = event.getOperationId();
  operations_.remember({op.cStr(), op.size()}, seq, event.getCommandDigest());
  return status::ok();
}

status namespace_state::apply_commit(std::uint64_t seq, schema::Event::Reader event) {
  auto commit = event.getFileCommitted();
  const std::string path = text(commit.getPath());
  const node_id id = commit.getNodeId();
  version v = version_of(seq, path, commit.getContent(), event);

  auto existing = nodes_.find(id);
  if (existing == nodes_.end()) {
    auto parent = parent_for(path, seq);
    if (!parent) return std::move(parent).err();
    node n;
    n.id = id;
    n.parent = *parent;
    n.name = std::string(name_of(path));
    next_node_id_ = std::max(next_node_id_, id + 1);
    existing = nodes_.emplace(id, std::move(n)).first;
    link(existing->second);
    ++live_files_;
  } else if (existing->second.folder || existing->second.deleted) {
    return does_not_fit(seq, "node " + std::to_string(id) + " is not a live file");
  }
  node& n = existing->second;
  used_bytes_ = used_bytes_ - n.content.size + v.content.size;
  n.content = v.content;
  n.revision = seq;
  n.history.push_back(std::move(v));
  return status::ok();
}

void namespace_state::delete_subtree(node& n, std::uint64_t seq, const version& marker) {
  if (n.folder) {
    for (const node* c : children(n.id)) delete_subtree(nodes_.at(c->id), seq, marker);
  } else {
    used_bytes_ -= n.content.size;
    --live_files_;
    version v = marker;
    v.path = path_of(n.id);
    n.history.push_back(std::move(v));
    n.revision = seq;
  }
  unlink(n);
  n.deleted = true;
}

status namespace_state::apply_delete(std::uint64_t seq, schema::Event::Reader event) {
  auto del = event.getFileDeleted();
  auto it = nodes_.find(del.getNodeId());
  if (it == nodes_.end() || it->second.deleted || it->first == root_id) {
    return does_not_fit(seq, "node " + std::to_string(del.getNodeId()) + " is not live");
  }
  version marker;
  marker.revision = seq;
  marker.deletion = true;
  marker.device_id = text(event.getDeviceId());
  marker.timestamp_us = event.getTimestampUs();
  delete_subtree(it->second, seq, marker);
  return status::ok();
}

status namespace_state::apply_move(std::uint64_t seq, schema::Event::Reader event) {
  auto mv = event.getMoved();
  auto it = nodes_.find(mv.getNodeId());
  if (it == nodes_.end() || it->second.deleted || it->first == root_id) {
    return does_not_fit(seq, "node " + std::to_string(mv.getNodeId()) + " is not live");
  }
  node& n = it->second;
  const std::string to = text(mv.getToPath());
  const node* parent = lookup(parent_of(to));
  if (parent == nullptr || !parent->folder || is_inside(parent->id, n.id)) {
    return does_not_fit(seq, "cannot move into " + std::string(parent_of(to)));
  }
  const node* taken = child(parent->id, name_of(to));
  if (taken != nullptr && taken->id != n.id) return does_not_fit(seq, to + " is taken");
  unlink(n);
  n.parent = parent->id;
  n.name = std::string(name_of(to));
  n.moved_seq = seq;
  link(n);
  return status::ok();
}

status namespace_state::apply_folder(std::uint64_t seq, schema::Event::Reader event) {
  auto folder = event.getFolderCreated();
  const std::string path = text(folder.getPath());
  if (nodes_.count(folder.getNodeId()) != 0) {
    return does_not_fit(seq, "node " + std::to_string(folder.getNodeId()) + " exists");
  }
  auto parent = parent_for(path, seq);
  if (!parent) return std::move(parent).err();
  node n;
  n.id = folder.getNodeId();
  n.parent = *parent;
  n.name = std::string(name_of(path));
  n.folder = true;
  n.revision = seq;
  next_node_id_ = std::max(next_node_id_, n.id + 1);
  link(nodes_.emplace(n.id, std::move(n)).first->second);
  return status::ok();
}

status namespace_state::apply_restore(std::uint64_t seq, schema::Event::Reader event) {
  auto restored = event.getRevisionRestored();
  auto it = nodes_.find(restored.getNodeId());
  if (it == nodes_.end() || it->second.folder) {
    return does_not_fit(seq, "node " + std::to_string(restored.getNodeId()) + " is not a file");
  }
  node& n = it->second;
  const std::string path = text(restored.getPath());
  if (n.deleted) {
    // Undelete: the file comes back at `path`, whose folders the same append created.
    auto parent = parent_for(path, seq);
    if (!parent) return std::move(parent).err();
    n.parent = *parent;
    n.name = std::string(name_of(path));
    n.deleted = false;
    link(n);
    ++live_files_;
  } else {
    used_bytes_ -= n.content.size;
  }
  version v = version_of(seq, path, restored.getContent(), event);
  used_bytes_ += v.content.size;
  n.content = v.content;
  n.revision = seq;
  n.history.push_back(std::move(v));
  return status::ok();
}

std::vector<sha256_digest> namespace_state::referenced_chunks() const {
  std::vector<sha256_digest> out;
  for (const auto& [id, n] : nodes_) {
    for (const auto& c : n.content.chunks) out.push_back(c.hash);
    for (const auto& v : n.history) {
      for (const auto& c : v.content.chunks) out.push_back(c.hash);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<const node*> namespace_state::all_nodes() const {
  std::vector<const node*> out;
  out.reserve(nodes_.size());
  for (const auto& [id, n] : nodes_) out.push_back(&n);
  std::sort(out.begin(), out.end(), [](const node* a, const node* b) { return a->id < b->id; });
  return out;
}

status namespace_state::apply_retention(std::uint64_t seq, schema::Event::Reader event) {
  auto retention = event.getRetentionApplied();
  // Check first, change after: a failed apply leaves the state as it was.
  for (auto id : retention.getRemovedNodes()) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || !it->second.deleted) {
      return does_not_fit(seq, "node " + std::to_string(id) + " is not a tombstone");
    }
  }
  for (auto id : retention.getTrimmedFiles()) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || it->second.folder) {
      return does_not_fit(seq, "node " + std::to_string(id) + " is not a file");
    }
  }
  for (auto id : retention.getRemovedNodes()) nodes_.erase(id);
  const std::int64_t cutoff = retention.getCutoffUs();
  for (auto id : retention.getTrimmedFiles()) {
    auto& history = nodes_.at(id).history;
    const auto keep = kept_by_retention(history, cutoff);
    std::vector<version> kept;
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (keep[i]) kept.push_back(std::move(history[i]));
    }
    history = std::move(kept);
  }
  return status::ok();
}

const node* namespace_state::changed_after(node_id folder, std::uint64_t seq) const {
  std::vector<node_id> todo{folder};
  while (!todo.empty()) {
    const node* n = get(todo.back());
    todo.pop_back();
    if (n == nullptr) continue;
    if (n->revision > seq || n->moved_seq > seq) return n;
    for (const auto& [name, id] : n->children) todo.push_back(id);
  }
  return nullptr;
}

std::size_t namespace_state::deepest_below(node_id id) const {
  std::size_t deepest = 0;
  std::vector<std::pair<node_id, std::size_t>> todo{{id, 0}};
  while (!todo.empty()) {
    const auto [at, length] = todo.back();
    todo.pop_back();
    const node* n = get(at);
    if (n == nullptr) continue;
    for (const auto& [folded, child] : n->children) {
      const node* c = get(child);
      if (c == nullptr) continue;
      const std::size_t below = length + 1 + c->name.size();
      deepest = std::max(deepest, below);
      if (c->folder) todo.emplace_back(child, below);
    }
  }
  return deepest;
}

std::vector<bool> kept_by_retention(const std::vector<version>& history, std::int64_t cutoff_us) {
  std::vector<bool> keep(history.size(), false);
  if (history.empty()) return keep;
  keep.back() = true;
  for (std::size_t i = history.size(); i-- > 0;) {
    if (!history[i].deletion) {
      keep[i] = true;
      break;
    }
  }
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (history[i].timestamp_us >= cutoff_us) keep[i] = true;
  }
  return keep;
}

const node* namespace_state::find_deleted_file(std::string_view path) const {
  const std::string key = fold_case(path);
  const node* best = nullptr;
  for (const auto& [id, n] : nodes_) {
    if (!n.deleted || n.folder || n.history.empty()) continue;
    if (fold_case(n.history.back().path) != key) continue;
    if (best == nullptr || n.revision > best->revision) best = &n;
  }
  return best;
}

std::vector<version> namespace_state::history(std::string_view path) const {
  const node* n = lookup(path);
  if (n == nullptr) n = find_deleted_file(path);
  if (n == nullptr || n->folder) return {};
  return n->history;
}

namespace {

bool same_version(const version& a, const version& b) {
  return a.revision == b.revision && a.deletion == b.deletion && a.path == b.path &&
         a.content == b.content && a.device_id == b.device_id && a.timestamp_us == b.timestamp_us;
}

bool same_node(const node& a, const node& b) {
  return a.id == b.id && a.parent == b.parent && a.name == b.name && a.folder == b.folder &&
         a.moved_seq == b.moved_seq &&
         a.children == b.children &&
         a.deleted == b.deleted && a.revision == b.revision && a.content == b.content &&
         std::equal(a.history.begin(), a.history.end(), b.history.begin(), b.history.end(),
                    same_version);
}

}  // namespace

bool operator==(const namespace_state& a, const namespace_state& b) {
  if (a.last_seq_ != b.last_seq_ || a.last_hash_ != b.last_hash_ ||
      a.last_timestamp_us_ != b.last_timestamp_us_ ||
      a.quota_bytes_ != b.quota_bytes_ || a.used_bytes_ != b.used_bytes_ ||
      a.live_files_ != b.live_files_ || a.next_node_id_ != b.next_node_id_ ||
      !(a.operations_ == b.operations_) || a.nodes_.size() != b.nodes_.size()) {
    return false;
  }
  for (const auto& [id, n] : a.nodes_) {
    auto other = b.nodes_.find(id);
    if (other == b.nodes_.end() || !same_node(n, other->second)) return false;
  }
  return true;
}

}  // namespace autosync::actors
