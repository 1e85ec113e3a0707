#include "autosync/actors/user_core.hpp"

#include <capnp/serialize.h>

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
  auto snap = store.latest_snapshot(core->user_);
  if (!snap) return std::move(snap).err();
  if (snap->has_value() && (*snap)->state_format == schema::NAMESPACE_STATE_FORMAT) {
    auto decoded = namespace_state::decode((*snap)->state, (*snap)->seq, (*snap)->head_hash);
    if (!decoded) return std::move(decoded).err();
    core->state_ = std::move(decoded).value();
    core->last_snapshot_seq_ = (*snap)->seq;
  }
  if (auto s = replay_events(store, core->user_, core->state_); !s) return std::move(s).err();
  return core;
}

std::variant<command_outcome, pending_append> user_core::begin(const command& cmd) {
  last_command_us_ = cmd.timestamp_us;
  auto decided = decide(state_, cmd, [this](const std::vector<sha256_digest>& ids) {
    auto has = store_.has_chunks(user_, ids);
    // An unreadable index counts as missing: the client re-uploads, nothing is lost.
    return has ? *has : std::vector<bool>(ids.size(), false);
  });
  if (auto* refused = std::get_if<refusal>(&decided)) {
    command_outcome out;
    out.refused = std::move(*refused);
    return out;
  }
  auto& d = std::get<decision>(decided);
  if (d.already_applied) {
    command_outcome out;
    out.applied = d.already_applied;
    out.was_retry = true;
    return out;
  }
  // Chain the events here exactly as the store will: the same canonical bytes, so the
  // hashes computed now are the ones it will report, and the events can be applied from
  // these bytes once durable.
  pending_append pending;
  pending.expected_next_seq = state_.last_seq() + 1;
  std::uint64_t seq = state_.last_seq();
  sha256_digest prev = state_.last_hash();
  for (auto& message : d.events) {
    auto event = message->getRoot<schema::Event>();
    event.setFormatVersion(schema::EVENT_FORMAT_VERSION);
    event.setSeq(++seq);
    event.setPrevHash({prev.bytes.data(), prev.bytes.size()});
    sealed_event sealed{capnp::canonicalize(event.asReader()), {}};
    auto bytes = sealed.canonical.asBytes();
    sealed.hash = sha256({reinterpret_cast<const char*>(bytes.begin()), bytes.size()});
    prev = sealed.hash;
    in_flight_.push_back(std::move(sealed));
  }
  pending.events = std::move(d.events);
  return pending;
}

command_outcome user_core::complete(const result<journal::appended>& stored) {
  command_outcome out;
  auto events = std::move(in_flight_);
  in_flight_.clear();
  if (!stored) {
    out.failed = stored.err();
    return out;
  }
  if (events.empty() || stored->last_hash != events.back().hash ||
      stored->first_seq != state_.last_seq() + 1) {
    // The store chained differently from this state: this state is not the user's history.
    out.failed = error(error_kind::internal, "user " + user_ + ": the store's chain head differs "
                                             "from the one computed: reload the user");
    return out;
  }
  kj::ArrayPtr<const capnp::word> segment;
  std::unique_ptr<capnp::SegmentArrayMessageReader> reader;
  std::uint64_t seq = stored->first_seq;
  for (const auto& e : events) {
    auto event = read_canonical(e.canonical, segment, reader);
    if (auto applied = state_.apply(seq, e.hash, event); !applied) {
      out.failed = applied.err();
      return out;
    }
    for (auto& [id, fn] : subscribers_) fn(seq, event);
    ++seq;
  }
  out.applied = applied_operation{stored->first_seq, stored->last_seq};
  if (state_.last_seq() - last_snapshot_seq_ >= options_.snapshot_every) {
    snapshot_in_background();
  }
  return out;
}

void user_core::snapshot_in_background() {
  if (state_.last_seq() == last_snapshot_seq_) return;
  journal::snapshot snap{state_.last_seq(), state_.last_hash(), last_command_us_,
                         schema::NAMESPACE_STATE_FORMAT, state_.encode()};
  // Counted as taken now: should it fail, the next one comes N events later.
  last_snapshot_seq_ = state_.last_seq();
  store_.write_snapshot(user_, snap, [](status) {});
}

status user_core::snapshot() {
  if (state_.last_seq() == last_snapshot_seq_) return status::ok();
  journal::snapshot snap{state_.last_seq(), state_.last_hash(), last_command_us_,
                         schema::NAMESPACE_STATE_FORMAT, state_.encode()};
  if (auto s = store_.write_snapshot(user_, snap); !s) return s;
  last_snapshot_seq_ = state_.last_seq();
  return status::ok();
}

}  // namespace autosync::actors
