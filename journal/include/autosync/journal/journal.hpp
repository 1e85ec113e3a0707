// The journal: AutoSync's database of record on one node.
//
// Per user it holds a dense, hash-chained sequence of events, snapshots of derived state,
// and content-addressed chunks; all of it sealed with AES-256-GCM under a per-user key.
// Appends from any number of threads and users are coalesced by one writer into one
// RocksDB batch and one fsync (group commit); an append is acknowledged only after that
// fsync. It knows nothing of actors or the network.
//
// Thread safety: every method may be called from any thread at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "autosync/base/error.hpp"
#include "autosync/base/sha256.hpp"
#include "autosync/journal/master_key.hpp"
#include "autosync/schema/journal.capnp.h"

namespace rocksdb {
class Env;
}

namespace autosync::journal {

// Limits, with the reason beside each.
struct limits {
  // A user id is a JWT subject: short, but an OIDC provider may use a URL or a UUID.
  static constexpr std::size_t user_id_bytes_max = 255;
  // A file's event lists its chunks; 16 MiB holds ~350k chunk references.
  static constexpr std::size_t event_bytes_max = 16u << 20;
  // The SDK cuts chunks of at most a few MiB; anything larger is a client bug.
  static constexpr std::size_t chunk_bytes_max = 16u << 20;
  static constexpr std::size_t snapshot_bytes_max = 512u << 20;
};

struct options {
  std::filesystem::path dir;
  ::autosync::journal::master_key master_key;
  // Opened read-only: no lock is taken, so a tool can read beside a live node or a backup.
  // Every write returns an `invalid` error.
  bool read_only = false;
  // Storage seam: tests pass an Env whose file system fails on demand. Not owned.
  rocksdb::Env* env = nullptr;
  // One group commit takes at most this much of the queue; the rest waits for the next one.
  // Bounds the latency one huge batch adds to the small appends behind it.
  std::size_t batch_records_max = 4096;
  std::size_t batch_bytes_max = 8u << 20;
  // Appends beyond this many queued bytes fail with `overloaded` instead of growing memory.
  std::size_t queue_bytes_max = 256u << 20;
  // Writer threads, each group-committing the appends of its share of the users. One is
  // the default: measured on two cores, two shards were slower (each fsyncs on its own,
  // halving the batch per fsync). The seam the replicated per-shard logs will use.
  std::size_t write_shards = 1;
};

// The events of one append: all of them, for one user, get consecutive sequence numbers
// and are made durable in one atomic write, or none is.
struct append_request {
  std::string user;
  // Each message's root is a schema::Event with its body, timestamp, device and operation
  // id set. The journal fills formatVersion, seq and prevHash.
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events;
  // Fencing: when set, the append fails with `conflict` unless the user's next sequence
  // number is exactly this. A writer that lost ownership of a user cannot fork the chain.
  std::optional<std::uint64_t> expected_next_seq;
};

struct appended {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  sha256_digest last_hash;
};

// Called once, on the journal's writer thread, after the fsync (or the failure). It must
// not block: hand the result to another thread or actor and return.
using append_callback = std::function<void(result<appended>)>;
using status_callback = std::function<void(status)>;
using chunk_callback = std::function<void(result<bool>)>;

struct stored_chunk {
  sha256_digest id;
  std::uint32_t size = 0;          // plaintext bytes
  std::int64_t stored_at_us = 0;   // wall clock; 0 when stored by a build before it was kept
};
struct reclaimed {
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;  // plaintext bytes of the chunks forgotten
};
using reclaim_callback = std::function<void(result<reclaimed>)>;

// Who checks that each event's prevHash is the hash of the event before it. by_caller is
// for a caller that checks it anyway (applying events to a namespace does): the hashing
// then runs on the caller's thread, so a replay's reading and applying threads share it.
enum class chain_check { by_journal, by_caller };

// One event as stored, decrypted and verified (seq matches its key, hash matches bytes).
class stored_event {
public:
  struct parsed;  // the canonical words and a reader over them, one heap block (read.cpp)
  stored_event(std::uint64_t seq, std::unique_ptr<parsed> words);
  stored_event(stored_event&&) noexcept;
  stored_event& operator=(stored_event&&) noexcept;
  ~stored_event();

  std::uint64_t seq() const noexcept { return seq_; }
  // The SHA-256 of canonical_bytes(), computed on first use: a replay hashes on the thread
  // that applies, so reading and applying cost about the same and overlap best. Not
  // thread safe (like the rest of an event, it is used by one thread at a time).
  const sha256_digest& hash() const noexcept;
  // Valid while this object lives.
  schema::Event::Reader event() const;
  // The canonical bytes the hash covers.
  std::string_view canonical_bytes() const noexcept;

private:
  std::uint64_t seq_;
  mutable bool hashed_ = false;
  mutable sha256_digest hash_;
  std::unique_ptr<parsed> parsed_;
};

struct user_head {
  std::uint64_t last_seq = 0;  // 0: no events yet
  sha256_digest last_hash;     // zero when last_seq is 0
};

struct snapshot {
  std::uint64_t seq = 0;       // the last event the state includes
  sha256_digest head_hash;     // the hash of event `seq`
  std::int64_t timestamp_us = 0;
  std::uint16_t state_format = 0;
  std::string state;           // the domain's encoding; opaque here
};

// Counters since open, for metrics and benchmarks.
struct write_stats {
  std::uint64_t syncs = 0;          // WAL fsyncs: each acknowledges everything written before it
  std::uint64_t items = 0;          // appends, chunk puts and snapshots acknowledged
  std::uint64_t bytes = 0;          // key and value bytes written
  std::uint64_t failed_batches = 0;
  // Chunk bytes written past the page cache (O_DIRECT; see docs/architecture.md); stays 0
  // where the file system takes no direct writes and the cache takes them all.
  std::uint64_t direct_bytes = 0;
};

class journal {
public:
  // Opens (creating when missing, unless read-only) the journal in options.dir.
  static result<std::unique_ptr<journal>> open(options opts);

  // Drains the queue (every queued append is written or failed), then closes.
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  // --- events ---------------------------------------------------------------------------
  // Queues the events; `done` runs after their fsync. Errors: invalid (bad user id, empty
  // or malformed request), too_large, conflict (expected_next_seq), overloaded (queue full),
  // unavailable (I/O error or full disk: every append queued with it fails too).
  void append(append_request request, append_callback done);
  // The same, waiting for the outcome.
  result<appended> append_and_wait(append_request request);

  // The durable head of a user's chain (0 events for an unknown user).
  result<user_head> head(std::string_view user) const;

  // Visits the user's events with from <= seq <= to in order, verified: each seq is dense,
  // each event opens under the user's key, bound to its seq, and (by_journal) each prevHash
  // names the previous event's hash. Stops early when `visit` returns false. A failed check
  // is a `corruption` error naming user and seq.
  status read_events(std::string_view user, std::uint64_t from, std::uint64_t to,
                     const std::function<bool(stored_event&&)>& visit,
                     chain_check check = chain_check::by_journal) const;

  // Visits every user with at least one event or chunk, in key order, with the user's
  // head or the error reading it: one damaged user does not hide the others.
  status list_users(
      const std::function<bool(std::string_view user, const result<user_head>& head)>& visit) const;

  // --- snapshots --------------------------------------------------------------------------
  // Durably stores a snapshot. Refused (invalid) unless snap.seq names a stored event whose
  // hash is snap.head_hash: a snapshot always sits on the chain.
  status write_snapshot(std::string_view user, const snapshot& snap);
  // The same, queued with the appends: `done` runs on the writer thread after the fsync.
  // The checks run now; the snapshot's bytes are copied, so `snap` may go.
  void write_snapshot(std::string_view user, const snapshot& snap, status_callback done);
  // The newest snapshot with seq <= at_or_below, or nothing.
  result<std::optional<snapshot>> read_snapshot(std::string_view user,
                                                std::uint64_t at_or_below) const;
  // Every snapshot's seq, ascending (for verification tools).
  result<std::vector<std::uint64_t>> snapshot_seqs(std::string_view user) const;

  // --- chunks -----------------------------------------------------------------------------
  // Stores a chunk for the user under its SHA-256. `done(true)` when newly stored,
  // `done(false)` when the user already had it. A content whose hash is not `id` is
  // refused as invalid and nothing is stored.
  void put_chunk(std::string_view user, const sha256_digest& id, std::string content,
                 chunk_callback done);
  result<bool> put_chunk_and_wait(std::string_view user, const sha256_digest& id,
                                  std::string content);
  // For each id, whether the user has that chunk. Reads only the small index.
  result<std::vector<bool>> has_chunks(std::string_view user,
                                       const std::vector<sha256_digest>& ids) const;
  // For each id, the size of the user's chunk (its content's bytes), or nothing when the
  // user lacks it. Reads only the small index.
  result<std::vector<std::optional<std::uint64_t>>> chunk_sizes(
      std::string_view user, const std::vector<sha256_digest>& ids) const;
  // The chunk's content, decrypted and checked against its hash.
  result<std::string> get_chunk(std::string_view user, const sha256_digest& id) const;

  // Every chunk the user has, in id order; stops early when `visit` returns false.
  status list_chunks(std::string_view user,
                     const std::function<bool(const stored_chunk&)>& visit) const;
  // Forgets those of the user's chunks named in `ids` that were stored before
  // `stored_before_us` (the others, and ids the user has not, are left alone), and gives
  // their space back: the index entries go in one durable batch, then `done` runs (on the
  // writer thread; at once, on this one, when there is nothing to forget), and the pack
  // space goes back shortly after, on the journal's release thread (`chunk-release`). What
  // no index names is never read again, so a chunk is gone for good.
  void reclaim_chunks(std::string_view user, std::vector<sha256_digest> ids,
                      std::int64_t stored_before_us, reclaim_callback done);
  result<reclaimed> reclaim_chunks_and_wait(std::string_view user, std::vector<sha256_digest> ids,
                                            std::int64_t stored_before_us);

  // --- checkpoints and backups ------------------------------------------------------------
  // A consistent, openable copy of the whole journal in `dir` (which must not exist), made
  // of hard links where the file system allows.
  status create_checkpoint(const std::filesystem::path& dir);
  // A new incremental backup in `backup_dir`; returns its id.
  result<std::uint32_t> create_backup(const std::filesystem::path& backup_dir);

  const std::filesystem::path& dir() const noexcept;
  write_stats stats() const noexcept;

  struct impl;

private:
  explicit journal(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

// Backup ids in `backup_dir`, oldest first.
result<std::vector<std::uint32_t>> list_backups(const std::filesystem::path& backup_dir);
// Re-reads every file of the backup and checks its checksum.
status verify_backup(const std::filesystem::path& backup_dir, std::uint32_t backup_id);
// Restores a backup into `target_dir` (which must hold no live journal).
status restore_backup(const std::filesystem::path& backup_dir, std::uint32_t backup_id,
                      const std::filesystem::path& target_dir);

// Checks a user id: 1..255 bytes of UTF-8 with no control characters.
status validate_user_id(std::string_view user);

}  // namespace autosync::journal
