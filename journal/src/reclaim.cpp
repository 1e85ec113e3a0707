// Giving back the space of chunks no revision refers to any more.
//
// The order makes a crash at any point safe: (1) the index entries go, in one durable
// batch with a "pending release" record for each chunk's pack range; (2) the pack ranges
// are released (pack_store::release: listed beside the pack, then punched); (3) the
// pending records go. A crash after (1) leaves pending records, and the next open releases
// them again; nothing reads a range whose index entry is gone, so releasing it twice
// changes nothing.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <future>

#include "journal_impl.hpp"

namespace autosync::journal {

namespace {

// Meta keys of pending releases: "r" | pack (u64 BE) | offset (u64 BE) -> sealed length.
constexpr char pending_tag = 'r';

std::string pending_key(const pack_location& at) {
  std::string key(1, pending_tag);
  keys::append_u64(key, at.pack);
  keys::append_u64(key, at.offset);
  return key;
}

std::string pending_value(const pack_location& at) {
  std::string value;
  keys::append_u64(value, at.sealed_length);
  return value;
}

}  // namespace

std::optional<chunk_entry> decode_chunk_entry(std::string_view value) {
  if (value.empty() || value.size() % sizeof(capnp::word) != 0) return std::nullopt;
  auto words = kj::heapArray<capnp::word>(value.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), value.data(), value.size());
  chunk_entry out;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words);
    auto location = reader.getRoot<schema::ChunkLocation>();
    out.at = {location.getPack(), location.getOffset(), location.getSealedLength()};
    out.size = location.getSize();
    out.stored_at_us = location.getStoredAtUs();
  })) {
    return std::nullopt;
  }
  return out;
}

std::string encode_chunk_entry(const chunk_entry& e) {
  capnp::MallocMessageBuilder message(16);
  auto root = message.initRoot<schema::ChunkLocation>();
  root.setPack(e.at.pack);
  root.setOffset(e.at.offset);
  root.setSealedLength(e.at.sealed_length);
  root.setSize(e.size);
  root.setStoredAtUs(e.stored_at_us);
  const auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

status journal::list_chunks(std::string_view user,
                            const std::function<bool(const stored_chunk&)>& visit) const {
  if (auto s = validate_user_id(user); !s) return s;
  const std::string prefix = keys::user_prefix(user);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(family::chunks)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const auto key = it->key().ToStringView();
    auto id = sha256_digest::from_bytes(key.substr(prefix.size()));
    auto entry = decode_chunk_entry(it->value().ToStringView());
    if (!id || !entry) {
      return error(error_kind::corruption, "user " + std::string(user) +
                                               ": malformed chunk index entry; restore from a backup");
    }
    if (!visit({*id, entry->size, entry->stored_at_us})) return status::ok();
  }
  if (!it->status().ok()) return storage_error(it->status(), "listing the chunks of " + std::string(user));
  return status::ok();
}

void journal::reclaim_chunks(std::string_view user, std::vector<sha256_digest> ids,
                             std::int64_t stored_before_us, reclaim_callback done) {
  if (auto s = impl_->check_writable(); !s) return done(std::move(s).err());
  if (auto s = validate_user_id(user); !s) return done(std::move(s).err());
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  write_item item;
  item.user = std::string(user);
  std::size_t found = 0;
  reclaimed counted;
  for (const auto& id : ids) {
    std::string key = keys::chunk_key(user, id);
    std::string value;
    auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(family::chunks), key, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return done(storage_error(s, "looking up chunk " + id.hex()));
    auto entry = decode_chunk_entry(value);
    if (!entry) {
      return done(error(error_kind::corruption, "user " + item.user + " chunk " + id.hex() +
                                                    ": malformed location record"));
    }
    if (entry->stored_at_us >= stored_before_us) continue;  // too recent: a commit may follow
    item.puts.push_back({family::chunks, std::move(key), {}, /*erase=*/true});
    item.puts.push_back({family::meta, pending_key(entry->at), pending_value(entry->at)});
    ++found;
    counted.chunks++;
    counted.bytes += entry->size;
  }
  if (found == 0) return done(counted);
  item.bytes = item_bytes(item);
  // Runs on the writer thread once the batch is durable (or failed). A put of one of these
  // chunks meanwhile finds its entry still there and answers "already stored"; the commit
  // that counts on it is then refused with it missing, and the client sends it again.
  item.done = [impl = impl_.get(), counted, done](status st) {
    if (!st) return done(std::move(st).err());
    // Forgotten for good now; the space follows on the release thread.
    impl->request_release();
    done(counted);
  };
  std::optional<error> failure;
  {
    auto& shard = impl_->shard_of(item.user);
    std::lock_guard lock(shard.queue_mutex);
    if (auto st = impl_->enqueue(shard, std::move(item)); !st) failure = std::move(st).err();
  }
  if (failure) done(std::move(*failure));
}

result<reclaimed> journal::reclaim_chunks_and_wait(std::string_view user,
                                                   std::vector<sha256_digest> ids,
                                                   std::int64_t stored_before_us) {
  std::promise<result<reclaimed>> outcome;
  auto future = outcome.get_future();
  reclaim_chunks(user, std::move(ids), stored_before_us,
                 [&outcome](result<reclaimed> r) { outcome.set_value(std::move(r)); });
  return future.get();
}

void journal::impl::request_release() {
  std::lock_guard lock(release_request_mutex);
  release_wanted = true;
  release_requested.notify_one();
}

void journal::impl::releaser_loop() {
  for (;;) {
    {
      std::unique_lock lock(release_request_mutex);
      release_requested.wait(lock, [this] { return release_wanted || releaser_stopping; });
      if (releaser_stopping) return;  // what is pending waits for the next open
      release_wanted = false;
    }
    release_pending();
  }
}

void journal::impl::release_pending() {
  std::lock_guard lock(release_mutex);
  std::vector<pack_location> ranges;
  std::vector<std::string> keys_found;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(family::meta)));
    const std::string prefix(1, pending_tag);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const auto key = it->key().ToStringView();
      const auto value = it->value().ToStringView();
      if (key.size() != 17 || value.size() != 8) continue;  // not ours: leave it
      ranges.push_back({static_cast<std::uint32_t>(keys::read_u64(key.substr(1, 8))),
                        keys::read_u64(key.substr(9, 8)),
                        static_cast<std::uint32_t>(keys::read_u64(value))});
      keys_found.emplace_back(key);
    }
  }
  if (ranges.empty()) return;
  const auto kept = packs->release(ranges);
  rocksdb::WriteBatch forget;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const bool waits = std::any_of(kept.begin(), kept.end(), [&](const pack_location& k) {
      return k.pack == ranges[i].pack && k.offset == ranges[i].offset;
    });
    if (!waits) (void)forget.Delete(cf(family::meta), keys_found[i]);
  }
  // Not synced: a pending record that outlives a crash is released again, and a listed
  // range released twice changes nothing.
  (void)db->Write(rocksdb::WriteOptions(), &forget);
}

}  // namespace autosync::journal
