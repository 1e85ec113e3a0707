// The inside of journal: shared by the .cpp files of this module only.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "autosync/journal/journal.hpp"
#include "keys.hpp"
#include "pack_store.hpp"
#include "sealer.hpp"

namespace autosync::journal {

enum class family : std::size_t { meta = 0, events, snapshots, chunks, count };

// Column family names as stored in the database; the index is the family's value.
inline constexpr const char* family_names[] = {"default", "events", "snapshots", "chunks"};

// The journal's own format (key layout, sealing). Bumped on incompatible change; older
// builds refuse a newer journal instead of misreading it.
inline constexpr std::uint32_t journal_format_version = 1;

// Maps a RocksDB status to an error value that says what failed where and what to do.
error storage_error(const rocksdb::Status& s, std::string_view what);

// One unit of the write queue: written atomically with everything else in its batch.
struct write_item {
  struct put {
    family cf;
    std::string key;
    std::string value;
    bool erase = false;  // a delete of `key` (value unused)
  };
  std::string user;
  std::vector<put> puts;
  // A chunk to store: its sealed bytes go to a pack file, and its location under
  // chunk_key into the chunks family, in the same batch as `puts`.
  std::string chunk_key;
  std::string chunk_sealed;
  std::uint32_t chunk_size = 0;
  std::uint32_t chunk_crc = 0;  // pack_store::checksum(chunk_sealed), computed by the caller
  std::int64_t chunk_stored_at_us = 0;
  bool writes_salt = false;   // puts include the user's key salt; mark it durable after
  std::uint64_t snapshot_seq = 0;  // puts include the user's snapshot at this seq (0: none)
  std::size_t bytes = 0;      // sum of key and value sizes: what the queue limit counts
  std::function<void(status)> done;
};

// What an item's puts weigh against the queue limit.
inline std::size_t item_bytes(const write_item& item) {
  std::size_t bytes = 0;
  for (const auto& p : item.puts) bytes += p.key.size() + p.value.size();
  return bytes;
}

// A chunk's index entry, decoded.
struct chunk_entry {
  pack_location at;
  std::uint32_t size = 0;
  std::int64_t stored_at_us = 0;
};
std::optional<chunk_entry> decode_chunk_entry(std::string_view value);
std::string encode_chunk_entry(const chunk_entry& e);

struct user_key_state {
  std::string salt;
  data_key key;
  bool durable = false;  // the salt is known to be on disk
};

struct journal::impl {
  ~impl();
  options opts;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<pack_store> packs;

  rocksdb::ColumnFamilyHandle* cf(family f) const {
    return handles[static_cast<std::size_t>(f)];
  }

  // --- user keys (keys_mutex) ---
  mutable std::mutex keys_mutex;
  mutable std::unordered_map<std::string, user_key_state> user_keys;

  struct key_lookup {
    data_key key;
    std::string salt_to_write;  // non-empty while the salt may not be durable yet
  };
  // create: make a salt for a user that has none (write paths); otherwise not_found.
  result<key_lookup> user_key(std::string_view user, bool create) const;
  void mark_salt_durable(const std::string& user);

  // --- write shards ---
  // Users hash to shards. Each shard sequences its users' appends and runs one writer that
  // group-commits its queue; a user's appends stay in one queue, so they reach the disk in
  // sequence order. The writers of different shards call RocksDB at once, and RocksDB joins
  // them into one WAL write and one fsync while inserting into memtables in parallel.
  struct sequencer_stripe {
    std::mutex mutex;
    // Heads including queued, not yet durable, appends.
    std::unordered_map<std::string, user_head> heads;
    std::uint64_t epoch = 0;
  };
  struct write_shard {
    std::size_t index = 0;
    // A failed write bumps failure_epoch and fails everything queued in the shard; a stripe
    // whose epoch is older drops its heads and reloads them from disk, where each chain
    // ends at its last durable event.
    std::array<sequencer_stripe, 16> stripes;
    std::atomic<std::uint64_t> failure_epoch{0};  // written under queue_mutex

    std::mutex queue_mutex;
    std::condition_variable queue_cv;
    std::deque<write_item> queue;
    std::size_t queued_bytes = 0;
    bool stopping = false;
    bool needs_resume = false;  // writer thread only: the last write failed
    std::thread writer;
  };
  std::vector<std::unique_ptr<write_shard>> shards;
  std::atomic<std::uint64_t> stat_syncs{0}, stat_items{0}, stat_bytes{0}, stat_failed{0};

  write_shard& shard_of(std::string_view user) {
    return *shards[std::hash<std::string_view>{}(user) % shards.size()];
  }
  status sequence_and_enqueue(append_request& request, key_lookup& user_key, append_callback& done);
  // REQUIRES: shard.queue_mutex held. Refuses (overloaded) when the queue is full.
  status enqueue(write_shard& shard, write_item item);
  void writer_loop(write_shard& shard);
  void write_batch(write_shard& shard, std::vector<write_item>& batch);
  std::vector<write_item::put> thin_snapshots_of(const std::vector<write_item>& batch);
  std::optional<std::vector<std::uint64_t>> stored_snapshot_list(const std::string& user);
  void start_writers();
  void stop_writers();

  // Checks a snapshot against the chain and seals it into a queue item.
  result<write_item> seal_snapshot(std::string_view user, const snapshot& snap);
  const journal* owner = nullptr;  // for reads the sealing needs

  // Appends the batch's chunks to a pack and adds their locations to `wb`.
  status store_chunks(std::vector<write_item>& batch, rocksdb::WriteBatch& wb);

  result<user_head> durable_head(std::string_view user) const;

  // --- reclaiming chunk space (reclaim.cpp) ---
  // Held while pack bytes are released, and while a backup or checkpoint copies packs: a
  // copy never sees a chunk's bytes go between its index and its pack copies.
  std::mutex release_mutex;
  // Releases the pack ranges recorded as pending (by reclaims: those just made durable,
  // those a crash interrupted, those waiting for a checkpoint's link to a pack to go), then
  // forgets them. Each range is released by one pass only: passes hold release_mutex.
  void release_pending();
  // Releases happen on a thread of their own (`chunk-release`), so neither the writer nor a
  // user's actor waits for their fsyncs, and a backup's copy only delays them.
  std::thread releaser;
  std::mutex release_request_mutex;
  std::condition_variable release_requested;
  bool release_wanted = false, releaser_stopping = false;
  void request_release();
  void releaser_loop();
  status check_writable() const;
};

}  // namespace autosync::journal
