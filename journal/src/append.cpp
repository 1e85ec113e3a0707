// The write side of events and snapshots: sequencing, hash chaining and sealing.
#include <capnp/serialize.h>

#include <future>

#include <chrono>

#include "autosync/schema/framing.hpp"
#include "journal_impl.hpp"

namespace autosync::journal {

namespace {

capnp::Data::Reader data_of(const sha256_digest& d) { return {d.bytes.data(), d.bytes.size()}; }

std::string_view view_of(kj::ArrayPtr<const kj::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

// Seals a message in Cap'n Proto's standard stream framing (segment table, then the
// segments) without first copying it into one flat buffer.
void seal_message(const data_key& key, binding bound, capnp::MessageBuilder& message,
                  std::string& out) {
  auto segments = message.getSegmentsForOutput();
  const std::string table = schema::segment_table(segments);
  std::vector<std::string_view> pieces;
  pieces.reserve(segments.size() + 1);
  pieces.emplace_back(table);
  for (auto segment : segments) pieces.push_back(view_of(segment.asBytes()));
  seal(key, bound, pieces.data(), pieces.size(), out);
}

// Puts the key salt into an item when it may not be on disk yet: the salt then becomes
// durable in the same atomic batch as the first value sealed under it.
void add_salt(write_item& item, const std::string& user, std::string salt) {
  if (salt.empty()) return;
  item.puts.push_back({family::meta, keys::salt_key(user), std::move(salt)});
  item.writes_salt = true;
}

}  // namespace

namespace {

// Seals one event into `item` as the user's event next.last_seq + 1, and advances `next`.
status seal_event(const std::string& user, const data_key& key, capnp::MallocMessageBuilder& message,
                  user_head& next, write_item& item) {
  auto event = message.getRoot<schema::Event>();
  event.setFormatVersion(schema::EVENT_FORMAT_VERSION);
  event.setSeq(next.last_seq + 1);
  event.setPrevHash(data_of(next.last_hash));
  auto canonical = capnp::canonicalize(event.asReader());
  auto bytes = canonical.asBytes();
  if (bytes.size() > limits::event_bytes_max) {
    return error(error_kind::too_large, "user " + user + ": event of " +
                                            std::to_string(bytes.size()) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(limits::event_bytes_max));
  }
  next.last_seq += 1;
  next.last_hash = sha256(view_of(bytes));

  // Stored as exactly the bytes that were hashed: verifying never re-encodes.
  std::string storage_key = keys::seq_key(user, next.last_seq);
  std::string value;
  seal(key, {keys::family_tag::event, storage_key}, view_of(bytes), value);
  item.puts.push_back({family::events, std::move(storage_key), std::move(value)});
  return status::ok();
}

}  // namespace

void journal::append(append_request request, append_callback done) {
  auto refuse = [&done](error e) { done(result<appended>(std::move(e))); };
  if (auto s = impl_->check_writable(); !s) return refuse(std::move(s).err());
  if (auto s = validate_user_id(request.user); !s) return refuse(std::move(s).err());
  if (request.events.empty()) return refuse(error(error_kind::invalid, "append of no events"));
  auto user_key = impl_->user_key(request.user, /*create=*/true);
  if (!user_key) return refuse(std::move(user_key).err());
  auto failure = impl_->sequence_and_enqueue(request, *user_key, done);
  // Outside every lock: the callback may append again.
  if (!failure) refuse(std::move(failure).err());
}

// Sequencing and sealing hold only the user's stripe lock, so appends of different users
// encode in parallel; each user's appends still enter the queue in sequence order, so a
// batch never writes seq n+1 before seq n. On success `done` is moved into the queue and
// the writer calls it; on failure it is left to the caller, who reports the error.
status journal::impl::sequence_and_enqueue(append_request& request, key_lookup& user_key,
                                           append_callback& done) {
  const std::string& user = request.user;
  auto& shard = shard_of(user);
  auto& stripe = shard.stripes[std::hash<std::string>{}(user) / shards.size() % shard.stripes.size()];
  std::lock_guard stripe_lock(stripe.mutex);
  const std::uint64_t epoch = shard.failure_epoch.load();
  if (stripe.epoch != epoch) {
    // A write failed since this stripe last sequenced: its cached heads may name events
    // that never reached the disk.
    stripe.heads.clear();
    stripe.epoch = epoch;
  }
  auto cached = stripe.heads.find(user);
  user_head head;
  if (cached != stripe.heads.end()) {
    head = cached->second;
  } else {
    auto loaded = durable_head(user);
    if (!loaded) return std::move(loaded).err();
    head = *loaded;
  }
  if (request.expected_next_seq && *request.expected_next_seq != head.last_seq + 1) {
    return error(error_kind::conflict, "user " + user + ": expected next seq " +
                                           std::to_string(*request.expected_next_seq) +
                                           " but it is " + std::to_string(head.last_seq + 1));
  }
  write_item item;
  item.user = user;
  user_head next = head;
  appended out;
  out.first_seq = next.last_seq + 1;
  for (auto& message : request.events) {
    if (auto s = seal_event(user, user_key.key, *message, next, item); !s) return s;
  }
  add_salt(item, user, std::move(user_key.salt_to_write));
  item.bytes = item_bytes(item);
  out.last_seq = next.last_seq;
  out.last_hash = next.last_hash;
  {
    std::lock_guard queue_lock(shard.queue_mutex);
    if (shard.failure_epoch.load() != epoch) {
      return error(error_kind::unavailable,
                   "user " + user + ": a journal write failed while this append was prepared; retry");
    }
    if (auto s = enqueue(shard, std::move(item)); !s) return s;
    // Still under the queue lock, so the writer has not taken the item yet.
    shard.queue.back().done = [done = std::move(done), out](status s) {
      if (s) {
        done(out);
      } else {
        done(std::move(s).err());
      }
    };
  }
  stripe.heads[user] = next;
  return status::ok();
}

result<appended> journal::append_and_wait(append_request request) {
  std::promise<result<appended>> outcome;
  auto future = outcome.get_future();
  append(std::move(request), [&outcome](result<appended> r) { outcome.set_value(std::move(r)); });
  return future.get();
}

status journal::write_snapshot(std::string_view user, const snapshot& snap) {
  std::promise<status> outcome;
  auto future = outcome.get_future();
  write_snapshot(user, snap, [&outcome](status s) { outcome.set_value(std::move(s)); });
  return future.get();
}

void journal::write_snapshot(std::string_view user, const snapshot& snap, status_callback done) {
  auto s = impl_->seal_snapshot(user, snap);
  if (!s) return done(std::move(s).err());
  auto& shard = impl_->shard_of(s->user);
  s->done = done;
  std::optional<error> failure;
  {
    std::lock_guard lock(shard.queue_mutex);
    if (auto st = impl_->enqueue(shard, std::move(*s)); !st) failure = std::move(st).err();
  }
  if (failure) done(std::move(*failure));
}

result<write_item> journal::impl::seal_snapshot(std::string_view user, const snapshot& snap) {
  if (auto s = check_writable(); !s) return std::move(s).err();
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  const std::string name(user);
  if (snap.seq == 0) return error(error_kind::invalid, "user " + name + ": snapshot at seq 0");
  if (snap.state.size() > limits::snapshot_bytes_max) {
    return error(error_kind::too_large, "user " + name + ": snapshot of " +
                                            std::to_string(snap.state.size()) + " bytes");
  }
  // A snapshot must sit on the chain: the event it ends at exists and has this hash.
  // (The event is durable: appends are acknowledged only after their fsync.)
  std::optional<sha256_digest> event_hash;
  // Only this event's own hash is wanted: no need to read and hash the one before it.
  auto s = owner->read_events(user, snap.seq, snap.seq, [&](stored_event&& e) {
    event_hash = e.hash();
    return false;
  }, chain_check::by_caller);
  if (!s) return std::move(s).err();
  if (!event_hash) {
    return error(error_kind::invalid, "user " + name + ": snapshot at seq " +
                                          std::to_string(snap.seq) + " but no such event");
  }
  if (*event_hash != snap.head_hash) {
    return error(error_kind::invalid, "user " + name + ": snapshot at seq " +
                                          std::to_string(snap.seq) +
                                          " names a hash that is not the event's");
  }
  auto user_key = this->user_key(user, /*create=*/false);
  if (!user_key) return std::move(user_key).err();

  capnp::MallocMessageBuilder message(snap.state.size() / sizeof(capnp::word) + 32);
  auto root = message.initRoot<schema::Snapshot>();
  root.setFormatVersion(schema::SNAPSHOT_FORMAT_VERSION);
  root.setSeq(snap.seq);
  root.setHeadHash(data_of(snap.head_hash));
  root.setTimestampUs(snap.timestamp_us);
  root.setStateFormat(snap.state_format);
  root.setState({reinterpret_cast<const kj::byte*>(snap.state.data()), snap.state.size()});
  std::string key = keys::seq_key(user, snap.seq);
  std::string value;
  seal_message(user_key->key, {keys::family_tag::snapshot, key}, message, value);

  write_item item;
  item.user = name;
  item.puts.push_back({family::snapshots, std::move(key), std::move(value)});
  item.snapshot_seq = snap.seq;
  item.bytes = item_bytes(item);
  return item;
}

void journal::put_chunk(std::string_view user, const sha256_digest& id, std::string content,
                        chunk_callback done) {
  auto refuse = [&done](error e) { done(result<bool>(std::move(e))); };
  if (auto s = impl_->check_writable(); !s) return refuse(std::move(s).err());
  if (auto s = validate_user_id(user); !s) return refuse(std::move(s).err());
  if (content.size() > limits::chunk_bytes_max) {
    return refuse(error(error_kind::too_large, "chunk of " + std::to_string(content.size()) +
                                                   " bytes exceeds the limit of " +
                                                   std::to_string(limits::chunk_bytes_max)));
  }
  // The hash is checked here, on the caller's thread, so that hashing many uploads runs
  // in parallel and a bad chunk never reaches the queue.
  if (sha256(content) != id) {
    return refuse(error(error_kind::invalid,
                        "chunk content does not hash to its id " + id.hex() + "; re-send it"));
  }
  std::string key = keys::chunk_key(user, id);
  std::string existing;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(family::chunks), key, &existing);
  if (s.ok()) return done(false);  // dedup: the user already has this chunk durably
  if (!s.IsNotFound()) return refuse(storage_error(s, "looking up chunk " + id.hex()));

  auto user_key = impl_->user_key(user, /*create=*/true);
  if (!user_key) return refuse(std::move(user_key).err());
  write_item item;
  item.user = std::string(user);
  item.chunk_sealed.reserve(content.size() + sealed_overhead);
  // Sealed and checksummed here, on the caller's thread, in parallel with other uploads:
  // the one writer thread is every upload's bottleneck (its CRC of each record was a third
  // of its CPU time).
  seal(user_key->key, {keys::family_tag::chunk, key}, content, item.chunk_sealed);
  item.chunk_crc = pack_store::checksum(item.chunk_sealed);
  item.chunk_size = static_cast<std::uint32_t>(content.size());
  // Wall-clock time: reclaiming spares chunks stored recently (an upload whose commit is
  // still to come), and it is compared with times of the same kind.
  item.chunk_stored_at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  item.chunk_key = std::move(key);
  add_salt(item, item.user, std::move(user_key->salt_to_write));
  item.bytes = item_bytes(item) + item.chunk_key.size() + item.chunk_sealed.size();
  item.done = [done](status st) {
    if (st) {
      done(true);
    } else {
      done(std::move(st).err());
    }
  };
  std::optional<error> failure;
  {
    auto& shard = impl_->shard_of(item.user);
    std::lock_guard lock(shard.queue_mutex);
    if (auto st = impl_->enqueue(shard, std::move(item)); !st) failure = std::move(st).err();
  }
  if (failure) refuse(std::move(*failure));
}

result<bool> journal::put_chunk_and_wait(std::string_view user, const sha256_digest& id,
                                         std::string content) {
  std::promise<result<bool>> outcome;
  auto future = outcome.get_future();
  put_chunk(user, id, std::move(content),
            [&outcome](result<bool> r) { outcome.set_value(std::move(r)); });
  return future.get();
}

}  // namespace autosync::journal
