// Inside the client: the connection (kj event loop, Cap'n Proto RPC, login), the retry
// loop, and conversions from the wire. Only the sdk's own .cpp files include this.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include <algorithm>
#include <cstdint>
#include <thread>

#include "autosync/schema/sync.capnp.h"
#include "autosync/sdk/client.hpp"

namespace autosync::sdk {

namespace rpc = schema::rpc;

// What a server failure or a broken connection means for a retry.
struct call_error {
  error err;
  bool retry = false;           // the same call again may succeed (with the same op id)
  bool reconnect = false;       // the connection is gone: reconnect first
  std::uint32_t retry_after_ms = 0;
};

// Text for the wire with its exact bytes: a NUL inside must reach the server (which
// refuses it), not cut the string short.
inline capnp::Text::Reader wire_text(const std::string& s) { return {s.data(), s.size()}; }

error error_from(rpc::Failure::Reader f);
entry entry_from(rpc::Entry::Reader e);
version version_from(rpc::Version::Reader v);
change change_from(rpc::Change::Reader c);
sha256_digest digest_from(capnp::Data::Reader d);
capnp::Data::Reader bytes_of(const sha256_digest& d);

// The thread's event loop, shared by every client on the thread (kj allows one per thread).
struct thread_loop {
  thread_loop() : io(kj::setupAsyncIo()) {}
  ~thread_loop() noexcept {}
  kj::AsyncIoContext io;
  // The loop of the calling thread, created with its first client and gone with its last.
  static std::shared_ptr<thread_loop> get();
};

struct client::impl {
  explicit impl(connect_options o)
      : options(std::move(o)), loop(thread_loop::get()), io(loop->io) {}

  connect_options options;
  std::shared_ptr<thread_loop> loop;
  kj::AsyncIoContext& io;
  kj::Own<kj::TlsContext> tls;

  // The live connection, if any. Members are destroyed in reverse order.
  struct link {
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyVatNetwork> network;
    kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
    rpc::Session::Client session = nullptr;
    kj::Promise<void> watch_disconnect = nullptr;
    bool disconnected = false;
  };
  kj::Own<link> conn;
  // Counts the connections made: a promise of an earlier one will never be answered.
  std::uint64_t connections_made = 0;
  std::string user;
  std::int64_t expires_at_s = 0;

  // The subscription, resumed after each reconnect from the last change delivered.
  std::function<void(const change&)> on_change;
  std::uint64_t subscription_cursor = 0;
  kj::Maybe<rpc::Subscription::Client> subscription;
  // Set when the server ended the subscription (its `ended` call): why.
  std::optional<error> subscription_ended;

  // Connects and logs in (a refused login is not retried: the token will not improve).
  status connect_once();
  status subscribe_now();
  // Subscribes through call() (reconnecting as needed) unless connecting already did.
  status resubscribe();
  void drop_connection() { conn = nullptr; subscription = nullptr; }
  kj::Timer& timer() { return io.provider->getTimer(); }
  void sleep_ms(std::uint32_t ms) {
    timer().afterDelay(ms * kj::MILLISECONDS).wait(io.waitScope);
    settle();
  }

  // The connection gathers small writes until the event loop goes idle (schema::buffered),
  // and this loop runs only while the caller waits in the SDK: before going back to the
  // caller, what it holds (the Finish of the call just answered, answers to the server's
  // listener calls) goes out, instead of whenever the caller next makes a call.
  void settle() {
    auto ignored = kj::runCatchingExceptions([&] { io.waitScope.poll(); });
    (void)ignored;
  }

  // Runs `attempt` (which sends one call on the session and waits for it) until it
  // succeeds, fails for good, or the retries are spent; reconnecting when needed.
  template <class T>
  result<T> call(const std::function<result<T>(rpc::Session::Client&)>& attempt);

  // Waits for `p` on the event loop; a broken promise becomes a retryable error.
  template <class T>
  T wait(kj::Promise<T>&& p) {
    return p.exclusiveJoin(timer().afterDelay(options.call_timeout.count() * kj::MILLISECONDS)
                               .then([]() -> T {
                                 kj::throwFatalException(KJ_EXCEPTION(
                                     DISCONNECTED, "no answer within the call timeout"));
                               }))
        .wait(io.waitScope);
  }
};

// Thrown inside an attempt for a failure the server reported; call() decides on retries.
struct server_failure {
  call_error failure;
};

// The error of a failure the server answered with, classified for retries.
call_error classify(rpc::Failure::Reader f);

// Throws the server's failure (for call() to classify) if the results carry one.
template <class Results>
void check(const Results& r) {
  if (r.hasFailure()) throw server_failure{classify(r.getFailure())};
}

template <class T>
result<T> client::impl::call(const std::function<result<T>(rpc::Session::Client&)>& attempt) {
  KJ_DEFER(settle());  // whichever way it returns
  std::optional<error> last;
  for (int tries = 0; tries <= options.retries_max; ++tries) {
    if (tries > 0) sleep_ms(std::min<std::uint32_t>(2000, 50u << std::min(tries, 5)));
    if (!conn) {
      auto connected = connect_once();
      if (!connected) {
        if (connected.err().kind() != error_kind::unavailable) return connected.err();
        last = connected.err();
        continue;
      }
    }
    std::optional<result<T>> outcome;
    std::optional<call_error> failed;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      try {
        outcome.emplace(attempt(conn->session));
      } catch (server_failure& f) {
        failed = f.failure;
      }
    })) {
      failed = call_error{error(error_kind::unavailable,
                                "connection to " + options.server + " lost (" +
                                    std::string(e->getDescription().cStr()) + ")"),
                          true, true, 0};
    }
    if (outcome) return std::move(*outcome);
    if (!failed->retry) return failed->err;
    last = failed->err;
    if (failed->reconnect) drop_connection();
    // The server's wait, capped (options.retry_after_max); none after the last attempt.
    if (failed->retry_after_ms > 0 && tries < options.retries_max) {
      const auto longest = std::clamp<std::int64_t>(options.retry_after_max.count(), 0, UINT32_MAX);
      sleep_ms(std::min(failed->retry_after_ms, static_cast<std::uint32_t>(longest)));
    }
  }
  return error(last->kind(), last->message() + " (gave up after " +
                                 std::to_string(options.retries_max + 1) + " attempts)");
}

}  // namespace autosync::sdk
