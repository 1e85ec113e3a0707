#include "autosync/actors/user_core.hpp"

#include <capnp/serialize.h>

#include <algorithm>

#include "autosync/actors/replay.hpp"

namespace autosync::actors {

namespace {

schema::Event::Reader read_canonical(const kj::Array<capnp::word>& words,
                                     kj::ArrayPtr<const capnp::word>& segment,
                                     std::unique_ptr<capnp::SegmentArrayMessageReader>& reader) {
  segment = words.asPtr();
  reader = std::make_unique<capnp::SegmentArrayMessageReader>(kj::arrayPtr(&segment, 1));
  return reader->getRoot<schema::Event>();
}

}  // namespace

result<std::unique_ptr<user_core>> user_core::recover(event_store& store, std::string user,
                                                      user_options options) {
  std::unique_ptr<user_core> core(new user_core(store, std::move(user), options));
  if (auto s = core->load(); !s) return s.err();
  return core;
}

status user_core::load() {
  namespace_state fresh;
  std::uint64_t snapshot_seq = 0;
  auto snap = store_.latest_snapshot(user_);
  if (!snap) return snap.err();
  if (snap->has_value() && (*snap)->state_format == schema::NAMESPACE_STATE_FORMAT) {
    auto decoded = namespace_state::decode((*snap)->state, (*snap)->seq, (*snap)->head_hash);
    if (!decoded) return decoded.err();
    fresh = std::move(decoded).value();
    snapshot_seq = (*snap)->seq;
  }
  if (auto s = replay_events(store_, user_, fresh); !s) return s;
  state_ = std::move(fresh);
  durable_seq_ = state_.last_seq();
  last_snapshot_seq_ = std::max(last_snapshot_seq_, snapshot_seq);
  return status::ok();
}

command_outcome user_core::stage(const command& cmd, const chunk_answers* known) {
  command_outcome out;
  auto decided = decide(state_, cmd, [this, known](const std::vector<sha256_digest>& ids) {
    std::vector<std::optional<std::uint64_t>> sizes(ids.size());
    std::vector<sha256_digest> unknown;
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (known != nullptr) {
        if (auto k = known->find(ids[i]); k != known->end()) {
          sizes[i] = k->second;
          continue;
        }
      }
      unknown.push_back(ids[i]);
      at.push_back(i);
    }
    if (unknown.empty()) return sizes;
    // An unreadable index counts as missing: the client re-uploads, nothing is lost.
    if (auto asked = store_.chunk_sizes(user_, unknown); asked) {
      for (std::size_t j = 0; j < at.size() && j < asked->size(); ++j) sizes[at[j]] = (*asked)[j];
    }
    return sizes;
  });
  if (auto* refused = std::get_if<refusal>(&decided)) {
    out.refused = std::move(*refused);
    return out;
  }
  auto& d = std::get<decision>(decided);
  if (d.already_applied) {
    out.applied = d.already_applied;
    out.was_retry = true;
    return out;
  }
  // Chain the events here exactly as the store will: the same canonical bytes, so the
  // hashes computed now are the ones it will report, and applying from these bytes is
  // applying what replay will read.
  const std::uint64_t first = state_.last_seq() + 1;
  kj::ArrayPtr<const capnp::word> segment;
  std::unique_ptr<capnp::SegmentArrayMessageReader> reader;
  for (auto& message : d.events) {
    auto event = message->getRoot<schema::Event>();
    const std::uint64_t seq = state_.last_seq() + 1;
    const sha256_digest prev = state_.last_hash();
    event.setFormatVersion(schema::EVENT_FORMAT_VERSION);
    event.setSeq(seq);
    event.setPrevHash({prev.bytes.data(), prev.bytes.size()});
    sealed_event sealed{capnp::canonicalize(event.asReader()), {}};
    auto bytes = sealed.canonical.asBytes();
    sealed.hash = sha256({reinterpret_cast<const char*>(bytes.begin()), bytes.size()});
    if (auto applied = state_.apply(seq, sealed.hash, read_canonical(sealed.canonical, segment, reader));
        !applied) {
      // decide() produced an event apply() rejects: a bug. Drop the batch with it.
      out.failed = applied.err();
      if (!load()) usable_ = false;
      staged_.clear();
      staged_messages_.clear();
      return out;
    }
    staged_.push_back(std::move(sealed));
    staged_messages_.push_back(std::move(message));
  }
  out.applied = applied_operation{first, state_.last_seq()};
  return out;
}

pending_append user_core::take_staged() {
  pending_append pending;
  pending.expected_next_seq = durable_seq_ + 1;
  pending.events = std::move(staged_messages_);
  staged_messages_.clear();
  in_flight_ = std::move(staged_);
  staged_.clear();
  return pending;
}

status user_core::complete(const result<journal::appended>& stored) {
  auto events = std::move(in_flight_);
  in_flight_.clear();
  status outcome = status::ok();
  if (!stored) {
    outcome = stored.err();
  } else if (events.empty() || stored->last_hash != events.back().hash ||
             stored->first_seq != durable_seq_ + 1) {
    // The store chained differently from this state: this state is not the user's history.
    outcome = error(error_kind::internal, "user " + user_ + ": the store's chain head differs "
                                          "from the one computed: reload the user");
  }
  if (!outcome) {
    // Nothing of the batch is the user's history: back to what the store holds.
    if (auto reloaded = load(); !reloaded) usable_ = false;
    return outcome;
  }
  kj::ArrayPtr<const capnp::word> segment;
  std::unique_ptr<capnp::SegmentArrayMessageReader> reader;
  std::uint64_t seq = stored->first_seq;
  if (!subscribers_.empty()) {
    for (const auto& e : events) {
      auto event = read_canonical(e.canonical, segment, reader);
      for (auto& [id, fn] : subscribers_) fn(seq, event);
      ++seq;
    }
  }
  durable_seq_ = stored->last_seq;
  const std::uint64_t due = std::max<std::uint64_t>(options_.snapshot_every, state_.entry_count() / 2);
  if (state_.last_seq() - last_snapshot_seq_ >= due) {
    if (large_state()) {
      snapshot_wanted_ = true;
    } else {
      snapshot_in_background();
    }
  }
  return status::ok();
}

std::function<void()> user_core::reclaim_chunks(std::int64_t stored_before_us,
                                                journal::reclaim_callback done) {
  return [&store = store_, user = user_, referenced = state_.referenced_chunks(),
          stored_before_us, done = std::move(done)]() mutable {
    auto is_referenced = [&referenced](const sha256_digest& id) {
      return std::binary_search(referenced.begin(), referenced.end(), id,
                                [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
    };
    std::vector<sha256_digest> unreferenced;
    auto listed = store.list_chunks(user, [&](const journal::stored_chunk& c) {
      if (c.stored_at_us < stored_before_us && !is_referenced(c.id)) unreferenced.push_back(c.id);
      return true;
    });
    if (!listed) return done(listed.err());
    if (unreferenced.empty()) return done(journal::reclaimed{});
    store.reclaim_chunks(user, std::move(unreferenced), stored_before_us, std::move(done));
  };
}

bool user_core::large_state() const noexcept {
  const std::size_t off_thread = options_.snapshot_off_thread_entries;
  return off_thread != 0 && state_.entry_count() >= off_thread;
}

journal::snapshot user_core::snapshot_of(const namespace_state& state) {
  // Stamped with the newest event it holds: the core has no clock.
  return {state.last_seq(), state.last_hash(), state.last_timestamp_us(),
          schema::NAMESPACE_STATE_FORMAT, state.encode()};
}

std::function<void()> user_core::queue_snapshot(std::function<void()> done) {
  // Only durable events go into a snapshot; the next chance comes after the batch.
  if (busy() || has_staged() || state_.last_seq() == last_snapshot_seq_) return {};
  // Counted as taken now: should it fail, the next one comes N events later.
  last_snapshot_seq_ = state_.last_seq();
  return [&store = store_, user = user_, &state = state_, done = std::move(done)] {
    store.write_snapshot(user, snapshot_of(state), [](status) {});
    if (done) done();
  };
}

void user_core::snapshot_in_background() {
  if (auto task = queue_snapshot({})) task();
}

std::function<void()> user_core::snapshot_task(std::function<void()> done, bool closing) {
  if (!snapshot_wanted_ && !(closing && large_state())) return {};
  snapshot_wanted_ = false;
  return queue_snapshot(std::move(done));
}

status user_core::snapshot() {
  if (busy() || has_staged()) {
    return error(error_kind::unavailable, "user " + user_ + ": a batch is being persisted: "
                                          "snapshot once it completes");
  }
  if (state_.last_seq() == last_snapshot_seq_) return status::ok();
  if (auto s = store_.write_snapshot(user_, snapshot_of(state_)); !s) return s;
  last_snapshot_seq_ = state_.last_seq();
  return status::ok();
}

}  // namespace autosync::actors
