// How a subscription keeps order without holding up the user's actor: the actor's
// subscriber callback only appends the change to a queue and wakes the event loop; the
// event loop sends the queue to the listener, one batch at a time (calls on one capability
// arrive in the order sent). Catching up: the subscriber is registered first, then a read
// through the actor learns the head H at that moment; changes up to H come from the
// journal, everything after H from the queue.
#include "subscription.hpp"

#include <mutex>
#include <optional>

#include "wire.hpp"

namespace autosync::server {

namespace rpc = schema::rpc;

namespace {

// A slow listener must not grow the server's memory without bound.
constexpr std::size_t queued_changes_max = 10000;
constexpr std::size_t catch_up_page = 1000;

// Shared between the user's actor (producer) and the event loop (consumer).
struct change_queue {
  std::mutex mutex;
  std::deque<actors::change> changes;
  std::function<void(bool)> wake;  // armed by the event loop; called once, outside the lock
  bool overflowed = false;
  bool closed = false;

  void push(actors::change c) {
    std::function<void(bool)> to_call;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (closed) return;
      if (changes.size() >= queued_changes_max) {
        overflowed = true;
      } else {
        changes.push_back(std::move(c));
      }
      to_call = std::move(wake);
      wake = nullptr;
    }
    if (to_call) to_call(true);
  }
};

class subscription_impl final : public rpc::Subscription::Server {
public:
  subscription_impl(rpc_context& ctx, subscription_target target, rpc::ChangeListener::Client l)
      : ctx_(ctx), target_(std::move(target)), listener_(kj::mv(l)),
        queue_(std::make_shared<change_queue>()), id_(ctx.next_subscription_id++) {
    auto q = queue_;
    const auto cursor = target_.cursor;
    ctx_.users.subscribe(target_.user, id_,
                         [q, cursor](std::uint64_t seq, schema::Event::Reader event) {
                           if (seq <= cursor) return;
                           if (auto c = actors::change_of(seq, event)) q->push(std::move(*c));
                         });
    if (target_.connection) ++target_.connection->subscriptions;
    const auto now_s = now_us() / 1000000;
    const auto left_s = target_.ends_at_s > now_s ? target_.ends_at_s - now_s : 0;
    auto expired = ctx_.timer.afterDelay(left_s * kj::SECONDS).then([] {
      return error(error_kind::unauthenticated,
                   "the session's token expired: log in with a new token and subscribe again");
    });
    running_ = start()
                   .then([] { return error(error_kind::internal, "the subscription stopped"); })
                   .exclusiveJoin(kj::mv(expired))
                   .then([this](error why) { end(std::move(why)); },
                         [this](kj::Exception&& e) {
                           // A listener that fails is gone: nobody to tell. Falling behind,
                           // or the user's history not being readable, is told.
                           if (failure_) {
                             end(std::move(*failure_));
                           } else if (e.getType() == kj::Exception::Type::OVERLOADED) {
                             end(error(error_kind::overloaded,
                                       "the listener fell more than 10,000 changes behind: "
                                       "subscribe again from the last change received"));
                           } else {
                             stop();
                           }
                         })
                   .eagerlyEvaluate(nullptr);
  }

  ~subscription_impl() noexcept(false) {
    stop();
    if (target_.connection) --target_.connection->subscriptions;
  }

private:
  kj::Promise<std::uint64_t> head();
  kj::Promise<void> start();
  kj::Promise<void> catch_up(std::uint64_t from, std::uint64_t to);
  kj::Promise<void> deliver(std::uint64_t after);
  kj::Promise<void> send(std::vector<actors::change> batch);

  // The server ends it: no more changes, and the listener is told why.
  void end(error why) {
    stop();
    auto request = listener_.endedRequest();
    to_wire(why, request.initFailure());
    notice_ = request.send().ignoreResult().eagerlyEvaluate([](kj::Exception&&) {});
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard<std::mutex> lock(queue_->mutex);
      queue_->closed = true;
      queue_->wake = nullptr;
    }
    ctx_.users.unsubscribe(target_.user, id_);
  }

  rpc_context& ctx_;
  subscription_target target_;
  rpc::ChangeListener::Client listener_;
  std::shared_ptr<change_queue> queue_;
  std::uint64_t id_;
  bool stopped_ = false;
  kj::Promise<void> running_ = nullptr;
  // Why the server could not read what it was to deliver (the state or the store).
  std::optional<error> failure_;
  kj::Promise<void> notice_ = nullptr;  // the `ended` call, while it is on its way
};

kj::Promise<std::uint64_t> subscription_impl::head() {
  auto answer = make_cross_thread_reply<result<std::uint64_t>>();
  ctx_.users.read(target_.user, [fulfil = answer.fulfil](const actors::namespace_state* state,
                                                         const error* failed) {
    fulfil(state != nullptr ? result<std::uint64_t>(state->last_seq())
                            : result<std::uint64_t>(failed != nullptr ? *failed
                                                                       : error(error_kind::internal, "no state")));
  });
  return answer.promise.then([this](result<std::uint64_t> h) -> kj::Promise<std::uint64_t> {
    if (h) return *h;
    failure_ = std::move(h).err();
    return KJ_EXCEPTION(FAILED, failure_->to_string());
  });
}

kj::Promise<void> subscription_impl::start() {
  return head().then([this](std::uint64_t h) {
    return catch_up(target_.cursor, h).then([this, h] { return deliver(std::max(h, target_.cursor)); });
  });
}

kj::Promise<void> subscription_impl::catch_up(std::uint64_t from, std::uint64_t to) {
  if (from >= to) return kj::READY_NOW;
  auto answer = make_cross_thread_reply<result<actors::change_page>>();
  ctx_.pool.run([&store = ctx_.store, user = target_.user, from, fulfil = answer.fulfil] {
    fulfil(actors::changes_since(store, user, from, catch_up_page));
  });
  return answer.promise.then([this, to](result<actors::change_page> page) -> kj::Promise<void> {
    if (!page) {
      failure_ = std::move(page).err();
      return KJ_EXCEPTION(FAILED, failure_->to_string());
    }
    std::vector<actors::change> batch;
    for (auto& c : page->changes) {
      if (c.seq <= to) batch.push_back(std::move(c));
    }
    const auto next = std::min(page->cursor, to);
    const bool more = page->more && next < to;
    return send(std::move(batch)).then([this, next, to, more]() -> kj::Promise<void> {
      if (!more) return kj::READY_NOW;
      return catch_up(next, to);
    });
  });
}

kj::Promise<void> subscription_impl::deliver(std::uint64_t after) {
  std::vector<actors::change> batch;
  std::optional<cross_thread_reply<bool>> woken;  // only when there is nothing to send
  {
    std::lock_guard<std::mutex> lock(queue_->mutex);
    if (queue_->overflowed) {
      return KJ_EXCEPTION(OVERLOADED, "the listener fell too far behind; subscribe again");
    }
    while (!queue_->changes.empty()) {
      if (queue_->changes.front().seq > after) batch.push_back(std::move(queue_->changes.front()));
      queue_->changes.pop_front();
    }
    if (batch.empty()) {
      woken.emplace(make_cross_thread_reply<bool>());
      queue_->wake = woken->fulfil;
    }
  }
  if (woken) {
    return woken->promise.then([this, after](bool) { return deliver(after); });
  }
  const auto last = batch.back().seq;
  return send(std::move(batch)).then([this, last] { return deliver(last); });
}

kj::Promise<void> subscription_impl::send(std::vector<actors::change> batch) {
  auto sent = kj::heapArrayBuilder<kj::Promise<void>>(batch.size());
  for (const auto& c : batch) {
    auto request = listener_.changedRequest();
    to_wire(c, request.initChange());
    sent.add(request.send().ignoreResult());
  }
  return kj::joinPromises(sent.finish());
}

}  // namespace

kj::Own<rpc::Subscription::Server> make_subscription(rpc_context& ctx,
                                                     subscription_target target,
                                                     rpc::ChangeListener::Client listener) {
  return kj::heap<subscription_impl>(ctx, std::move(target), kj::mv(listener));
}

}  // namespace autosync::server
