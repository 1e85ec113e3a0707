#define BOOST_TEST_MODULE server_reply_doorbell
#include <boost/test/unit_test.hpp>

#include <kj/async-io.h>
#include <kj/vector.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "rpc_context.hpp"

using namespace autosync::server;

BOOST_AUTO_TEST_CASE(answers_posted_together_share_one_wakeup_and_arrive_in_order) {
  auto io = kj::setupAsyncIo();
  reply_doorbell doorbell;
  auto running = doorbell.run().eagerlyEvaluate(nullptr);
  BOOST_TEST(reply_doorbell::current() == &doorbell);

  constexpr int count = 1000;
  kj::Vector<kj::Promise<int>> promises;
  std::vector<std::function<void(int)>> fulfils;
  for (int i = 0; i < count; ++i) {
    auto reply = make_cross_thread_reply<int>();
    promises.add(kj::mv(reply.promise));
    fulfils.push_back(std::move(reply.fulfil));
  }
  // All answered from another thread before the loop runs again: one wake-up for all.
  std::thread([&] {
    for (int i = 0; i < count; ++i) fulfils[i](i * 3);
  }).join();
  auto values = kj::joinPromises(promises.releaseAsArray()).wait(io.waitScope);
  for (int i = 0; i < count; ++i) BOOST_TEST(values[i] == i * 3);
  BOOST_TEST(doorbell.wakeups() == 1u);

  // One at a time, each waited for: one wake-up each.
  for (int i = 0; i < 3; ++i) {
    auto reply = make_cross_thread_reply<int>();
    std::thread([f = reply.fulfil] { f(7); }).join();
    BOOST_TEST(reply.promise.wait(io.waitScope) == 7);
  }
  BOOST_TEST(doorbell.wakeups() == 4u);
}

BOOST_AUTO_TEST_CASE(a_reply_dropped_unanswered_fails_its_promise_on_the_loop) {
  auto io = kj::setupAsyncIo();
  reply_doorbell doorbell;
  auto running = doorbell.run().eagerlyEvaluate(nullptr);
  auto reply = make_cross_thread_reply<std::string>();
  // Dropped on another thread, as a pool task that never ran would be.
  std::thread([f = std::move(reply.fulfil)]() mutable { f = nullptr; }).join();
  BOOST_CHECK_THROW(reply.promise.wait(io.waitScope), kj::Exception);
}

BOOST_AUTO_TEST_CASE(answers_to_cancelled_calls_and_to_a_closed_loop_do_nothing) {
  auto io = kj::setupAsyncIo();
  std::function<void(int)> late;
  {
    reply_doorbell doorbell;
    auto running = doorbell.run().eagerlyEvaluate(nullptr);
    {
      auto cancelled = make_cross_thread_reply<int>();
      late = cancelled.fulfil;
      auto other = make_cross_thread_reply<int>();
      cancelled.promise = nullptr;  // the call went away (deadline, disconnect)
      std::thread([&] {
        cancelled.fulfil(1);
        other.fulfil(2);
      }).join();
      BOOST_TEST(other.promise.wait(io.waitScope) == 2);
    }
    auto after_close = make_cross_thread_reply<int>();
    late = after_close.fulfil;
    after_close.promise = nullptr;
  }
  BOOST_TEST(reply_doorbell::current() == nullptr);
  // The loop's doorbell is gone: the answer is dropped, on this thread, harmlessly.
  std::thread([&] { late(3); }).join();
}

BOOST_AUTO_TEST_CASE(without_a_doorbell_replies_still_cross_threads) {
  auto io = kj::setupAsyncIo();
  BOOST_TEST(reply_doorbell::current() == nullptr);
  auto reply = make_cross_thread_reply<int>();
  std::thread([f = reply.fulfil] { f(11); }).join();
  BOOST_TEST(reply.promise.wait(io.waitScope) == 11);
}
