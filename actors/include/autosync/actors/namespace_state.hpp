// A user's namespace: the tree of folders and files derived from the user's events.
//
// Pure and deterministic: the state changes only through apply(), and applying the same
// events in the same order gives the same state anywhere. No clock, no threads, no I/O.
#pragma once

#include <boost/container/small_vector.hpp>
#include <capnp/message.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autosync/actors/operation_window.hpp"
#include "autosync/base/error.hpp"
#include "autosync/base/sha256.hpp"
#include "autosync/schema/journal.capnp.h"

namespace autosync::actors {

// Stable id of a file or folder: given when it is created, kept across moves.
using node_id = std::uint64_t;
inline constexpr node_id root_id = 1;

struct chunk_ref {
  sha256_digest hash;
  std::uint32_t size = 0;
  friend bool operator==(const chunk_ref& a, const chunk_ref& b) {
    return a.hash == b.hash && a.size == b.size;
  }
};

struct file_content {
  std::uint64_t size = 0;
  sha256_digest hash;              // of the whole content
  // In file order; sizes add up to `size`. Most files are one chunk, held inline: a
  // large namespace has two lists per file (its content and its newest revision's), and
  // two heap blocks per file were a fifth of loading one.
  boost::container::small_vector<chunk_ref, 1> chunks;
  std::int64_t mtime_us = 0;
  friend bool operator==(const file_content& a, const file_content& b) {
    return a.size == b.size && a.hash == b.hash && a.chunks == b.chunks && a.mtime_us == b.mtime_us;
  }
};

// One revision in a file's history.
struct version {
  std::uint64_t revision = 0;  // the seq of the event that made it
  bool deletion = false;       // this revision deleted the file
  std::string path;            // where the file was at that revision
  file_content content;        // empty for a deletion
  std::string device_id;
  std::int64_t timestamp_us = 0;
};

struct node {
  node_id id = 0;
  node_id parent = 0;
  std::string name;
  bool folder = false;
  bool deleted = false;         // a tombstone: kept for history, undelete and restore
  std::uint64_t revision = 0;   // files: the current revision; folders: the seq that created it
  std::uint64_t moved_seq = 0;  // the seq of its last move or rename (0: never)
  file_content content;         // files: the current content
  std::vector<version> history; // files: every revision, oldest first
  // Folders: the live children, by folded name (fold_case). Derived from the children's
  // parent and name; kept here so a lookup searches one folder, not the whole tree.
  // Hashed, not ordered: a folder of thousands of files made every commit's path lookup a
  // dozen string compares, each a cache miss (a tenth of a user actor's time); listings
  // sort by name anyway.
  std::unordered_map<std::string, node_id> children;
};

class namespace_state {
public:
  // How many operation ids are remembered for exactly-once retries. A client retries within
  // seconds or minutes; 10,000 commands covers that for any realistic rate per user.
  static constexpr std::size_t operations_remembered = 10000;

  namespace_state();

  // The live entry at a path (names compared without letter case), or nullptr.
  const node* lookup(std::string_view path) const;
  // Any entry, live or deleted, by id.
  const node* get(node_id id) const;
  // The current path of an entry ("/" for the root).
  std::string path_of(node_id id) const;
  // The live children of a folder, ordered by name.
  std::vector<const node*> children(node_id folder) const;
  // The live child of `folder` whose name folds to the same key as `name`.
  const node* child(node_id folder, std::string_view name) const;
  bool is_inside(node_id id, node_id ancestor) const;  // id == ancestor counts
  // A live entry below `folder` (or the folder itself) written, created or moved after
  // `seq`, or nullptr: what a caller who saw the tree as of `seq` has not seen.
  const node* changed_after(node_id folder, std::uint64_t seq) const;
  // The bytes the longest live path below `id` adds to its path ("/a/b.txt" below "/x"
  // adds 8); 0 for a file or an empty folder.
  std::size_t deepest_below(node_id id) const;
  // Every entry, live and deleted, in id order (the root included).
  std::vector<const node*> all_nodes() const;
  const applied_operation* find_operation(std::string_view operation_id) const;
  // The most recently deleted file whose last path was `path` (letter case ignored), or
  // nullptr. TODO(perf): scans every entry; index tombstones by path if undelete gets hot.
  const node* find_deleted_file(std::string_view path) const;
  // The revisions of the file at `path` (live, or else the most recently deleted one), oldest
  // first, each with the path the file had then: history follows renames. Empty if none.
  std::vector<version> history(std::string_view path) const;
  // Every chunk some revision of some entry (live or deleted) refers to, sorted, once each:
  // what reclaiming the user's chunk space must keep.
  std::vector<sha256_digest> referenced_chunks() const;

  std::uint64_t last_seq() const noexcept { return last_seq_; }
  const sha256_digest& last_hash() const noexcept { return last_hash_; }
  // The newest timestamp of any event applied. New events are stamped no earlier, so a
  // user's timestamps rise with seq even when the clock steps back (a point-in-time view
  // by time relies on it).
  std::int64_t last_timestamp_us() const noexcept { return last_timestamp_us_; }
  std::uint64_t quota_bytes() const noexcept { return quota_bytes_; }  // 0: unlimited
  std::uint64_t used_bytes() const noexcept { return used_bytes_; }
  node_id next_node_id() const noexcept { return next_node_id_; }
  // Files and folders held, tombstones included: what a snapshot encodes.
  std::size_t entry_count() const noexcept { return nodes_.size(); }
  std::size_t live_files() const noexcept { return live_files_; }

  // Applies the user's event `seq` (which must be last_seq() + 1) whose hash is `hash`.
  // Fails (corruption) on an event that does not fit the state: a gap in seq, an unknown
  // node, a name taken. The state is unchanged when it fails.
  status apply(std::uint64_t seq, const sha256_digest& hash, schema::Event::Reader event);

  // Equal states: same entries, history, quota, operations and chain head.
  friend bool operator==(const namespace_state& a, const namespace_state& b);

  // The state as a NamespaceState message (schema/journal.capnp), for a snapshot.
  std::string encode() const;
  // A state from encode()'s bytes, at chain position (seq, hash) as the snapshot records.
  static result<namespace_state> decode(std::string_view bytes, std::uint64_t seq,
                                        const sha256_digest& hash);

private:
  status apply_commit(std::uint64_t seq, schema::Event::Reader event);
  status apply_delete(std::uint64_t seq, schema::Event::Reader event);
  status apply_move(std::uint64_t seq, schema::Event::Reader event);
  status apply_folder(std::uint64_t seq, schema::Event::Reader event);
  status apply_restore(std::uint64_t seq, schema::Event::Reader event);
  status apply_retention(std::uint64_t seq, schema::Event::Reader event);
  // Enters a live node in its parent folder's children, or takes it out.
  void link(const node& n);
  void unlink(const node& n);
  void delete_subtree(node& n, std::uint64_t seq, const version& marker);
  // Where a new entry at `path` goes: its parent folder, or an error.
  result<node_id> parent_for(std::string_view path, std::uint64_t seq) const;

  std::unordered_map<node_id, node> nodes_;
  std::uint64_t last_seq_ = 0;
  sha256_digest last_hash_;
  std::int64_t last_timestamp_us_ = 0;
  std::uint64_t quota_bytes_ = 0;
  std::uint64_t used_bytes_ = 0;
  std::size_t live_files_ = 0;
  node_id next_node_id_ = root_id + 1;
  operation_window operations_{operations_remembered};
};

// Which revisions of a file's history retention with `cutoff_us` keeps: those from the
// cutoff on, the newest, and the newest content of a deleted file (so it can be undeleted).
// Deciding and applying retention both use it: a decision to trim must trim something.
std::vector<bool> kept_by_retention(const std::vector<version>& history, std::int64_t cutoff_us);

// Reads a content struct of the schema.
file_content content_from(schema::FileContent::Reader reader);
// Writes one.
void content_to(const file_content& content, schema::FileContent::Builder builder);

}  // namespace autosync::actors
