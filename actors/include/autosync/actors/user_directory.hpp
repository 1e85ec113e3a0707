// The users of one node, each behind its own actor (CAF). Commands for a user are handled
// in order by that user's actor, those waiting decided together and persisted as one append
// (see user_core); different users run in parallel. An idle user's
// actor snapshots and stops; a cap bounds the live actors (least recently used first); a
// cap bounds concurrent recoveries, so a restart does not stampede the disk.
//
// This header keeps CAF out of its includers: the actor system is only forward-declared.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "autosync/actors/user_core.hpp"

namespace caf {
class actor_system;
class actor_system_config;
}

namespace autosync::actors {

// A user's options under an actor: a large snapshot is encoded off the actors' thread, so
// a user of 100,000 files (46 ms to encode) holds up only its own commands.
inline user_options actor_user_options() {
  user_options o;
  o.snapshot_off_thread_entries = 10000;
  return o;
}

struct directory_options {
  user_options user = actor_user_options();
  // A user with no command for this long (found up to a quarter of it later, at most a
  // second) snapshots and stops, unless it has subscribers or work in flight.
  std::chrono::milliseconds idle_timeout{60000};
  // Live user actors at most; beyond it the least recently used idle one is passivated.
  // Each live user holds its whole namespace in memory.
  std::size_t live_users_max = 10000;
  // Users recovering (loading snapshot and tail) at once at most.
  std::size_t recoveries_max = 4;
  // A user whose recovery failed answers every command with that error for this long,
  // then is passivated so the next command recovers afresh (the store may have been
  // unreadable only for a moment; damage fails again, at most this often).
  std::chrono::milliseconds recovery_retry_after{5000};
};

// Runs once, on an actor's thread, with the command's outcome (after its events are
// durable). Must not block.
using outcome_callback = std::function<void(command_outcome)>;
// Runs on the actor's thread just after the command was decided, with the user's state
// including its events (not yet durable: nothing may leave the actor before the outcome
// says so), and the outcome so far (a retry: the seqs its first run wrote). Not run when
// the user could not be recovered. Read what the reply needs, do not keep the reference.
using state_view = std::function<void(const namespace_state&, const command_outcome&)>;
// Runs once, on the user's actor thread, with the user's state after every command sent
// before it, or the error that keeps the user from being served. Must not block.
using state_reader = std::function<void(const namespace_state*, const error*)>;

// The scheduler the user actors run best on: one shared queue with a condition variable
// (CAF's work stealing polls, then sleeps up to 10 ms, which a request-reply server pays in
// latency) and `threads` threads; 0 means half the cores, at least one (CAF's default is at
// least 4, and every thread added contends for the one queue). Measured in
// docs/BENCHMARKS.md.
void configure_scheduler(caf::actor_system_config& config, std::size_t threads = 0);

class user_directory {
public:
  user_directory(caf::actor_system& system, event_store& store, directory_options options);
  // Stops every user actor (each snapshots first) and waits for them.
  ~user_directory();
  user_directory(const user_directory&) = delete;
  user_directory& operator=(const user_directory&) = delete;

  // Hands a command to the user's actor, activating it if needed. Thread safe.
  void send(const std::string& user, command cmd, outcome_callback done);
  void send(const std::string& user, command cmd, state_view view, outcome_callback done);

  // Lets `read` look at the user's state, in order with the commands. Thread safe.
  void read(const std::string& user, state_reader read);

  // From now on, `fn` receives each of the user's durable events, in order, on the user's
  // actor thread (it must not block; copy what it needs). A user with subscribers is never
  // passivated. `id` names the subscription for unsubscribe(). Thread safe.
  void subscribe(const std::string& user, std::uint64_t id, subscriber fn);
  void unsubscribe(const std::string& user, std::uint64_t id);

  // Reclaims the space of the user's chunks no revision refers to, stored before
  // `stored_before_us` (see user_core::reclaim_chunks), in order with the commands: those
  // sent after it wait until the store has forgotten the chunks. `done` (may be empty)
  // runs once, on the user's actor thread, or the registry's when the user cannot be
  // served. Thread safe.
  void reclaim_chunks(const std::string& user, std::int64_t stored_before_us,
                      journal::reclaim_callback done);

  std::size_t live_users() const noexcept;
  std::size_t activations() const noexcept;  // recoveries so far

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace autosync::actors
