// The per-user token buckets, driven by a clock the test moves.
#define BOOST_TEST_MODULE rate_limiter
#include <boost/test/unit_test.hpp>

#include "rate_limiter.hpp"

using autosync::server::rate_limiter;

BOOST_AUTO_TEST_CASE(a_user_gets_the_burst_then_waits_for_the_refill) {
  rate_limiter limits(10, 20);  // 10/s, burst 20
  for (int i = 0; i < 20; ++i) BOOST_TEST(limits.admit("alice", 0) == 0u);
  const auto wait_ms = limits.admit("alice", 0);
  BOOST_TEST(wait_ms >= 100u);  // one token takes 100 ms at 10/s
  BOOST_TEST(wait_ms <= 101u);
  BOOST_TEST(limits.admit("bob", 0) == 0u);  // users do not share a bucket
  BOOST_TEST(limits.admit("alice", 100000) == 0u);  // 100 ms later: one more
  BOOST_TEST(limits.admit("alice", 100000) > 0u);
}

BOOST_AUTO_TEST_CASE(full_buckets_are_forgotten_so_memory_stays_bounded) {
  rate_limiter limits(1000, 1000);
  for (int u = 0; u < 100000; ++u) limits.admit("user" + std::to_string(u), 0);
  BOOST_TEST(limits.users() == 100000u);
  // Ten seconds later every bucket has refilled: the next new user clears them.
  limits.admit("late", 10000000);
  BOOST_TEST(limits.users() == 1u);
  // A bucket still short of full is kept.
  rate_limiter busy(1, 2);
  busy.admit("spender", 0);
  busy.admit("spender", 0);
  for (int u = 0; u < 100000; ++u) busy.admit("idle" + std::to_string(u), 0);
  busy.admit("one-more", 0);
  BOOST_TEST(busy.users() >= 2u);
  BOOST_TEST(busy.admit("spender", 0) > 0u);  // still out of tokens, not reset
}
