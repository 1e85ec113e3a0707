// The logic of one user's actor, without the actor: recover from the newest snapshot and
// the tail, decide commands, persist their events through the event store, notify
// subscribers once they are durable, snapshot every N events.
//
// Commands are decided in batches (the user's own group commit): stage() decides a command
// against the state including every command staged before it and applies its events at
// once; take_staged() hands all of them to the store as one append; complete() takes the
// store's answer. Outcomes of a batch hold only once complete() succeeds: the owner replies
// to nobody in between. Should the append fail, the staged events are dropped by reloading
// the state from the store, so the state never keeps what the store does not have.
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
  // A snapshot after this many events since the last one, or, for a state of more than
  // twice as many entries, after half as many events as it has entries. Encoding costs
  // about a microsecond per entry (100,000 files: 92 ms, on the actor's thread), so a
  // fixed interval would make a large user's snapshots cost more than its commits; this
  // way they cost a few microseconds per event whatever the size, and a recovery replays
  // a tail no longer than what loading the snapshot itself takes.
  std::uint64_t snapshot_every = 1000;
  // Commands decided together and persisted as one append at most: the user's own group
  // commit, while the previous append is being synced.
  std::size_t batch_commands_max = 256;
  // A due snapshot of a state of at least this many entries is left to the owner to run
  // off its thread (snapshot_task); 0 keeps every snapshot inline. Encoding costs about
  // 0.45 us an entry (46 ms for 100,000), and an actor's thread serves other users too.
  std::size_t snapshot_off_thread_entries = 0;
};

// What the client that sent a command learns.
struct command_outcome {
  std::optional<applied_operation> applied;  // the seqs written (or, on a retry, written before)
  bool was_retry = false;                    // the operation id had been applied already
  std::optional<refusal> refused;            // the command was refused (nothing changed)
  std::optional<error> failed;               // persisting failed (nothing changed); retry later
};

// Events ready to persist as one append: hand them to the store, then call complete() with
// its answer.
struct pending_append {
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events;
  std::uint64_t expected_next_seq = 0;
};

using subscriber = std::function<void(std::uint64_t seq, schema::Event::Reader event)>;

// Chunk sizes the store gave for a command's chunks (nullopt: it lacks the chunk).
using chunk_answers = std::map<sha256_digest, std::optional<std::uint64_t>>;

class user_core {
public:
  static result<std::unique_ptr<user_core>> recover(event_store& store, std::string user,
                                                    user_options options = {});

  const std::string& user() const noexcept { return user_; }
  // The state with every staged command applied (durable once complete() succeeds).
  const namespace_state& state() const noexcept { return state_; }
  // An append is in flight: nothing can be staged until complete().
  bool busy() const noexcept { return !in_flight_.empty(); }
  // Commands staged since the last take_staged() wrote events: their outcomes, and those of
  // every command staged after them, are provisional until the append completes.
  bool has_staged() const noexcept { return !staged_.empty(); }
  std::size_t staged_events() const noexcept { return staged_.size(); }

  // Decides a command against state() and, when it writes events, applies them to state()
  // and stages them. The store is asked about the chunks a commit names unless `known`
  // answers for them (looked up ahead, off the owner's thread: chunks_to_look_up()).
  // REQUIRES: !busy().
  command_outcome stage(const command& cmd, const chunk_answers* known = nullptr);

  // The staged events as one append. REQUIRES: has_staged() and !busy().
  pending_append take_staged();

  // The store's answer to the append taken last. On success subscribers are told of its
  // events (after checking that the store's chain head is the one computed here). On
  // failure the state is reloaded from the store, dropping the batch, and the error is
  // returned (every command of the batch failed); if even the reload fails, usable() is
  // false from then on.
  status complete(const result<journal::appended>& stored);
  bool usable() const noexcept { return usable_; }

  // Reclaims the space of the user's chunks that no revision in the state refers to and
  // that were stored before `stored_before_us` (a younger one may belong to a commit still
  // to come). Collects the chunks the state refers to here, and returns the rest of the
  // work: listing the store's chunks (a scan as long as the user's store: run it on a
  // thread that may block) and having the store forget the unreferenced ones. `done` runs
  // once that is durable, on the store's thread (on the task's, when there is nothing to
  // forget or the listing fails). Until then the owner must stage nothing: a commit decided
  // meanwhile could refer to a chunk being forgotten. REQUIRES: !busy() and !has_staged().
  std::function<void()> reclaim_chunks(std::int64_t stored_before_us,
                                       journal::reclaim_callback done);

  // Subscribers receive each durable event, in order, with its seq.
  void subscribe(std::uint64_t id, subscriber fn) { subscribers_[id] = std::move(fn); }
  void unsubscribe(std::uint64_t id) { subscribers_.erase(id); }
  bool has_subscribers() const noexcept { return !subscribers_.empty(); }

  // Writes a snapshot now if events were applied since the last one, and waits for it.
  // REQUIRES: nothing staged or in flight (a snapshot holds only durable events).
  status snapshot();
  // The same without waiting (on passivation, and every N events): the encoded state goes
  // to the store's queue. A snapshot that then fails costs only recovery time.
  void snapshot_in_background();
  // When a snapshot came due for a large state (see snapshot_off_thread_entries), or, with
  // `closing` (the owner is about to stop), when a large state has events since the last
  // one: a task that encodes the state and queues it to the store, then calls `done`, to
  // be run on another thread. It reads the state in place, so until `done` runs the owner
  // must not call anything that changes it (stage, complete, reclaim_chunks, snapshot...).
  // Empty when there is none to take.
  std::function<void()> snapshot_task(std::function<void()> done, bool closing = false);
  std::uint64_t last_snapshot_seq() const noexcept { return last_snapshot_seq_; }

private:
  user_core(event_store& store, std::string user, user_options options)
      : store_(store), user_(std::move(user)), options_(options) {}

  status load();  // the state from the newest snapshot and the tail
  bool large_state() const noexcept;  // see user_options::snapshot_off_thread_entries
  static journal::snapshot snapshot_of(const namespace_state& state);
  // Marks a snapshot of the durable state as taken and returns the task that encodes and
  // queues it, then calls `done` (may be empty); empty when there is nothing to take.
  std::function<void()> queue_snapshot(std::function<void()> done);

  struct sealed_event {  // an event as the store will hold it, and its hash
    kj::Array<capnp::word> canonical;
    sha256_digest hash;
  };

  event_store& store_;
  std::string user_;
  user_options options_;
  namespace_state state_;
  std::uint64_t durable_seq_ = 0;  // the last seq the store has acknowledged
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> staged_messages_;
  std::vector<sealed_event> staged_;
  std::vector<sealed_event> in_flight_;
  std::map<std::uint64_t, subscriber> subscribers_;
  bool usable_ = true;
  std::uint64_t last_snapshot_seq_ = 0;
  bool snapshot_wanted_ = false;  // due, and left to the owner's snapshot_task
};

}  // namespace autosync::actors
