// What the RPC gateway's objects share, and the bridge from other threads back into the
// RPC event loop. Everything here lives on the event loop's thread unless it says so.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "autosync/actors/user_directory.hpp"
#include "autosync/base/blocking_pool.hpp"
#include "autosync/journal/journal.hpp"
#include "autosync/schema/sync.capnp.h"
#include "autosync/server/audit.hpp"
#include "autosync/server/auth.hpp"
#include "autosync/server/node.hpp"
#include "rate_limiter.hpp"
#include "reply_doorbell.hpp"
#include "retention_schedule.hpp"

namespace autosync::server {

struct rpc_context {
  journal::journal& journal;
  actors::event_store& store;
  actors::user_directory& users;
  blocking_pool& pool;
  const token_policy& tokens;
  audit_log* audit;  // may be null
  rpc_limits limits;
  kj::Timer& timer;
  rate_limiter limiter;
  retention_schedule retention;
  std::uint64_t next_subscription_id = 1;
  // Failed logins per client address: beyond the budget they are answered rate limited
  // and not audited one by one (a flood would fill the disk). Valid logins never count.
  rate_limiter failed_logins{20, 200};
};

// The wall clock, µs since 1970 (the server's clock for events and token checks).
std::int64_t now_us();

// A promise for the event loop and the function that fulfils it from any thread (a user
// actor, the journal's writer, the blocking pool). The function may be called once; if
// it is dropped uncalled, the promise fails. If the promise was dropped (the call was
// cancelled), calling it does nothing.
template <class T>
struct cross_thread_reply {
  kj::Promise<T> promise;
  std::function<void(T)> fulfil;
};

// On the RPC thread the answer goes through its doorbell (reply_doorbell.hpp: answers
// that arrive together share one wake-up of the loop); on a loop without one, through
// kj's cross-thread fulfiller (one wake-up each).
template <class T>
cross_thread_reply<T> make_cross_thread_reply() {
  if (auto* doorbell = reply_doorbell::current()) {
    // The fulfiller is touched on the loop's thread only: the answer, or the failure when
    // the function is dropped uncalled, travels to it as a posted task.
    struct holder {
      holder(std::shared_ptr<reply_doorbell::queue> q, kj::Own<kj::PromiseFulfiller<T>> f)
          : to(std::move(q)), fulfiller(kj::mv(f)) {}
      ~holder() noexcept {
        if (fulfiller.get() == nullptr) return;
        // Destroyed unfulfilled, on the loop's thread: the promise fails.
        to->post([f = kj::mv(fulfiller)]() mutable { f = nullptr; });
      }
      std::shared_ptr<reply_doorbell::queue> to;
      kj::Own<kj::PromiseFulfiller<T>> fulfiller;
    };
    auto pair = kj::newPromiseAndFulfiller<T>();
    auto h = std::make_shared<holder>(doorbell->tasks(), kj::mv(pair.fulfiller));
    return {kj::mv(pair.promise), [h](T value) {
              h->to->post([f = kj::mv(h->fulfiller), v = kj::mv(value)]() mutable {
                f->fulfill(kj::mv(v));
              });
            }};
  }
  // std::function needs a copyable callable and kj::Own is move-only (with a destructor
  // declared noexcept(false)): a shared holder with a non-throwing destructor carries it,
  // as in the branch above. (The doorbell's tasks are kj::Functions, which take it as is.)
  struct holder {
    explicit holder(kj::Own<kj::CrossThreadPromiseFulfiller<T>> f) : fulfiller(kj::mv(f)) {}
    ~holder() noexcept {}
    kj::Own<kj::CrossThreadPromiseFulfiller<T>> fulfiller;
  };
  auto pair = kj::newPromiseAndCrossThreadFulfiller<T>();
  auto h = std::make_shared<holder>(kj::mv(pair.fulfiller));
  return {kj::mv(pair.promise), [h](T value) { h->fulfiller->fulfill(kj::mv(value)); }};
}

// The root capability a connection starts with. `peer` names the client for the audit log.
kj::Own<schema::rpc::Gateway::Server> make_gateway(rpc_context& ctx, std::string peer);

}  // namespace autosync::server
