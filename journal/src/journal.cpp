// Opening, closing, user keys and the group-commit writer.
#include <capnp/serialize.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <future>
#include <map>
#include <optional>
#include <set>

#include "autosync/base/thread_name.hpp"
#include "journal_impl.hpp"
#include "snapshot_thinning.hpp"

namespace autosync::journal {

namespace {

// RocksDB's own LOG file lives on the data disk: on a full disk its writes fail, and
// the packaged build asserts on the next write to a failed file. Its warnings go to
// the process's standard error instead, where the service's log collects them.
class stderr_logger : public rocksdb::Logger {
public:
  stderr_logger() : Logger(rocksdb::WARN_LEVEL) {}
  using Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::WARN_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    std::fprintf(stderr, "journal storage: %s\n", line);
  }
};

// The user part of a key (length byte and user id): events of one user arrive in sequence
// order, so each insert lands right after the user's previous one. With this as the
// memtable's insert hint, an insert starts its search there instead of at the top of the
// skip list: measured, it is most of the writer's CPU with many users.
class user_prefix_transform : public rocksdb::SliceTransform {
public:
  const char* Name() const override { return "autosync.user_prefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), 1u + static_cast<unsigned char>(key[0])};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key.size() >= 1u + static_cast<unsigned char>(key[0]);
  }
};

rocksdb::ColumnFamilyOptions family_options(family f) {
  rocksdb::ColumnFamilyOptions o;
  if (f == family::events) {
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<user_prefix_transform>();
    // A user's events are read in runs (recovery, replay, the change feed): 16 KiB blocks
    // hold about 55 events, a quarter of the block fetches and cache look-ups of 4 KiB.
    rocksdb::BlockBasedTableOptions table;
    table.block_size = 16 << 10;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  }
  // Everything but the metadata is sealed: ciphertext does not compress, so do not try.
  o.compression = rocksdb::kNoCompression;
  return o;
}

// A decimal counter kept in the metadata (not sealed, so checked like any outside input).
std::optional<std::uint64_t> parse_counter(const std::string& text, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > max) {
    return std::nullopt;
  }
  return value;
}

error damaged_counter(const std::string& path, const std::string& what, const std::string& text) {
  return error(error_kind::corruption, "journal " + path + ": its " + what + " reads \"" + text +
                                           "\", not a number: the metadata is damaged; restore "
                                           "the journal from a backup");
}

}  // namespace

error storage_error(const rocksdb::Status& s, std::string_view what) {
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace()) {
    return error(error_kind::unavailable,
                 message + "; the disk is full: free space, then retry (nothing was acknowledged)");
  }
  if (s.IsIOError()) {
    return error(error_kind::unavailable,
                 message + "; check the disk and its logs, then retry");
  }
  if (s.IsCorruption()) {
    return error(error_kind::corruption, message + "; restore from a backup or a replica");
  }
  if (s.IsNotFound() || s.IsPathNotFound()) return error(error_kind::not_found, message);
  if (s.IsBusy() || s.IsTryAgain()) return error(error_kind::overloaded, message);
  if (s.IsInvalidArgument()) return error(error_kind::invalid, message);
  return error(error_kind::internal, message);
}

status validate_user_id(std::string_view user) {
  if (user.empty()) return error(error_kind::invalid, "user id is empty");
  if (user.size() > limits::user_id_bytes_max) {
    return error(error_kind::invalid, "user id is longer than 255 bytes");
  }
  for (unsigned char c : user) {
    if (c < 0x20 || c == 0x7f) {
      return error(error_kind::invalid, "user id contains a control character");
    }
  }
  return status::ok();
}

result<std::unique_ptr<journal>> journal::open(options opts) {
  auto self = std::make_unique<impl>();
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !opts.read_only;
  db_options.create_missing_column_families = !opts.read_only;
  db_options.max_background_jobs = 2;  // the machines we target have two cores
  db_options.info_log_level = rocksdb::WARN_LEVEL;
  db_options.info_log = std::make_shared<stderr_logger>();
  // Bound the WAL so a quiet column family cannot pin old WAL files forever.
  db_options.max_total_wal_size = 256u << 20;
  if (opts.env != nullptr) db_options.env = opts.env;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (std::size_t i = 0; i < static_cast<std::size_t>(family::count); ++i) {
    descriptors.emplace_back(family_names[i], family_options(static_cast<family>(i)));
  }

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  const std::string path = opts.dir.string();
  if (opts.read_only) {
    std::error_code ec;
    if (!std::filesystem::exists(opts.dir / "CURRENT", ec)) {
      return error(error_kind::not_found, "no journal in " + path +
                                              ": check --data-dir (it holds a CURRENT file)");
    }
    s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &self->handles, &raw);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(opts.dir, ec);
    if (ec) {
      return error(error_kind::unavailable, "cannot create journal folder " + path + ": " +
                                                ec.message());
    }
    s = rocksdb::DB::Open(db_options, path, descriptors, &self->handles, &raw);
  }
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return error(error_kind::unavailable,
                   "journal " + path + " is in use by another process: stop it, or open "
                   "read-only");
    }
    return storage_error(s, "opening journal " + path);
  }
  self->db.reset(raw);
  self->opts = std::move(opts);
  // Pack numbers are never reused, even when a pack file went missing: the next number is
  // recorded before a pack is created, so no new pack can take the name old index entries
  // point to.
  std::uint32_t next_pack = 0;
  std::string next_pack_text;
  s = self->db->Get(rocksdb::ReadOptions(), self->cf(family::meta), keys::next_pack_key,
                    &next_pack_text);
  if (s.ok()) {
    auto parsed = parse_counter(next_pack_text, UINT32_MAX);
    if (!parsed) return damaged_counter(path, "pack counter", next_pack_text);
    next_pack = static_cast<std::uint32_t>(*parsed);
  } else if (!s.IsNotFound()) {
    return storage_error(s, "reading the pack counter of journal " + path);
  }
  auto* db = self->db.get();
  auto* meta = self->cf(family::meta);
  auto reserve = [db, meta](std::uint32_t pack) -> status {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st = db->Put(wo, meta, keys::next_pack_key, std::to_string(pack + 1));
    if (!st.ok()) return storage_error(st, "recording pack " + std::to_string(pack));
    return status::ok();
  };
  auto packs = pack_store::open(self->opts.dir / "chunks", self->opts.read_only, next_pack,
                                reserve);
  if (!packs) return std::move(packs).err();
  self->packs = std::move(packs).value();

  // Refuse a journal written by a newer, incompatible build before touching it.
  std::string stored_format;
  s = self->db->Get(rocksdb::ReadOptions(), self->cf(family::meta), keys::format_key,
                    &stored_format);
  if (s.ok()) {
    const auto format = parse_counter(stored_format, UINT32_MAX);
    if (!format) return damaged_counter(path, "format version", stored_format);
    if (*format > journal_format_version) {
      return error(error_kind::invalid, "journal " + path + " has format " + stored_format +
                                            ", newer than this build understands (" +
                                            std::to_string(journal_format_version) +
                                            "): upgrade AutoSync");
    }
  } else if (s.IsNotFound() && !self->opts.read_only) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = self->db->Put(wo, self->cf(family::meta), keys::format_key,
                      std::to_string(journal_format_version));
    if (!s.ok()) return storage_error(s, "writing the format of journal " + path);
  } else if (!s.IsNotFound()) {
    return storage_error(s, "reading the format of journal " + path);
  }

  if (!self->opts.read_only) {
    self->release_pending();
    self->start_writers();
  }
  return std::unique_ptr<journal>(new journal(std::move(self)));
}

journal::journal(std::unique_ptr<impl> impl) : impl_(std::move(impl)) { impl_->owner = this; }

journal::~journal() { impl_->stop_writers(); }

// Also runs when open() fails half way: RocksDB requires every handle destroyed before
// the database is.
journal::impl::~impl() {
  if (!db) return;
  for (auto* handle : handles) {
    // Status ignored on purpose: closing cannot be retried, and the handles go either way.
    (void)db->DestroyColumnFamilyHandle(handle);
  }
  (void)db->Close();
}

const std::filesystem::path& journal::dir() const noexcept { return impl_->opts.dir; }

status journal::impl::store_chunks(std::vector<write_item>& batch, rocksdb::WriteBatch& wb) {
  std::vector<pack_store::record> records;
  std::vector<write_item*> owners;
  for (auto& item : batch) {
    if (item.chunk_key.empty()) continue;
    records.push_back({item.chunk_sealed, item.chunk_crc});
    owners.push_back(&item);
  }
  if (records.empty()) return status::ok();
  auto locations = packs->append_durably(records);
  if (!locations) return std::move(locations).err();
  for (std::size_t i = 0; i < owners.size(); ++i) {
    const auto& at = (*locations)[i];
    const auto value = encode_chunk_entry({at, owners[i]->chunk_size, owners[i]->chunk_stored_at_us});
    auto s = wb.Put(cf(family::chunks), owners[i]->chunk_key, value);
    if (!s.ok()) return storage_error(s, "indexing a chunk");
  }
  return status::ok();
}

write_stats journal::stats() const noexcept {
  return {impl_->stat_syncs.load(), impl_->stat_items.load(), impl_->stat_bytes.load(),
          impl_->stat_failed.load(), impl_->packs ? impl_->packs->direct_bytes() : 0};
}

status journal::impl::check_writable() const {
  if (opts.read_only) {
    return error(error_kind::invalid, "journal " + opts.dir.string() + " is open read-only");
  }
  return status::ok();
}

// --- user keys ----------------------------------------------------------------------------

result<journal::impl::key_lookup> journal::impl::user_key(std::string_view user,
                                                          bool create) const {
  std::lock_guard lock(keys_mutex);
  std::string name(user);
  auto it = user_keys.find(name);
  if (it == user_keys.end()) {
    user_key_state state;
    std::string salt;
    auto s = db->Get(rocksdb::ReadOptions(), cf(family::meta), keys::salt_key(user), &salt);
    if (s.ok()) {
      state.salt = std::move(salt);
      state.durable = true;
    } else if (s.IsNotFound()) {
      if (!create) return error(error_kind::not_found, "user " + name + " has no data");
      state.salt = random_salt();
    } else {
      return storage_error(s, "reading the key salt of user " + name);
    }
    state.key = derive_user_key(opts.master_key, state.salt, user);
    it = user_keys.emplace(std::move(name), std::move(state)).first;
  }
  key_lookup out{it->second.key, {}};
  if (!it->second.durable) out.salt_to_write = it->second.salt;
  return out;
}

void journal::impl::mark_salt_durable(const std::string& user) {
  std::lock_guard lock(keys_mutex);
  if (auto it = user_keys.find(user); it != user_keys.end()) it->second.durable = true;
}

// --- heads --------------------------------------------------------------------------------

result<user_head> journal::head(std::string_view user) const {
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  return impl_->durable_head(user);
}

// --- the writer ---------------------------------------------------------------------------

void journal::impl::start_writers() {
  const std::size_t count = std::max<std::size_t>(1, opts.write_shards);
  for (std::size_t i = 0; i < count; ++i) {
    shards.push_back(std::make_unique<write_shard>());
    shards.back()->index = i;
  }
  for (auto& shard : shards) {
    shard->writer = std::thread([this, s = shard.get()] {
      name_this_thread("journal-writer");
      writer_loop(*s);
    });
  }
  releaser = std::thread([this] {
    name_this_thread("chunk-release");
    releaser_loop();
  });
}

void journal::impl::stop_writers() {
  for (auto& shard : shards) {
    {
      std::lock_guard lock(shard->queue_mutex);
      shard->stopping = true;
    }
    shard->queue_cv.notify_all();
  }
  for (auto& shard : shards) {
    if (shard->writer.joinable()) shard->writer.join();
  }
  // After the writers: their last acknowledgments may still ask for a release.
  {
    std::lock_guard lock(release_request_mutex);
    releaser_stopping = true;
  }
  release_requested.notify_all();
  if (releaser.joinable()) releaser.join();
}

status journal::impl::enqueue(write_shard& shard, write_item item) {
  if (shard.stopping) return error(error_kind::unavailable, "journal is closing");
  const std::size_t limit = opts.queue_bytes_max / shards.size();
  if (shard.queued_bytes + item.bytes > limit && !shard.queue.empty()) {
    return error(error_kind::overloaded, "journal write queue is full (" +
                                             std::to_string(shard.queued_bytes) +
                                             " bytes waiting for the disk): retry shortly");
  }
  shard.queued_bytes += item.bytes;
  shard.queue.push_back(std::move(item));
  shard.queue_cv.notify_one();
  return status::ok();
}

void journal::impl::writer_loop(write_shard& shard) {
  std::vector<write_item> batch;
  for (;;) {
    {
      std::unique_lock lock(shard.queue_mutex);
      shard.queue_cv.wait(lock, [&shard] { return !shard.queue.empty() || shard.stopping; });
      if (shard.queue.empty()) return;  // stopping, and everything queued is written
      std::size_t bytes = 0;
      auto& queue = shard.queue;
      while (!queue.empty() && batch.size() < opts.batch_records_max &&
             (batch.empty() || bytes + queue.front().bytes <= opts.batch_bytes_max)) {
        bytes += queue.front().bytes;
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      shard.queued_bytes -= bytes;
    }
    write_batch(shard, batch);
    batch.clear();
  }
}

// The deletes and list updates that keep each user's snapshots thinned (see
// snapshot_thinning.hpp) once the batch's new snapshots are written. Run on the writer
// thread, so one user's lists are read and rewritten in order. A user without a list
// (snapshots written before lists were kept) or with a damaged one gets one from a scan of
// its snapshot keys; a list that cannot be read is deleted, so the next snapshot rebuilds
// it by a scan instead of leaving this one out of it for good.
std::vector<write_item::put> journal::impl::thin_snapshots_of(const std::vector<write_item>& batch) {
  std::vector<write_item::put> out;
  std::map<std::string, std::vector<std::uint64_t>> lists;  // this batch's, by user
  std::set<std::string> unreadable;
  for (const auto& item : batch) {
    if (item.snapshot_seq == 0 || unreadable.count(item.user) != 0) continue;
    auto found = lists.find(item.user);
    if (found == lists.end()) {
      auto seqs = stored_snapshot_list(item.user);
      if (!seqs) {
        unreadable.insert(item.user);
        out.push_back({family::meta, keys::snapshot_list_key(item.user), {}, true});
        continue;
      }
      found = lists.emplace(item.user, std::move(*seqs)).first;
    }
    auto& seqs = found->second;
    seqs.insert(std::upper_bound(seqs.begin(), seqs.end(), item.snapshot_seq), item.snapshot_seq);
    seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
    for (std::uint64_t seq : thin_snapshots(seqs)) {
      out.push_back({family::snapshots, keys::seq_key(item.user, seq), {}, true});
    }
  }
  for (const auto& [user, seqs] : lists) {
    std::string value;
    for (std::uint64_t seq : seqs) keys::append_u64(value, seq);
    out.push_back({family::meta, keys::snapshot_list_key(user), std::move(value)});
  }
  return out;
}

// The user's snapshot seqs as the list in the metadata family names them; without a list,
// or with a damaged one (not ascending whole seqs), as a scan of the snapshots family
// finds them. Nothing when neither can be read.
std::optional<std::vector<std::uint64_t>> journal::impl::stored_snapshot_list(const std::string& user) {
  std::string stored;
  auto got = db->Get(rocksdb::ReadOptions(), cf(family::meta), keys::snapshot_list_key(user), &stored);
  if (!got.ok() && !got.IsNotFound()) return std::nullopt;
  if (got.ok() && stored.size() % 8 == 0) {
    std::vector<std::uint64_t> seqs;
    for (std::size_t at = 0; at < stored.size(); at += 8) {
      const std::uint64_t seq = keys::read_u64({stored.data() + at, 8});
      if (!seqs.empty() && seq <= seqs.back()) break;
      seqs.push_back(seq);
    }
    if (seqs.size() * 8 == stored.size()) return seqs;
  }
  auto scanned = owner->snapshot_seqs(user);
  if (!scanned) return std::nullopt;
  return std::move(scanned).value();
}

void journal::impl::write_batch(write_shard& shard, std::vector<write_item>& batch) {
  if (shard.needs_resume) {
    // After a failed write RocksDB refuses writes until resumed; resuming fails while
    // the cause persists, and then this batch fails with the cause.
    if (db->Resume().ok()) shard.needs_resume = false;
  }
  // Written in key order: each memtable insert then starts from where the previous one
  // ended (RocksDB's skip list keeps that splice), as in a sequential load. The batch is
  // atomic, so the order inside it changes nothing else.
  std::vector<const write_item::put*> puts;
  for (const auto& item : batch) {
    for (const auto& p : item.puts) puts.push_back(&p);
  }
  const auto thinning = thin_snapshots_of(batch);
  for (const auto& p : thinning) puts.push_back(&p);
  std::stable_sort(puts.begin(), puts.end(), [](const auto* a, const auto* b) {
    return a->cf != b->cf ? a->cf < b->cf : a->key < b->key;
  });
  rocksdb::WriteBatch wb;
  rocksdb::Status s;
  for (const auto* p : puts) {
    s = p->erase ? wb.Delete(cf(p->cf), p->key) : wb.Put(cf(p->cf), p->key, p->value);
    if (!s.ok()) break;
  }
  // Chunk bytes are durable in their pack before the batch that indexes them is written.
  std::optional<error> failure;
  if (s.ok()) {
    if (auto stored = store_chunks(batch, wb); !stored) failure = std::move(stored).err();
  }
  if (s.ok() && !failure) {
    rocksdb::WriteOptions wo;
    wo.sync = true;  // the acknowledgment below promises durability: never skip this
    s = db->Write(wo, &wb);
  }
  if (s.ok() && !failure) {
    stat_syncs.fetch_add(1, std::memory_order_relaxed);
    stat_items.fetch_add(batch.size(), std::memory_order_relaxed);
    stat_bytes.fetch_add(wb.GetDataSize(), std::memory_order_relaxed);
    for (auto& item : batch) {
      if (item.writes_salt) mark_salt_durable(item.user);
    }
    for (auto& item : batch) item.done(status::ok());
    return;
  }

  // The batch is not durable. Every append queued in the shard after it may chain on it, so
  // they fail too; heads reload from disk, where each chain ends at its last durable event.
  stat_failed.fetch_add(1, std::memory_order_relaxed);
  if (!failure) failure = storage_error(s, "writing to journal " + opts.dir.string());
  std::deque<write_item> rest;
  {
    std::lock_guard lock(shard.queue_mutex);
    rest.swap(shard.queue);
    shard.queued_bytes = 0;
    ++shard.failure_epoch;
  }
  shard.needs_resume = true;
  for (auto& item : batch) item.done(*failure);
  for (auto& item : rest) item.done(*failure);
}

}  // namespace autosync::journal
