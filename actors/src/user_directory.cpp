// The CAF shells: one actor per live user around its user_core, and the registry that
// activates, routes to and passivates them.
#include "autosync/actors/user_directory.hpp"

#include <caf/all.hpp>

#include "autosync/base/blocking_pool.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <thread>
#include <unordered_map>

namespace autosync::actors {

namespace {

// A command; or (with `subscription` set) a change of the user's subscribers; or (with
// `reader` set) a look at the state; or (with `reclaim` set) reclaiming chunk space.
struct command_envelope {
  std::string user;
  command cmd;
  state_view view;
  outcome_callback done;
  state_reader reader;
  struct reclaim_request {
    std::int64_t stored_before_us = 0;
    journal::reclaim_callback done;
  };
  std::optional<reclaim_request> reclaim;
  struct subscription_change {
    std::uint64_t id = 0;
    subscriber fn;  // empty: unsubscribe
  };
  std::optional<subscription_change> subscription;
  // The chunks a commit names, looked up ahead on the lookup thread (see look_ahead).
  enum class lookup { not_asked, not_needed, asked, answered } chunks_lookup = lookup::not_asked;
  std::shared_ptr<const chunk_answers> chunks;
};
using command_ptr = std::shared_ptr<command_envelope>;

// The store's sizes for the chunks the listed commands name, carried back to their actor.
struct lookup_answer {
  std::vector<command_ptr> asked;
  std::shared_ptr<const chunk_answers> chunks;
};
using lookup_answer_ptr = std::shared_ptr<lookup_answer>;

// The store's answer to an append, carried back to the user's actor.
struct append_answer {
  explicit append_answer(result<journal::appended> r) : answer(std::move(r)) {}
  result<journal::appended> answer;
};
using answer_ptr = std::shared_ptr<append_answer>;

// The store's answer to a reclaim, carried back to the user's actor.
struct reclaim_answer {
  explicit reclaim_answer(result<journal::reclaimed> r) : answer(std::move(r)) {}
  result<journal::reclaimed> answer;
};
using reclaim_answer_ptr = std::shared_ptr<reclaim_answer>;

// A user's state loaded from the store (snapshot and tail), or why it could not be.
struct recovery {
  explicit recovery(result<std::unique_ptr<user_core>> r) : core(std::move(r)) {}
  result<std::unique_ptr<user_core>> core;
};
using recovery_ptr = std::shared_ptr<recovery>;

}  // namespace

}  // namespace autosync::actors

// Local messages only: these never cross a node, so they need no serialization.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(autosync::actors::command_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(autosync::actors::answer_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(autosync::actors::recovery_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(autosync::actors::reclaim_answer_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(autosync::actors::lookup_answer_ptr)

namespace autosync::actors {

namespace {

using idle_atom = caf::atom_constant<caf::atom("idle")>;
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using busy_atom = caf::atom_constant<caf::atom("busy")>;
using recovered_atom = caf::atom_constant<caf::atom("recovered")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using snapshotted_atom = caf::atom_constant<caf::atom("snapshotd")>;

struct shared_context {
  event_store* store;
  directory_options options;
  // Recoveries read the store (blocking): on threads of their own, never on the actors'
  // threads, where a 100 ms load of a large user would hold up every user scheduled behind
  // it. The registry caps how many are queued here at once.
  blocking_pool* recoveries = nullptr;
  // A reclaim's listing reads the user's whole chunk index: on a thread of its own too, so
  // neither the actors nor the recoveries wait for it; reclaims queue behind each other.
  blocking_pool* reclaims = nullptr;
  // A large user's snapshot is encoded here (see user_options::snapshot_off_thread_entries):
  // only that user waits for it, not every user behind it on the actors' thread.
  blocking_pool* snapshots = nullptr;
  // Chunk look-ups for commits about to be decided: a chunk index out of the block cache is
  // a disk read, and on the actors' thread every user behind this one would wait for it.
  blocking_pool* lookups = nullptr;
  std::atomic<bool> stopping{false};  // recoveries queued and not yet started are skipped
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> activations{0};
};

// --- the user actor ----------------------------------------------------------------------

struct user_actor_state {
  std::string user;
  caf::actor registry;
  bool recovering = true;  // commands wait in `waiting` until the core arrives
  std::unique_ptr<user_core> core;
  // The state is not to be served from (its recovery failed, or it may not be the user's
  // history): every command fails with this until the actor is passivated.
  std::optional<error> broken;
  std::deque<command_ptr> waiting;
  // The commands of the batch being decided or persisted, with their provisional outcomes.
  std::vector<std::pair<command_ptr, command_outcome>> batch;
  bool appending = false;              // the batch's append is in flight
  // A reclaim is in flight: nothing is decided until it completes (a commit could refer to
  // a chunk being forgotten).
  bool reclaiming = false;
  journal::reclaim_callback reclaimed;  // its requester's callback (may be empty)
  // A snapshot is being encoded off this thread, reading the state in place: nothing is
  // decided, read or completed until it is done.
  bool snapshotting = false;
  bool looking_up = false;             // a look-up of waiting commits' chunks is in flight
  std::optional<caf::error> stopping;  // asked to stop: finish the append in flight, then quit
};

const error shutting_down(error_kind::unavailable,
                          "the node is shutting down: retry after it restarts");

// Snapshots (unless the state is known bad) and stops. A large state's snapshot is taken
// on the snapshot thread, and the actor stops once it is done.
void finish(caf::stateful_actor<user_actor_state>* self, shared_context* ctx, caf::error reason) {
  auto& st = self->state;
  if (st.snapshotting) {
    st.stopping = std::move(reason);  // stops when the snapshot is done
    return;
  }
  if (st.core && !st.broken) {
    caf::actor me = caf::actor_cast<caf::actor>(self);
    auto task = st.core->snapshot_task([me] { caf::anon_send(me, snapshotted_atom::value); },
                                       /*closing=*/true);
    if (task) {
      st.snapshotting = true;
      st.stopping = std::move(reason);
      ctx->snapshots->run(std::move(task));
      return;
    }
    // Only shortens the next recovery: queued, not waited for.
    st.core->snapshot_in_background();
  }
  self->quit(std::move(reason));
}

void fail(const command_ptr& c, const error& e) {
  if (c->reader) return c->reader(nullptr, &e);
  if (c->reclaim) {
    if (c->reclaim->done) c->reclaim->done(e);
    return;
  }
  if (c->subscription || !c->done) return;  // nothing waits for an answer
  command_outcome out;
  out.failed = e;
  c->done(std::move(out));
}

void fail_batch(user_actor_state& st, const error& e) {
  for (auto& [c, outcome] : st.batch) fail(c, e);
  st.batch.clear();
}

// The state may not match the store any more (another owner appended, a bug, a store it
// could not reload from): stop serving from it, and ask to be passivated, so the next
// command recovers from the store. Asked now, not left to the idle sweep: a client
// retrying all along would keep the user from ever going idle.
void stop_serving(caf::stateful_actor<user_actor_state>* self, error why) {
  self->state.broken = std::move(why);
  self->send(self->state.registry, idle_atom::value, self->state.user);
}

// Whether a command must wait for its chunks to be looked up before it is decided.
bool awaits_lookup(const user_actor_state& st, command_envelope& c) {
  using lookup = command_envelope::lookup;
  if (c.chunks_lookup == lookup::asked) return true;
  if (c.chunks_lookup != lookup::not_asked) return false;
  if (chunks_to_look_up(st.core->state(), c.cmd).empty()) {
    c.chunks_lookup = lookup::not_needed;
    return false;
  }
  return true;  // look_ahead asks once the look-up in flight is answered
}

// Looks up, on the lookup thread, the chunks the waiting commits will ask the store about,
// so deciding them reads nothing on the actors' thread. One look-up at a time, for the
// next batch's worth of commands (a long queue is not scanned at every message) before the
// first reclaim: answers must not outlive a reclaim, which may forget chunks. Runs while an append is in flight too, so the next batch's answers are in when
// it completes. Each command keeps the answers asked for it: a "missing" answer is never
// reused for a later command, whose chunks may have been uploaded since.
void look_ahead(caf::stateful_actor<user_actor_state>* self, shared_context* ctx) {
  using lookup = command_envelope::lookup;
  auto& st = self->state;
  if (!st.core || st.broken || st.looking_up) return;
  const std::size_t batch_max = std::max<std::size_t>(1, ctx->options.user.batch_commands_max);
  auto answer = std::make_shared<lookup_answer>();
  std::vector<sha256_digest> ids;
  for (std::size_t i = 0; i < st.waiting.size() && i < batch_max; ++i) {
    const auto& c = st.waiting[i];
    if (c->reclaim) break;
    if (c->subscription || c->reader || c->chunks_lookup != lookup::not_asked) continue;
    auto wanted = chunks_to_look_up(st.core->state(), c->cmd);
    if (wanted.empty()) {
      c->chunks_lookup = lookup::not_needed;
      continue;
    }
    c->chunks_lookup = lookup::asked;
    answer->asked.push_back(c);
    ids.insert(ids.end(), wanted.begin(), wanted.end());
  }
  if (answer->asked.empty()) return;
  st.looking_up = true;
  ctx->lookups->run([me = caf::actor_cast<caf::actor>(self), store = ctx->store, user = st.user,
                     answer, ids = std::move(ids)]() mutable {
    auto chunks = std::make_shared<chunk_answers>();
    auto sizes = store->chunk_sizes(user, ids);
    // An unreadable index counts as missing, as when decided: the client re-uploads.
    for (std::size_t i = 0; i < ids.size(); ++i) {
      (*chunks)[ids[i]] = sizes && i < sizes->size() ? (*sizes)[i] : std::nullopt;
    }
    answer->chunks = std::move(chunks);
    caf::anon_send(me, std::move(answer));
  });
}

// Decides waiting commands, in order, into one batch and starts its append; answers at
// once what needs no append. A read or a subscription change ends the batch: it must see
// only durable state, so it waits for the batch to complete. So does a commit whose chunks
// are still being looked up.
void pump(caf::stateful_actor<user_actor_state>* self, shared_context* ctx) {
  auto& st = self->state;
  if (st.recovering || st.reclaiming || st.snapshotting) return;
  look_ahead(self, ctx);
  if (st.appending) return;
  const std::size_t batch_max = std::max<std::size_t>(1, ctx->options.user.batch_commands_max);
  while (!st.waiting.empty() && st.batch.size() < batch_max) {
    auto& next = st.waiting.front();
    const bool command = !next->subscription && !next->reader && !next->reclaim;
    if (!command && st.core && st.core->has_staged()) break;
    if (command && st.core && !st.broken && awaits_lookup(st, *next)) {
      // Asks now if it was beyond the last scan; a look-up in flight pumps again when
      // answered.
      look_ahead(self, ctx);
      break;
    }
    auto c = std::move(next);
    st.waiting.pop_front();
    if (c->subscription) {
      // In order with the commands, so a subscriber sees everything after it.
      if (st.core && c->subscription->fn) {
        st.core->subscribe(c->subscription->id, c->subscription->fn);
      } else if (st.core) {
        st.core->unsubscribe(c->subscription->id);
      }
      continue;
    }
    if (st.broken) {
      fail(c, *st.broken);
      continue;
    }
    if (c->reader) {
      c->reader(&st.core->state(), nullptr);
      continue;
    }
    if (c->reclaim) {
      // Nothing is staged (it waited for the batch): the state is what the store has.
      st.reclaiming = true;
      st.reclaimed = std::move(c->reclaim->done);
      caf::actor me = caf::actor_cast<caf::actor>(self);
      // The listing reads the user's whole chunk index: off the actors' threads, on the
      // reclaim thread, so a large user holds up no other user's commands or recovery.
      ctx->reclaims->run(st.core->reclaim_chunks(
          c->reclaim->stored_before_us, [me](result<journal::reclaimed> r) {
            caf::anon_send(me, std::make_shared<reclaim_answer>(std::move(r)));
          }));
      return;
    }
    auto outcome = st.core->stage(c->cmd, c->chunks.get());
    if (outcome.failed) {
      // A decision its own state could not apply: the batch is gone with it.
      fail(c, *outcome.failed);
      fail_batch(st, *outcome.failed);
      if (!st.core->usable()) stop_serving(self, *outcome.failed);
      continue;
    }
    if (c->view) c->view(st.core->state(), outcome);
    if (!st.core->has_staged()) {
      // Decided against durable state alone (a refusal, a retry): final now.
      c->done(std::move(outcome));
      continue;
    }
    st.batch.emplace_back(std::move(c), std::move(outcome));
  }
  if (!st.core || !st.core->has_staged()) return;
  auto pending = st.core->take_staged();
  st.appending = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  ctx->store->append(st.batch.front().first->user, std::move(pending.events),
                     pending.expected_next_seq, [me](result<journal::appended> r) {
                       // On the store's thread: hand the answer to the actor.
                       caf::anon_send(me, std::make_shared<append_answer>(std::move(r)));
                     });
}

// Starts the large snapshot the core left to this actor, if one is due: on the snapshot
// thread, while this user's commands wait.
void snapshot_off_thread(caf::stateful_actor<user_actor_state>* self, shared_context* ctx) {
  auto& st = self->state;
  if (!st.core || st.broken) return;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto task = st.core->snapshot_task([me] { caf::anon_send(me, snapshotted_atom::value); });
  if (!task) return;
  st.snapshotting = true;
  ctx->snapshots->run(std::move(task));
}

caf::behavior user_actor(caf::stateful_actor<user_actor_state>* self, std::string user,
                         caf::actor registry, shared_context* ctx) {
  self->state.user = user;
  self->state.registry = registry;
  ctx->recoveries->run([me = caf::actor_cast<caf::actor>(self), user, ctx] {
    if (ctx->stopping.load()) {
      return caf::anon_send(me, std::make_shared<recovery>(shutting_down));
    }
    caf::anon_send(me, std::make_shared<recovery>(
                           user_core::recover(*ctx->store, user, ctx->options.user)));
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    for (auto& c : st.waiting) fail(c, shutting_down);
    st.waiting.clear();
    if (st.appending || st.reclaiming || st.snapshotting) {
      st.stopping = msg.reason;  // its answer is on the way: reply to it first
    } else {
      finish(self, ctx, msg.reason);
    }
  });
  return {
      [=](recovery_ptr r) {
        auto& st = self->state;
        st.recovering = false;
        if (r->core) {
          st.core = std::move(r->core).value();
        } else {
          st.broken = std::move(r->core).err();
          // Commands keep such a user from ever going idle: passivate it on a timer, and
          // the next command tries the recovery again. The timer is this actor's own, so
          // it can never reach a later, healthy actor of the same user.
          self->delayed_send(self, ctx->options.recovery_retry_after, retry_atom::value);
        }
        ctx->activations.fetch_add(1, std::memory_order_relaxed);
        self->send(registry, recovered_atom::value, user);
        pump(self, ctx);
      },
      [=](retry_atom) {
        if (self->state.broken) self->send(registry, idle_atom::value, user);
      },
      [=](command_ptr c) {
        if (self->state.stopping) return fail(c, shutting_down);
        self->state.waiting.push_back(std::move(c));
        pump(self, ctx);
      },
      [=](answer_ptr a) {
        auto& st = self->state;
        st.appending = false;
        auto completed = st.core->complete(a->answer);
        if (completed) {
          for (auto& [c, outcome] : st.batch) c->done(std::move(outcome));
          st.batch.clear();
        } else {
          fail_batch(st, completed.err());
          // An unavailable store (a full disk) changed nothing: the state still is the
          // user's history, reloaded from the store.
          if (!st.core->usable() || completed.err().kind() != error_kind::unavailable) {
            stop_serving(self, completed.err());
          }
        }
        if (st.stopping) return finish(self, ctx, *st.stopping);
        snapshot_off_thread(self, ctx);
        pump(self, ctx);
      },
      [=](snapshotted_atom) {
        auto& st = self->state;
        st.snapshotting = false;
        if (st.stopping) return finish(self, ctx, *st.stopping);
        pump(self, ctx);
      },
      [=](lookup_answer_ptr a) {
        auto& st = self->state;
        st.looking_up = false;
        for (auto& c : a->asked) {
          c->chunks = a->chunks;
          c->chunks_lookup = command_envelope::lookup::answered;
        }
        if (st.stopping) return;
        pump(self, ctx);
      },
      [=](reclaim_answer_ptr a) {
        auto& st = self->state;
        st.reclaiming = false;
        auto done = std::move(st.reclaimed);
        st.reclaimed = nullptr;
        if (done) done(std::move(a->answer));
        if (st.stopping) return finish(self, ctx, *st.stopping);
        pump(self, ctx);
      },
      [=](passivate_atom) -> caf::result<caf::atom_value> {
        auto& st = self->state;
        if (st.recovering || st.appending || st.reclaiming || st.snapshotting || st.looking_up ||
            !st.waiting.empty()) {
          return busy_atom::value;
        }
        if (st.core && st.core->has_subscribers()) return busy_atom::value;
        finish(self, ctx, caf::error{});
        return passivate_atom::value;
      },
  };
}

// --- the registry ------------------------------------------------------------------------

using idle_clock = std::chrono::steady_clock;

struct user_entry {
  caf::actor actor;               // null while waiting for a recovery slot
  bool recovering = true;
  bool passivating = false;
  std::deque<command_ptr> queued;  // held while recovering is deferred or passivating
  std::list<std::string>::iterator lru;
  idle_clock::time_point last_used;  // the last command routed, or the last "busy" answer
};

struct registry_state {
  std::unordered_map<std::string, user_entry> users;
  std::unordered_map<caf::actor_addr, std::string> by_actor;
  std::list<std::string> lru;      // most recently used first
  std::deque<std::string> deferred;  // users waiting for a recovery slot
  std::size_t recovering = 0;
  std::size_t passivating = 0;         // entries asked to stop and not down yet
  std::optional<caf::error> stopping;  // quit once every user actor is down
  bool sweep_scheduled = false;
};

using registry_actor_t = caf::stateful_actor<registry_state>;

void start(registry_actor_t* self, shared_context* ctx, const std::string& user) {
  auto& st = self->state;
  auto& entry = st.users.at(user);
  if (st.recovering >= ctx->options.recoveries_max) {
    st.deferred.push_back(user);
    return;
  }
  ++st.recovering;
  entry.recovering = true;
  entry.actor = self->spawn(user_actor, user, caf::actor_cast<caf::actor>(self), ctx);
  self->monitor(entry.actor);
  st.by_actor[entry.actor.address()] = user;
  for (auto& c : entry.queued) self->send(entry.actor, std::move(c));
  entry.queued.clear();
}

void ask_to_passivate(registry_actor_t* self, const std::string& user) {
  // Once stopping, every user actor has been told to exit: asked anything more, one that
  // already quit would answer with an error.
  if (self->state.stopping) return;
  auto& entry = self->state.users.at(user);
  if (entry.passivating || !entry.actor) return;
  entry.passivating = true;
  ++self->state.passivating;
  self->request(entry.actor, caf::infinite, passivate_atom::value)
      .then(
          [=](caf::atom_value answer) {
            auto it = self->state.users.find(user);
            if (answer != busy_atom::value || it == self->state.users.end()) return;
            // Still busy: it stays live, as if just used; commands held meanwhile go to it now.
            it->second.passivating = false;
            --self->state.passivating;
            it->second.last_used = idle_clock::now();
            self->state.lru.splice(self->state.lru.begin(), self->state.lru, it->second.lru);
            for (auto& c : it->second.queued) self->send(it->second.actor, std::move(c));
            it->second.queued.clear();
          },
          // It quit before answering (CAF's default for an unhandled error would stop the
          // registry with it, and the directory's destructor would return while user
          // actors still run): its down message does what is left.
          [](const caf::error&) {});
}

// Asks the least recently used idle actors to stop until at most live_users_max remain
// that are not already stopping.
void enforce_cap(registry_actor_t* self, shared_context* ctx) {
  auto& st = self->state;
  std::size_t staying = st.users.size() - st.passivating;
  for (auto it = st.lru.rbegin(); it != st.lru.rend() && staying > ctx->options.live_users_max;
       ++it) {
    auto& entry = st.users.at(*it);
    if (entry.passivating || entry.recovering || !entry.actor) continue;
    ask_to_passivate(self, *it);
    --staying;
  }
}

// Idle users are found by one periodic sweep of the registry's LRU list rather than by a
// timer in every user actor: re-arming a per-actor timer at each message went through
// CAF's clock thread and cost about 6% of the server's CPU under load (measured).
idle_clock::duration sweep_interval(const shared_context* ctx) {
  return std::clamp<idle_clock::duration>(ctx->options.idle_timeout / 4,
                                          std::chrono::milliseconds(1), std::chrono::seconds(1));
}

void schedule_sweep(registry_actor_t* self, shared_context* ctx) {
  if (self->state.sweep_scheduled || self->state.stopping) return;
  self->state.sweep_scheduled = true;
  self->delayed_send(self, sweep_interval(ctx), sweep_atom::value);
}

// Asks every user idle for idle_timeout to stop, least recently used first. The list is in
// order of last use, so the sweep stops at the first user still in use.
void sweep_idle(registry_actor_t* self, shared_context* ctx) {
  auto& st = self->state;
  st.sweep_scheduled = false;
  if (st.stopping) return;
  const auto now = idle_clock::now();
  for (auto it = st.lru.rbegin(); it != st.lru.rend(); ++it) {
    auto& entry = st.users.at(*it);
    if (now - entry.last_used < ctx->options.idle_timeout) break;
    if (!entry.passivating && !entry.recovering && entry.actor) ask_to_passivate(self, *it);
  }
  if (!st.users.empty()) schedule_sweep(self, ctx);
}

caf::behavior registry_actor(registry_actor_t* self, shared_context* ctx) {
  self->set_down_handler([=](caf::down_msg& down) {
    auto& st = self->state;
    auto by = st.by_actor.find(down.source);
    if (by == st.by_actor.end()) return;
    const std::string user = by->second;
    st.by_actor.erase(by);
    auto& entry = st.users.at(user);
    if (entry.recovering && st.recovering > 0) --st.recovering;
    if (entry.passivating) {
      entry.passivating = false;
      --st.passivating;
    }
    if (!entry.queued.empty() && !st.stopping) {
      // Commands arrived while it stopped: a new actor takes them.
      entry.actor = caf::actor{};
      start(self, ctx, user);
      return;
    }
    st.lru.erase(entry.lru);
    st.users.erase(user);
    ctx->live.store(st.users.size(), std::memory_order_relaxed);
    if (st.stopping && st.by_actor.empty()) self->quit(*st.stopping);
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    st.stopping = msg.reason;
    for (auto& [user, entry] : st.users) {
      for (auto& c : entry.queued) fail(c, shutting_down);
      entry.queued.clear();
      if (entry.actor) self->send_exit(entry.actor, msg.reason);
    }
    if (st.by_actor.empty()) self->quit(msg.reason);
  });
  return {
      [=](command_ptr c) {
        auto& st = self->state;
        if (st.stopping) return fail(c, shutting_down);
        auto it = st.users.find(c->user);
        if (it == st.users.end()) {
          st.lru.push_front(c->user);
          it = st.users.emplace(c->user, user_entry{}).first;
          it->second.lru = st.lru.begin();
          it->second.last_used = idle_clock::now();
          it->second.queued.push_back(std::move(c));
          ctx->live.store(st.users.size(), std::memory_order_relaxed);
          start(self, ctx, it->first);
          enforce_cap(self, ctx);
          schedule_sweep(self, ctx);
          return;
        }
        auto& entry = it->second;
        st.lru.splice(st.lru.begin(), st.lru, entry.lru);
        entry.last_used = idle_clock::now();
        if (!entry.actor || entry.passivating) {
          entry.queued.push_back(std::move(c));
        } else {
          self->send(entry.actor, std::move(c));
        }
      },
      [=](recovered_atom, const std::string& user) {
        auto& st = self->state;
        if (st.recovering > 0) --st.recovering;
        if (auto it = st.users.find(user); it != st.users.end()) it->second.recovering = false;
        // Stopping: a user started now would never be told to exit.
        if (st.stopping) return;
        while (!st.deferred.empty() && st.recovering < ctx->options.recoveries_max) {
          auto next = std::move(st.deferred.front());
          st.deferred.pop_front();
          if (st.users.count(next) != 0) start(self, ctx, next);
        }
        enforce_cap(self, ctx);
      },
      [=](idle_atom, const std::string& user) {
        if (self->state.users.count(user) != 0) ask_to_passivate(self, user);
      },
      [=](sweep_atom) { sweep_idle(self, ctx); },
  };
}

}  // namespace

void configure_scheduler(caf::actor_system_config& config, std::size_t threads) {
  config.set("scheduler.policy", caf::atom("sharing"));
  if (threads == 0) threads = std::max<std::size_t>(1, std::thread::hardware_concurrency() / 2);
  config.set("scheduler.max-threads", threads);
}

struct user_directory::impl {
  impl(caf::actor_system& s, event_store& store, const directory_options& options)
      : system(s),
        recoveries(std::max<std::size_t>(1, options.recoveries_max), "recovery"),
        reclaims(1, "reclaim"),
        snapshots(1, "snapshot"),
        lookups(2, "chunk-lookup") {
    ctx.store = &store;
    ctx.options = options;
    ctx.recoveries = &recoveries;
    ctx.reclaims = &reclaims;
    ctx.snapshots = &snapshots;
    ctx.lookups = &lookups;
  }
  caf::actor_system& system;
  shared_context ctx;
  // Destroyed (each runs what is queued: recoveries then skip their work, reclaims finish
  // theirs, which the actors waiting for them need) after the actors are down and before
  // the context the tasks read.
  blocking_pool recoveries;
  blocking_pool reclaims;
  blocking_pool snapshots;
  blocking_pool lookups;
  caf::actor registry;
};

user_directory::user_directory(caf::actor_system& system, event_store& store,
                               directory_options options)
    : impl_(std::make_unique<impl>(system, store, options)) {
  impl_->registry = system.spawn(registry_actor, &impl_->ctx);
}

user_directory::~user_directory() {
  // The registry stops every user actor (each finishes its append in flight and
  // snapshots) and quits when the last one is down.
  impl_->ctx.stopping = true;
  caf::scoped_actor waiter{impl_->system};
  waiter->send_exit(impl_->registry, caf::exit_reason::user_shutdown);
  waiter->wait_for(impl_->registry);
}

void user_directory::send(const std::string& user, command cmd, outcome_callback done) {
  send(user, std::move(cmd), state_view{}, std::move(done));
}

void user_directory::send(const std::string& user, command cmd, state_view view,
                          outcome_callback done) {
  auto envelope = std::make_shared<command_envelope>();
  envelope->user = user;
  envelope->cmd = std::move(cmd);
  envelope->view = std::move(view);
  envelope->done = std::move(done);
  caf::anon_send(impl_->registry, std::move(envelope));
}

void user_directory::read(const std::string& user, state_reader read) {
  auto envelope = std::make_shared<command_envelope>();
  envelope->user = user;
  envelope->reader = std::move(read);
  caf::anon_send(impl_->registry, std::move(envelope));
}

void user_directory::subscribe(const std::string& user, std::uint64_t id, subscriber fn) {
  auto envelope = std::make_shared<command_envelope>();
  envelope->user = user;
  envelope->subscription = command_envelope::subscription_change{id, std::move(fn)};
  caf::anon_send(impl_->registry, std::move(envelope));
}

void user_directory::unsubscribe(const std::string& user, std::uint64_t id) {
  auto envelope = std::make_shared<command_envelope>();
  envelope->user = user;
  envelope->subscription = command_envelope::subscription_change{id, {}};
  caf::anon_send(impl_->registry, std::move(envelope));
}

void user_directory::reclaim_chunks(const std::string& user, std::int64_t stored_before_us,
                                    journal::reclaim_callback done) {
  auto envelope = std::make_shared<command_envelope>();
  envelope->user = user;
  envelope->reclaim = command_envelope::reclaim_request{stored_before_us, std::move(done)};
  caf::anon_send(impl_->registry, std::move(envelope));
}

std::size_t user_directory::live_users() const noexcept { return impl_->ctx.live.load(); }
std::size_t user_directory::activations() const noexcept { return impl_->ctx.activations.load(); }

}  // namespace autosync::actors
