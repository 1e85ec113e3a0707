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
#include "autosync/journal/journal.hpp"
#include "autosync/schema/sync.capnp.h"
#include "autosync/server/audit.hpp"
#include "autosync/server/auth.hpp"
#include "autosync/server/node.hpp"
#include "blocking_pool.hpp"

namespace autosync::server {

// A token bucket per user, refilled by the clock passed in. Event loop thread only.
class rate_limiter {
public:
  rate_limiter(double per_s, double burst) : per_s_(per_s), burst_(burst) {}
  // 0 when the request may go now; else how long to wait (ms) before one would.
  std::uint32_t admit(const std::string& user, std::int64_t now_us);

private:
  // Users with a bucket at most before full ones are forgotten: memory stays bounded
  // however many users log in.
  static constexpr std::size_t buckets_max = 100000;
  struct bucket {
    double tokens = 0;
    std::int64_t refilled_us = 0;
  };
  double per_s_;
  double burst_;
  std::unordered_map<std::string, bucket> buckets_;
};

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
  std::uint64_t next_subscription_id = 1;
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

template <class T>
cross_thread_reply<T> make_cross_thread_reply() {
  // kj::Own's destructor may throw, so it cannot sit in a lambda directly: a holder with a
  // non-throwing destructor carries it.
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
