// The logic of one user's actor, without the actor: recover from the newest snapshot and
// the tail, decide commands, persist their events through the event store, apply them once
// durable, notify subscribers, snapshot every N events.
//
// Single-threaded: the owner (the user's actor) calls it from one thread at a time. The
// store answers an append on a thread of its own; the owner brings that answer back to its
// own thread (the actor sends itself a message) and then calls complete().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "autosync/actors/decide.hpp"
#include "autosync/actors/event_store.hpp"

namespace autosync::actors {

struct user_options {
  // A snapshot after this many events since the last one: recovery then replays at most
  // this many events.
  std::uint64_t snapshot_every = 1000;
};

// What the client that sent a command learns.
struct command_outcome {
  std::optional<applied_operation> applied;  // the seqs written (or, on a retry, written before)
  bool was_retry = false;                    // the operation id had been applied already
  std::optional<refusal> refused;            // the command was refused (nothing changed)
  std::optional<error> failed;               // persisting failed (nothing changed); retry later
};

// Events ready to persist: hand them to the store, then call complete() with its answer.
struct pending_append {
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events;
  std::uint64_t expected_next_seq = 0;
};

using subscriber = std::function<void(std::uint64_t seq, schema::Event::Reader event)>;

class user_core {
public:
  static result<std::unique_ptr<user_core>> recover(event_store& store, std::string user,
                                                    user_options options = {});

  const std::string& user() const noexcept { return user_; }
  const namespace_state& state() const noexcept { return state_; }
  bool busy() const noexcept { return !in_flight_.empty(); }

  // Decides a command. The outcome is immediate (a refusal, a retry) or the events must be
  // persisted first. REQUIRES: !busy(): one append in flight per user.
  std::variant<command_outcome, pending_append> begin(const command& cmd);

  // The store's answer to the append begun last. On success the events are applied (after
  // checking that the store's chain head is the one computed here) and subscribers told.
  command_outcome complete(const result<journal::appended>& stored);

  // Subscribers receive each durable event, in order, with its seq.
  void subscribe(std::uint64_t id, subscriber fn) { subscribers_[id] = std::move(fn); }
  void unsubscribe(std::uint64_t id) { subscribers_.erase(id); }
  bool has_subscribers() const noexcept { return !subscribers_.empty(); }

  // Writes a snapshot now if events were applied since the last one, and waits for it.
  status snapshot();
  // The same without waiting (on passivation, and every N events): the encoded state goes
  // to the store's queue. A snapshot that then fails costs only recovery time.
  void snapshot_in_background();
  std::uint64_t last_snapshot_seq() const noexcept { return last_snapshot_seq_; }

private:
  user_core(event_store& store, std::string user, user_options options)
      : store_(store), user_(std::move(user)), options_(options) {}

  struct sealed_event {  // an event as the store will hold it, and its hash
    kj::Array<capnp::word> canonical;
    sha256_digest hash;
  };

  event_store& store_;
  std::string user_;
  user_options options_;
  namespace_state state_;
  std::vector<sealed_event> in_flight_;
  std::map<std::uint64_t, subscriber> subscribers_;
  std::uint64_t last_snapshot_seq_ = 0;
  std::int64_t last_command_us_ = 0;  // the snapshot's timestamp: the core has no clock
};

}  // namespace autosync::actors
