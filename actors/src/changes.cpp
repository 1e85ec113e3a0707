#include "autosync/actors/changes.hpp"

#include <algorithm>

namespace autosync::actors {

namespace {

error cursor_beyond_head(std::uint64_t cursor) {
  return error(error_kind::stale_cursor, "cursor " + std::to_string(cursor) +
                                             " is past this user's newest change: list again to "
                                             "get a fresh cursor");
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// The change an event makes, or false for events that change nothing people see.
bool to_change(std::uint64_t seq, schema::Event::Reader e, change& out) {
  out.seq = seq;
  out.device_id = text(e.getDeviceId());
  out.timestamp_us = e.getTimestampUs();
  switch (e.which()) {
    case schema::Event::FILE_COMMITTED: {
      auto c = e.getFileCommitted();
      out.what = change::kind::committed;
      out.node = c.getNodeId();
      out.path = text(c.getPath());
      out.revision = seq;
      out.content = content_from(c.getContent());
      return true;
    }
    case schema::Event::FILE_DELETED: {
      auto d = e.getFileDeleted();
      out.what = change::kind::deleted;
      out.node = d.getNodeId();
      out.path = text(d.getPath());
      out.folder = d.getIsFolder();
      return true;
    }
    case schema::Event::MOVED: {
      auto m = e.getMoved();
      out.what = change::kind::moved;
      out.node = m.getNodeId();
      out.from_path = text(m.getFromPath());
      out.path = text(m.getToPath());
      out.folder = m.getIsFolder();
      return true;
    }
    case schema::Event::FOLDER_CREATED: {
      auto f = e.getFolderCreated();
      out.what = change::kind::folder_created;
      out.node = f.getNodeId();
      out.path = text(f.getPath());
      out.folder = true;
      return true;
    }
    case schema::Event::REVISION_RESTORED: {
      auto r = e.getRevisionRestored();
      out.what = change::kind::restored;
      out.node = r.getNodeId();
      out.path = text(r.getPath());
      out.revision = seq;
      out.content = content_from(r.getContent());
      return true;
    }
    case schema::Event::QUOTA_CHANGED:
      out.what = change::kind::quota_changed;
      out.quota_bytes = e.getQuotaChanged().getQuotaBytes();
      return true;
    case schema::Event::RETENTION_APPLIED: return false;
  }
  return false;
}

}  // namespace

std::optional<change> change_of(std::uint64_t seq, schema::Event::Reader event) {
  change c;
  if (!to_change(seq, event, c)) return std::nullopt;
  return c;
}

status check_cursor(const event_store& store, const std::string& user, std::uint64_t cursor) {
  if (cursor == 0) return status::ok();
  bool found = false;
  // Only whether it exists: the chain is not needed for that.
  auto s = store.read(user, cursor, cursor, [&](journal::stored_event&&) {
    found = true;
    return false;
  }, journal::chain_check::by_caller);
  if (!s) return s;
  if (!found) return cursor_beyond_head(cursor);
  return status::ok();
}

std::size_t answer_bytes(const change& c) {
  // The fixed part, the texts, and each chunk's hash, size and list word.
  return 160 + c.path.size() + c.from_path.size() + c.device_id.size() +
         48 * c.content.chunks.size();
}

result<change_page> changes_since(const event_store& store, const std::string& user,
                                  std::uint64_t cursor, std::size_t count_max,
                                  const std::optional<sha256_digest>& cursor_hash,
                                  std::size_t bytes_max) {
  change_page page;
  std::size_t bytes = 0;
  page.cursor = cursor;
  bool another_history = false;
  // From the cursor's own event, which must exist (check_cursor), not cursor + 1: that
  // wraps round to 0 for the largest cursor.
  bool cursor_found = cursor == 0;
  auto s = store.read(user, std::max<std::uint64_t>(cursor, 1), UINT64_MAX,
                      [&](journal::stored_event&& e) {
                        if (e.seq() == cursor) {
                          cursor_found = true;
                          page.cursor_hash = e.hash();
                          another_history = cursor_hash && *cursor_hash != e.hash();
                          return !another_history;
                        }
                        if (page.changes.size() >= count_max) {
                          page.more = true;
                          return false;
                        }
                        change c;
                        if (to_change(e.seq(), e.event(), c)) {
                          const auto size = answer_bytes(c);
                          if (!page.changes.empty() && bytes + size > bytes_max) {
                            page.more = true;
                            return false;
                          }
                          bytes += size;
                          page.changes.push_back(std::move(c));
                        }
                        page.cursor = e.seq();
                        page.cursor_hash = e.hash();
                        return true;
                      });
  if (!s) return std::move(s).err();
  if (!cursor_found) return cursor_beyond_head(cursor);
  if (another_history) {
    return error(error_kind::stale_cursor,
                 "cursor " + std::to_string(cursor) +
                     " names another event than the one this view saw: the journal was "
                     "restored from a backup since; list again");
  }
  return page;
}

}  // namespace autosync::actors
