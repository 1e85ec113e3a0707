// The read-only commands: users, events, state.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "autosync/base/utc_time.hpp"
#include "replay.hpp"

namespace autosync::replay {

namespace {

using json = nlohmann::json;

// JSON text of a value whose strings came from the journal: a byte that is not UTF-8 (an
// older build journaled device ids unchecked) is shown as U+FFFD rather than ending the
// output with an exception.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::string hex(capnp::Data::Reader d) {
  return to_hex({reinterpret_cast<const char*>(d.begin()), d.size()});
}

json content_json(schema::FileContent::Reader c) {
  return {{"size", c.getSize()}, {"content_hash", hex(c.getContentHash())},
          {"chunks", c.getChunks().size()}, {"mtime", format_utc(c.getMtimeUs())}};
}

// The event's kind and its own fields.
std::pair<std::string, json> body_of(schema::Event::Reader e) {
  switch (e.which()) {
    case schema::Event::FILE_COMMITTED: {
      auto c = e.getFileCommitted();
      return {"fileCommitted", {{"node", c.getNodeId()}, {"path", text(c.getPath())},
                                {"base_revision", c.getBaseRevision()},
                                {"content", content_json(c.getContent())}}};
    }
    case schema::Event::FILE_DELETED: {
      auto d = e.getFileDeleted();
      return {"fileDeleted", {{"node", d.getNodeId()}, {"path", text(d.getPath())},
                              {"base_revision", d.getBaseRevision()}}};
    }
    case schema::Event::MOVED: {
      auto m = e.getMoved();
      return {"moved", {{"node", m.getNodeId()}, {"from", text(m.getFromPath())},
                        {"to", text(m.getToPath())}, {"folder", m.getIsFolder()}}};
    }
    case schema::Event::FOLDER_CREATED: {
      auto f = e.getFolderCreated();
      return {"folderCreated", {{"node", f.getNodeId()}, {"path", text(f.getPath())}}};
    }
    case schema::Event::REVISION_RESTORED: {
      auto r = e.getRevisionRestored();
      return {"revisionRestored", {{"node", r.getNodeId()}, {"path", text(r.getPath())},
                                   {"restored_revision", r.getRestoredRevision()},
                                   {"base_revision", r.getBaseRevision()},
                                   {"content", content_json(r.getContent())}}};
    }
    case schema::Event::QUOTA_CHANGED:
      return {"quotaChanged", {{"quota_bytes", e.getQuotaChanged().getQuotaBytes()}}};
    case schema::Event::RETENTION_APPLIED: {
      auto r = e.getRetentionApplied();
      return {"retentionApplied", {{"cutoff", format_utc(r.getCutoffUs())},
                                   {"removed_nodes", r.getRemovedNodes().size()},
                                   {"trimmed_files", r.getTrimmedFiles().size()}}};
    }
  }
  return {"unknown", json::object()};
}

std::string readable(const json& fields) {
  std::string out;
  for (const auto& [key, value] : fields.items()) {
    if (!out.empty()) out += ' ';
    out += key + "=" + (value.is_string() ? value.get<std::string>() : dump(value));
  }
  return out;
}

}  // namespace

int list_users(journal::journal& j, bool json_lines, std::ostream& out, std::ostream& err) {
  if (!json_lines) {
    out << "user\tevents\tlast_seq\tlive_files\tlive_bytes\tchunks\tstored_bytes\t"
           "unreferenced_bytes\n";
  }
  std::size_t users = 0;
  std::optional<error> failure;
  auto s = j.list_users([&](std::string_view name, const result<journal::user_head>& read) {
    const std::string user(name);
    if (!read) {
      failure = read.err();
      return false;
    }
    const journal::user_head& head = *read;
    auto state = state_at(j, user, {});
    if (!state) {
      failure = std::move(state).err();
      return false;
    }
    // What the chunk store holds for the user, and how much of it no revision refers to
    // any more: what the next reclaim gives back, once older than the retention period.
    const auto referenced = state->referenced_chunks();
    std::uint64_t chunks = 0, stored = 0, unreferenced = 0;
    auto listed = j.list_chunks(user, [&](const journal::stored_chunk& c) {
      ++chunks;
      stored += c.size;
      if (!std::binary_search(referenced.begin(), referenced.end(), c.id,
                              [](const auto& a, const auto& b) { return a.bytes < b.bytes; })) {
        unreferenced += c.size;
      }
      return true;
    });
    if (!listed) {
      failure = std::move(listed).err();
      return false;
    }
    ++users;
    if (json_lines) {
      out << dump(json{{"user", user},
                  {"events", head.last_seq},
                  {"last_seq", head.last_seq},
                  {"live_files", state->live_files()},
                  {"live_bytes", state->used_bytes()},
                  {"chunks", chunks},
                  {"stored_bytes", stored},
                  {"unreferenced_bytes", unreferenced}})
          << "\n";
    } else {
      out << user << "\t" << head.last_seq << "\t" << head.last_seq << "\t" << state->live_files()
          << "\t" << state->used_bytes() << "\t" << chunks << "\t" << stored << "\t"
          << unreferenced << "\n";
    }
    return true;
  });
  if (!s) failure = std::move(s).err();
  if (failure) {
    err << "autosync-replay: " << failure->to_string()
        << "\n  run `autosync-replay verify` for a full report\n";
    return 1;
  }
  err << users << " users\n";
  return 0;
}

int print_events(journal::journal& j, const std::string& user, std::uint64_t from,
                 std::uint64_t to, bool json_lines, std::ostream& out, std::ostream& err) {
  auto s = j.read_events(user, from, to, [&](journal::stored_event&& stored) {
    auto e = stored.event();
    auto [kind, fields] = body_of(e);
    if (json_lines) {
      json line = {{"seq", stored.seq()},        {"hash", stored.hash().hex()},
                   {"prev_hash", hex(e.getPrevHash())},
                   {"time", format_utc(e.getTimestampUs())},
                   {"device", text(e.getDeviceId())}, {"operation", text(e.getOperationId())},
                   {"kind", kind}};
      line.update(fields);
      out << dump(line) << "\n";
    } else {
      out << stored.seq() << "  " << format_utc(e.getTimestampUs()) << "  " << kind << "  "
          << readable(fields) << "  device=" << text(e.getDeviceId()) << "\n";
    }
    return true;
  });
  if (!s) {
    err << "autosync-replay: " << s.to_string()
        << "\n  events before it were printed; `autosync-replay verify " << user
        << "` reports everything that is wrong\n";
    return 1;
  }
  return 0;
}

int print_state(journal::journal& j, const std::string& user, const point& at,
                bool json_lines, std::ostream& out, std::ostream& err) {
  auto state = state_at(j, user, at);
  if (!state) {
    err << "autosync-replay: " << state.err().to_string() << "\n";
    return 1;
  }
  // Depth first, children by name: the order `ls -R` would show.
  std::vector<actors::node_id> stack = {actors::root_id};
  while (!stack.empty()) {
    const auto id = stack.back();
    stack.pop_back();
    const auto children = state->children(id);
    for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back((*it)->id);
    if (id == actors::root_id) continue;
    const actors::node& n = *state->get(id);
    const std::string path = state->path_of(id);
    if (json_lines) {
      json line = {{"path", path}, {"node", n.id}, {"folder", n.folder}, {"revision", n.revision}};
      if (!n.folder) {
        line["size"] = n.content.size;
        line["content_hash"] = n.content.hash.hex();
      }
      out << dump(line) << "\n";
    } else if (n.folder) {
      out << path << "/\n";
    } else {
      out << path << "  " << n.content.size << " bytes  revision " << n.revision << "  "
          << n.content.hash.hex() << "\n";
    }
  }
  err << "state of " << user << " at seq " << state->last_seq() << ": " << state->live_files()
      << " files, " << state->used_bytes() << " bytes\n";
  return 0;
}

}  // namespace autosync::replay
