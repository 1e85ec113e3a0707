// Commands and the decision: what a command means for a namespace, as events to append or
// a refusal. Pure: the state is only read, and the answer depends on nothing else but the
// chunk-presence answer the caller supplies.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "autosync/actors/namespace_state.hpp"

namespace autosync::actors {

// A new version of a file. base_revision 0 means "create": a conflict if the path exists.
struct commit_file {
  std::string path;
  std::uint64_t base_revision = 0;
  file_content content;
};

// Deletes a file, or a folder with everything below it. base_revision 0 deletes whatever
// is there; otherwise, for a file, it must be its current revision, and for a folder it is
// the seq of the caller's view: nothing below may have been written, created or moved
// since (else a conflict naming the newer entry).
struct delete_entry {
  std::string path;
  std::uint64_t base_revision = 0;
};

// Moves or renames a file or a folder (with everything below it); ids are kept.
struct move_entry {
  std::string from;
  std::string to;
};

struct create_folder {
  std::string path;
};

struct set_quota {
  std::uint64_t bytes = 0;  // 0: unlimited
};

// Makes an older revision of a file its newest one. On a deleted file it also brings the
// file back, at `path`.
struct restore_revision {
  std::string path;
  std::uint64_t revision = 0;
};

// Brings back the most recently deleted file that was at `path`, with its last content.
struct undelete_file {
  std::string path;
};

// The retention policy: reclaims deleted entries whose deletion, and revisions replaced,
// before `cutoff_us` (a file's newest revision always stays). The server issues it.
struct apply_retention {
  std::int64_t cutoff_us = 0;
};

using command_body = std::variant<commit_file, delete_entry, move_entry, create_folder, set_quota,
                                  restore_revision, undelete_file, apply_retention>;

struct command {
  std::string device_id;
  std::string operation_id;  // the same for every retry of one command
  std::int64_t timestamp_us = 0;  // when the server accepted it (the caller's clock)
  command_body body;
};

// A digest of the command's kind and arguments (not its operation id, device or time):
// equal for a retry, different for another command. Stored with its events.
std::uint64_t command_digest(const command& cmd);

// What stands at a path, as a refusal reports it.
struct entry_info {
  node_id id = 0;
  std::string path;
  bool folder = false;
  std::uint64_t revision = 0;
  std::uint64_t size = 0;
  sha256_digest hash;
};

struct decision {
  // Events to append, in order, as one atomic append. Their seq and prevHash are filled
  // by the journal.
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events;
  // Set when the operation id was already applied: append nothing and answer with this.
  std::optional<applied_operation> already_applied;
};

struct refusal {
  error reason;  // invalid, conflict, not_found, quota_exceeded, too_large
  std::optional<entry_info> current;          // conflicts: what is there now
  std::vector<sha256_digest> missing_chunks;  // a commit naming chunks the store lacks
};

using decide_result = std::variant<decision, refusal>;

// For each chunk, its size in the user's chunk store, or nothing when the store lacks it.
using chunk_presence =
    std::function<std::vector<std::optional<std::uint64_t>>(const std::vector<sha256_digest>&)>;

decide_result decide(const namespace_state& state, const command& cmd, const chunk_presence& has);

// The chunks deciding `cmd` against `state` asks `has` about (a commit's chunks that the
// file's current version does not hold), so an owner can look them up ahead, off the
// thread that decides.
std::vector<sha256_digest> chunks_to_look_up(const namespace_state& state, const command& cmd);

}  // namespace autosync::actors
