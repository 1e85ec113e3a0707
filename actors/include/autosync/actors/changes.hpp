// The change feed: what happened to a user's tree after a cursor (a seq), as devices
// consume it to catch up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autosync/actors/event_store.hpp"
#include "autosync/actors/namespace_state.hpp"

namespace autosync::actors {

struct change {
  enum class kind { committed, deleted, moved, folder_created, restored, quota_changed };
  kind what = kind::committed;
  std::uint64_t seq = 0;       // the cursor after this change
  node_id node = 0;
  std::string path;            // where it is now (for a move: the new path)
  std::string from_path;       // moves only
  bool folder = false;         // moves and deletes of folders; folder_created
  std::uint64_t revision = 0;  // committed, restored: the new revision (= seq)
  file_content content;        // committed, restored
  std::uint64_t quota_bytes = 0;
  std::string device_id;       // who made it, so a device can skip its own changes
  std::int64_t timestamp_us = 0;
};

// The change event `seq` makes, or nothing for events that change nothing people see
// (retention records).
std::optional<change> change_of(std::uint64_t seq, schema::Event::Reader event);

// A cursor is 0 or one of the user's seqs (every cursor the server hands out is). Any
// other is a client's bug, or a cursor of another server's journal: `stale_cursor`, saying to
// list again. (Taken as it is, 2^64-1 wrapped round to the first change, and a cursor
// past the head waited for changes that were not coming.)
status check_cursor(const event_store& store, const std::string& user, std::uint64_t cursor);

// Up to `count_max` changes after `cursor`, in order; `stale_cursor` for a cursor check_cursor
// refuses. Retention records are not changes to the tree people see and are skipped (the
// cursor still moves past them).
struct change_page {
  std::vector<change> changes;
  std::uint64_t cursor = 0;   // pass this next time
  sha256_digest cursor_hash;  // the hash of the event at `cursor` (zero for 0)
  bool more = false;          // there are changes after `cursor`
};
// With `cursor_hash`, the event at `cursor` must have that hash: `stale_cursor` if another event
// stands there now (a journal restored to an earlier point that went on differently).
// A page also stops before about `bytes_max` bytes of answer (a change carries its file's
// chunk list), with at least one change: an RPC answer may be at most 8 MiB.
inline constexpr std::size_t change_page_bytes_max = 4u << 20;
result<change_page> changes_since(const event_store& store, const std::string& user,
                                  std::uint64_t cursor, std::size_t count_max,
                                  const std::optional<sha256_digest>& cursor_hash = std::nullopt,
                                  std::size_t bytes_max = change_page_bytes_max);
// About what a change takes in an answer.
std::size_t answer_bytes(const change& c);

}  // namespace autosync::actors
