#include "wire.hpp"

namespace autosync::server {

namespace rpc = schema::rpc;

capnp::Data::Reader bytes_of(const sha256_digest& d) { return {d.bytes.data(), d.bytes.size()}; }

namespace {

rpc::Failure::Kind kind_of(error_kind kind) {
  switch (kind) {
    case error_kind::invalid: return rpc::Failure::Kind::INVALID;
    case error_kind::too_large: return rpc::Failure::Kind::TOO_LARGE;
    case error_kind::not_found: return rpc::Failure::Kind::NOT_FOUND;
    case error_kind::conflict: return rpc::Failure::Kind::CONFLICT;
    case error_kind::quota_exceeded: return rpc::Failure::Kind::QUOTA_EXCEEDED;
    case error_kind::overloaded: return rpc::Failure::Kind::OVERLOADED;
    case error_kind::unavailable: return rpc::Failure::Kind::UNAVAILABLE;
    case error_kind::corruption: return rpc::Failure::Kind::CORRUPTION;
    case error_kind::internal: return rpc::Failure::Kind::INTERNAL;
    case error_kind::unauthenticated: return rpc::Failure::Kind::UNAUTHENTICATED;
    case error_kind::forbidden: return rpc::Failure::Kind::FORBIDDEN;
    case error_kind::rate_limited: return rpc::Failure::Kind::RATE_LIMITED;
    case error_kind::stale_cursor: return rpc::Failure::Kind::STALE_CURSOR;
    case error_kind::local_io:  // a client's own disk: never the server's answer
      return rpc::Failure::Kind::UNAVAILABLE;
  }
  return rpc::Failure::Kind::INTERNAL;
}

rpc::Change::Kind kind_of(actors::change::kind kind) {
  using k = actors::change::kind;
  switch (kind) {
    case k::committed: return rpc::Change::Kind::COMMITTED;
    case k::deleted: return rpc::Change::Kind::DELETED;
    case k::moved: return rpc::Change::Kind::MOVED;
    case k::folder_created: return rpc::Change::Kind::FOLDER_CREATED;
    case k::restored: return rpc::Change::Kind::RESTORED;
    case k::quota_changed: return rpc::Change::Kind::QUOTA_CHANGED;
  }
  return rpc::Change::Kind::COMMITTED;
}

void chunks_to_wire(const actors::file_content& content, rpc::Entry::Builder out) {
  auto chunks = out.initChunks(static_cast<unsigned>(content.chunks.size()));
  for (unsigned i = 0; i < chunks.size(); ++i) {
    chunks[i].setHash(bytes_of(content.chunks[i].hash));
    chunks[i].setSize(content.chunks[i].size);
  }
}

}  // namespace

std::string text_of(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

entry_copy copy_entry(const actors::namespace_state& state, const actors::node& n) {
  entry_copy e;
  e.id = n.id;
  e.path = state.path_of(n.id);
  e.folder = n.folder;
  e.revision = n.revision;
  if (!n.folder) {
    e.content = n.content;
    if (!n.history.empty()) e.device_id = n.history.back().device_id;
  }
  return e;
}

namespace {

// A file as one revision left it.
entry_copy file_entry(actors::node_id id, const std::string& path, std::uint64_t revision,
                      const actors::file_content& content, const std::string& device_id) {
  entry_copy e;
  e.id = id;
  e.path = path;
  e.revision = revision;
  e.content = content;
  e.device_id = device_id;
  return e;
}

}  // namespace

std::optional<entry_copy> entry_at_revision(const actors::namespace_state& state,
                                            std::string_view path, std::uint64_t revision) {
  auto from = [&](const actors::node& n) -> std::optional<entry_copy> {
    for (const auto& v : n.history) {
      if (v.revision != revision || v.deletion) continue;
      return file_entry(n.id, v.path, v.revision, v.content, v.device_id);
    }
    return std::nullopt;
  };
  if (const auto* n = state.lookup(path); n != nullptr && !n->folder) {
    if (auto e = from(*n)) return e;
  }
  // Moved or deleted since: a rare retry, worth a walk over every entry.
  for (const auto* n : state.all_nodes()) {
    if (n->folder) continue;
    if (auto e = from(*n)) return e;
  }
  return std::nullopt;
}

void to_wire(const entry_copy& e, rpc::Entry::Builder out, bool with_chunks) {
  out.setId(e.id);
  out.setPath(e.path);
  out.setFolder(e.folder);
  out.setRevision(e.revision);
  if (e.folder) return;
  out.setSize(e.content.size);
  out.setHash(bytes_of(e.content.hash));
  out.setMtimeUs(e.content.mtime_us);
  out.setDeviceId(e.device_id);
  if (with_chunks) chunks_to_wire(e.content, out);
}

void to_wire(const actors::version& v, rpc::Version::Builder out) {
  out.setRevision(v.revision);
  out.setDeleted(v.deletion);
  out.setPath(v.path);
  out.setSize(v.content.size);
  out.setHash(bytes_of(v.content.hash));
  out.setMtimeUs(v.content.mtime_us);
  out.setDeviceId(v.device_id);
  out.setTimestampUs(v.timestamp_us);
}

void to_wire(const actors::change& c, rpc::Change::Builder out) {
  out.setKind(kind_of(c.what));
  out.setSeq(c.seq);
  out.setPath(c.path);
  out.setFromPath(c.from_path);
  out.setFolder(c.folder);
  out.setDeviceId(c.device_id);
  out.setTimestampUs(c.timestamp_us);
  if (c.what == actors::change::kind::committed || c.what == actors::change::kind::restored) {
    to_wire(file_entry(c.node, c.path, c.revision, c.content, c.device_id), out.initEntry(), true);
  }
}

void to_wire(const error& e, rpc::Failure::Builder out) {
  out.setKind(kind_of(e.kind()));
  out.setMessage(e.message());
}

void to_wire(const actors::refusal& r, rpc::Failure::Builder out) {
  to_wire(r.reason, out);
  if (!r.missing_chunks.empty()) {
    out.setKind(rpc::Failure::Kind::MISSING_CHUNKS);
    auto missing = out.initMissingChunks(static_cast<unsigned>(r.missing_chunks.size()));
    for (unsigned i = 0; i < missing.size(); ++i) missing.set(i, bytes_of(r.missing_chunks[i]));
  }
  if (r.current) {
    auto cur = out.initCurrent();
    cur.setId(r.current->id);
    cur.setPath(r.current->path);
    cur.setFolder(r.current->folder);
    cur.setRevision(r.current->revision);
    cur.setSize(r.current->size);
    if (!r.current->folder) cur.setHash(bytes_of(r.current->hash));
  }
}

result<sha256_digest> digest_from(capnp::Data::Reader data) {
  auto d = sha256_digest::from_bytes(
      std::string_view(reinterpret_cast<const char*>(data.begin()), data.size()));
  if (!d) {
    return error(error_kind::invalid, "a hash must be 32 bytes (SHA-256), not " +
                                          std::to_string(data.size()));
  }
  return *d;
}

}  // namespace autosync::server
