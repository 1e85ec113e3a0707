// The read side: every value is unsealed and checked before anyone sees it.
#include <capnp/serialize.h>

#include "journal_impl.hpp"

namespace autosync::journal {

namespace {

std::string where(std::string_view user, std::uint64_t seq) {
  return "user " + std::string(user) + " seq " + std::to_string(seq);
}

error corrupt(std::string_view user, std::uint64_t seq, std::string_view what) {
  return error(error_kind::corruption, where(user, seq) + ": " + std::string(what));
}

std::optional<sha256_digest> digest_of(capnp::Data::Reader data) {
  return sha256_digest::from_bytes({reinterpret_cast<const char*>(data.begin()), data.size()});
}

// Decrypts a sealed value into word-aligned memory that Cap'n Proto can read in place.
bool unseal_words(const data_key& key, binding bound, std::string_view sealed,
                  kj::Array<capnp::word>& out) {
  if (sealed.size() < sealed_overhead) return false;
  const std::size_t plain = sealed.size() - sealed_overhead;
  if (plain % sizeof(capnp::word) != 0) return false;
  out = kj::heapArray<capnp::word>(plain / sizeof(capnp::word));
  return open_sealed(key, bound, sealed, reinterpret_cast<char*>(out.begin()));
}

// About 70 blocks of events: beyond this, a read is a scan, not a look-up.
constexpr std::uint64_t long_scan_events = 4096;

constexpr std::string_view unsealed_failure =
    "cannot decrypt: wrong master key, or the stored value was altered";

}  // namespace

// A canonical encoding is one bare segment (no stream framing), so it is read as such. The
// words follow the reader in the same heap block: a replay decodes an event per step, and
// a second allocation for each was a tenth of its reading.
struct alignas(capnp::word) stored_event::parsed {
  // Decrypts `sealed` into a new block; null if it does not open or is not whole words.
  static std::unique_ptr<parsed> unseal(const data_key& key, binding bound, std::string_view sealed) {
    if (sealed.size() < sealed_overhead) return nullptr;
    const std::size_t plain = sealed.size() - sealed_overhead;
    if (plain % sizeof(capnp::word) != 0) return nullptr;
    void* block = ::operator new(sizeof(parsed) + plain);
    auto* words = reinterpret_cast<capnp::word*>(static_cast<parsed*>(block) + 1);
    if (!open_sealed(key, bound, sealed, reinterpret_cast<char*>(words))) {
      ::operator delete(block);
      return nullptr;
    }
    return std::unique_ptr<parsed>(new (block) parsed(words, plain / sizeof(capnp::word)));
  }
  static void operator delete(void* p) { ::operator delete(p); }

  kj::ArrayPtr<const capnp::word> segment;
  capnp::SegmentArrayMessageReader reader;

private:
  parsed(const capnp::word* words, std::size_t count)
      : segment(words, count), reader(kj::arrayPtr(&segment, 1)) {}
};

namespace {

// Decodes the sealed event stored under `key` as the user's event `seq`. The plaintext is
// the event's canonical encoding, and its hash is the SHA-256 of exactly those bytes.
result<stored_event> decode_event(const data_key& dk, std::string_view user, std::uint64_t seq,
                                  std::string_view key, std::string_view sealed) {
  auto words = stored_event::parsed::unseal(dk, binding{keys::family_tag::event, key}, sealed);
  if (!words) return corrupt(user, seq, unsealed_failure);
  if (words->segment.size() == 0) return corrupt(user, seq, "event is empty");
  stored_event out(seq, std::move(words));
  auto event = out.event();
  if (event.getFormatVersion() > schema::EVENT_FORMAT_VERSION) {
    return corrupt(user, seq, "event format " + std::to_string(event.getFormatVersion()) +
                                  " is newer than this build: upgrade AutoSync");
  }
  if (event.getSeq() != seq) {
    return corrupt(user, seq, "event says it is seq " + std::to_string(event.getSeq()));
  }
  return out;
}

}  // namespace

// The head is the user's last stored event: derived, never stored beside it, so the two
// cannot disagree and an append writes one key, not two.
result<user_head> journal::impl::durable_head(std::string_view user) const {
  const std::string prefix = keys::user_prefix(user);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(family::events)));
  it->SeekForPrev(keys::seq_key(user, UINT64_MAX));
  if (!it->status().ok()) {
    return storage_error(it->status(), "reading the head of user " + std::string(user));
  }
  if (!it->Valid() || !it->key().starts_with(prefix)) return user_head{};
  auto key = it->key();
  if (key.size() != prefix.size() + 8) {
    return error(error_kind::corruption, "user " + std::string(user) + ": malformed event key");
  }
  const std::uint64_t seq = keys::read_u64({key.data() + prefix.size(), 8});
  auto user_key = this->user_key(user, /*create=*/false);
  if (!user_key) return std::move(user_key).err();
  auto event =
      decode_event(user_key->key, user, seq, key.ToStringView(), it->value().ToStringView());
  if (!event) return std::move(event).err();
  return user_head{seq, event->hash()};
}

stored_event::stored_event(std::uint64_t seq, std::unique_ptr<parsed> words)
    : seq_(seq), parsed_(std::move(words)) {}
stored_event::stored_event(stored_event&&) noexcept = default;
stored_event& stored_event::operator=(stored_event&&) noexcept = default;
stored_event::~stored_event() = default;

schema::Event::Reader stored_event::event() const {
  return parsed_->reader.getRoot<schema::Event>();
}

const sha256_digest& stored_event::hash() const noexcept {
  if (!hashed_) {
    hash_ = sha256(canonical_bytes());
    hashed_ = true;
  }
  return hash_;
}

std::string_view stored_event::canonical_bytes() const noexcept {
  auto bytes = parsed_->segment.asBytes();
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

status journal::read_events(std::string_view user, std::uint64_t from, std::uint64_t to,
                            const std::function<bool(stored_event&&)>& visit,
                            chain_check check) const {
  if (auto s = validate_user_id(user); !s) return s;
  if (from == 0) from = 1;
  if (from > to) return status::ok();
  auto head = impl_->durable_head(user);
  if (!head) return std::move(head).err();
  if (head->last_seq == 0) return status::ok();
  auto user_key = impl_->user_key(user, /*create=*/false);
  if (!user_key) return std::move(user_key).err();
  const std::uint64_t last = std::min(to, head->last_seq);

  const bool chained = check == chain_check::by_journal;
  // Start one early so the first visited event's prevHash is checked too.
  std::uint64_t expected = chained && from > 1 ? from - 1 : from;
  std::optional<sha256_digest> prev_hash;
  if (chained && from == 1) prev_hash = sha256_digest{};  // seq 1 chains on zeros
  const std::string prefix = keys::user_prefix(user);
  rocksdb::ReadOptions ro;
  // The iterator stops at the last wanted event instead of reading on into the next
  // user's block.
  const std::string upper = keys::seq_key(user, last + 1);
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  // A long run (a recovery without a snapshot, the replay tool, an export) reads each
  // block once: caching it would only push out the blocks that point reads keep using.
  ro.fill_cache = last - expected < long_scan_events;
  // The head was read first; events up to it are durable, and a snapshot keeps the
  // iterator from seeing a half-applied later batch.
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(family::events)));
  for (it->Seek(keys::seq_key(user, expected)); expected <= last; it->Next()) {
    if (!it->status().ok()) return storage_error(it->status(), "reading events");
    auto key = it->key();
    if (!it->Valid() || !key.starts_with(prefix) || key.size() != prefix.size() + 8) {
      return corrupt(user, expected, "event is missing (the chain ends at " +
                                         std::to_string(head->last_seq) + ")");
    }
    const std::uint64_t seq = keys::read_u64({key.data() + prefix.size(), 8});
    if (seq != expected) return corrupt(user, expected, "event is missing");
    auto event = decode_event(user_key->key, user, seq, key.ToStringView(),
                              it->value().ToStringView());
    if (!event) return std::move(event).err();
    if (prev_hash) {
      auto stored_prev = digest_of(event->event().getPrevHash());
      if (!stored_prev || *stored_prev != *prev_hash) {
        return corrupt(user, seq, "prevHash does not match the hash of seq " +
                                      std::to_string(seq - 1) + ": the chain is broken");
      }
    }
    if (chained) prev_hash = event->hash();
    ++expected;
    if (seq >= from && !visit(std::move(*event))) return status::ok();
  }
  return status::ok();
}

status journal::list_users(
    const std::function<bool(std::string_view user, const result<user_head>& head)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(family::meta)));
  // Every user with sealed data has a key salt, written with its first value.
  for (it->Seek("k"); it->Valid() && it->key().starts_with("k"); it->Next()) {
    auto key = it->key();
    if (key.size() < 2 || static_cast<unsigned char>(key[1]) + 2u != key.size()) {
      return error(error_kind::corruption, "malformed key-salt record in journal metadata");
    }
    std::string_view user(key.data() + 2, key.size() - 2);
    if (!visit(user, impl_->durable_head(user))) break;
  }
  if (!it->status().ok()) return storage_error(it->status(), "listing users");
  return status::ok();
}

result<std::optional<snapshot>> journal::read_snapshot(std::string_view user,
                                                       std::uint64_t at_or_below) const {
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  const std::string prefix = keys::user_prefix(user);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(family::snapshots)));
  it->SeekForPrev(keys::seq_key(user, at_or_below));
  if (!it->status().ok()) return storage_error(it->status(), "reading snapshots");
  if (!it->Valid() || !it->key().starts_with(prefix)) return std::optional<snapshot>();
  auto key = it->key();
  if (key.size() != prefix.size() + 8) {
    return error(error_kind::corruption, "user " + std::string(user) + ": malformed snapshot key");
  }
  const std::uint64_t seq = keys::read_u64({key.data() + prefix.size(), 8});
  auto user_key = impl_->user_key(user, /*create=*/false);
  if (!user_key) return std::move(user_key).err();
  kj::Array<capnp::word> words;
  if (!unseal_words(user_key->key, binding{keys::family_tag::snapshot, key.ToStringView()},
                    it->value().ToStringView(), words)) {
    return corrupt(user, seq, std::string("snapshot: ") + std::string(unsealed_failure));
  }
  capnp::ReaderOptions reader_options;
  reader_options.traversalLimitInWords = words.size() + 1024;  // snapshots may be large
  capnp::FlatArrayMessageReader reader(words, reader_options);
  auto root = reader.getRoot<schema::Snapshot>();
  if (root.getFormatVersion() > schema::SNAPSHOT_FORMAT_VERSION) {
    return corrupt(user, seq, "snapshot format is newer than this build: upgrade AutoSync");
  }
  auto head_hash = digest_of(root.getHeadHash());
  if (root.getSeq() != seq || !head_hash) {
    return corrupt(user, seq, "snapshot record does not match its key");
  }
  snapshot out;
  out.seq = seq;
  out.head_hash = *head_hash;
  out.timestamp_us = root.getTimestampUs();
  out.state_format = root.getStateFormat();
  auto state = root.getState();
  out.state.assign(reinterpret_cast<const char*>(state.begin()), state.size());
  return std::optional<snapshot>(std::move(out));
}

result<std::vector<std::uint64_t>> journal::snapshot_seqs(std::string_view user) const {
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  const std::string prefix = keys::user_prefix(user);
  std::vector<std::uint64_t> seqs;
  // The keys are all that is wanted, but their blocks hold the (large) values too: a scan
  // does not push them into the block cache.
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(scan, impl_->cf(family::snapshots)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() == prefix.size() + 8) {
      seqs.push_back(keys::read_u64({it->key().data() + prefix.size(), 8}));
    }
  }
  if (!it->status().ok()) return storage_error(it->status(), "listing snapshots");
  return seqs;
}

result<std::vector<bool>> journal::has_chunks(std::string_view user,
                                              const std::vector<sha256_digest>& ids) const {
  auto sizes = chunk_sizes(user, ids);
  if (!sizes) return std::move(sizes).err();
  std::vector<bool> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) out[i] = (*sizes)[i].has_value();
  return out;
}

result<std::vector<std::optional<std::uint64_t>>> journal::chunk_sizes(
    std::string_view user, const std::vector<sha256_digest>& ids) const {
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  std::vector<std::string> keys_owned;
  keys_owned.reserve(ids.size());
  for (const auto& id : ids) keys_owned.push_back(keys::chunk_key(user, id));
  std::vector<rocksdb::Slice> slices(keys_owned.begin(), keys_owned.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(family::chunks), slices.size(),
                      slices.data(), values.data(), statuses.data());
  std::vector<std::optional<std::uint64_t>> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].ok()) {
      const auto entry = decode_chunk_entry(values[i].ToStringView());
      if (!entry) {
        return error(error_kind::corruption, "user " + std::string(user) + " chunk " +
                                                 ids[i].hex() + ": malformed location record");
      }
      out[i] = entry->size;
    } else if (!statuses[i].IsNotFound()) {
      return storage_error(statuses[i], "looking up chunk " + ids[i].hex());
    }
  }
  return out;
}

result<std::string> journal::get_chunk(std::string_view user, const sha256_digest& id) const {
  if (auto s = validate_user_id(user); !s) return std::move(s).err();
  std::string key = keys::chunk_key(user, id);
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(family::chunks), key, &value);
  if (s.IsNotFound()) {
    // Reclaiming forgets only chunks no revision held any more refers to: a revision older
    // than the retention period, or an upload never committed.
    return error(error_kind::not_found, "user " + std::string(user) + " has no chunk " + id.hex() +
                                            " (never stored, or reclaimed after the retention "
                                            "period)");
  }
  if (!s.ok()) return storage_error(s, "reading chunk " + id.hex());
  const std::string where_chunk = "user " + std::string(user) + " chunk " + id.hex() + ": ";
  const auto entry = decode_chunk_entry(value);
  if (!entry) return error(error_kind::corruption, where_chunk + "malformed location record");
  auto sealed = impl_->packs->read(entry->at);
  if (!sealed) {
    auto e = std::move(sealed).err();
    if (e.kind() == error_kind::not_found) {
      // Its space was reclaimed after the look-up (this view of the index can be older
      // than the node's, beside a live node): gone, not damaged.
      return error(error_kind::not_found, "user " + std::string(user) + " has no chunk " +
                                              id.hex() + " (" + e.message() + ")");
    }
    return error(e.kind(), where_chunk + e.message());
  }
  auto user_key = impl_->user_key(user, /*create=*/false);
  if (!user_key) return std::move(user_key).err();
  if (sealed->size() < sealed_overhead ||
      sealed->size() - sealed_overhead != entry->size) {
    return error(error_kind::corruption, where_chunk + "stored value has the wrong size");
  }
  std::string content(sealed->size() - sealed_overhead, '\0');
  if (!open_sealed(user_key->key, binding{keys::family_tag::chunk, key}, *sealed, content.data())) {
    return error(error_kind::corruption, where_chunk + std::string(unsealed_failure));
  }
  if (sha256(content) != id) {
    return error(error_kind::corruption, where_chunk + "content does not match its hash");
  }
  return content;
}

}  // namespace autosync::journal
