#define BOOST_TEST_MODULE server_retention_schedule
#include <boost/test/unit_test.hpp>

#include "retention.hpp"
#include "retention_schedule.hpp"

using namespace autosync::server;

namespace {
constexpr std::int64_t second = 1000000;
}

BOOST_AUTO_TEST_CASE(a_user_is_due_once_per_interval_with_the_cutoff_now_minus_retention) {
  retention_schedule schedule(std::chrono::hours(24));  // checked hourly (24 h / 24)
  const std::int64_t t0 = 1800000000 * second;
  auto first = schedule.due("alice", t0);
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(*first == t0 - 86400 * second);
  BOOST_TEST(!schedule.due("alice", t0 + 3599 * second).has_value());
  BOOST_TEST(schedule.due("bob", t0 + 10 * second).has_value());  // each user on its own
  auto later = schedule.due("alice", t0 + 3600 * second);
  BOOST_REQUIRE(later.has_value());
  BOOST_TEST(*later == t0 + 3600 * second - 86400 * second);
}

BOOST_AUTO_TEST_CASE(intervals_stay_between_a_second_and_an_hour) {
  retention_schedule shortest(std::chrono::seconds(2));
  BOOST_TEST(shortest.due("a", 0).has_value());
  BOOST_TEST(!shortest.due("a", second - 1).has_value());
  BOOST_TEST(shortest.due("a", second).has_value());
  retention_schedule longest(std::chrono::hours(24 * 365));
  BOOST_TEST(longest.due("a", 0).has_value());
  BOOST_TEST(!longest.due("a", 3599 * second).has_value());
  BOOST_TEST(longest.due("a", 3600 * second).has_value());
}

BOOST_AUTO_TEST_CASE(zero_retention_is_never_due) {
  retention_schedule off(std::chrono::seconds(0));
  BOOST_TEST(!off.due("a", 0).has_value());
  BOOST_TEST(off.users() == 0u);
}

BOOST_AUTO_TEST_CASE(memory_stays_bounded_however_many_users_call) {
  retention_schedule schedule(std::chrono::hours(24));
  for (std::size_t u = 0; u < retention_schedule::users_max + 10; ++u) {
    BOOST_TEST_REQUIRE(schedule.due("user" + std::to_string(u), 0).has_value());
  }
  BOOST_TEST(schedule.users() <= retention_schedule::users_max);
  // Forgotten users are simply due again.
  BOOST_TEST(schedule.due("user0", 1).has_value());
}

// The sweep visits every user daily, more often for a short retention, never more than
// once a second.
BOOST_AUTO_TEST_CASE(the_sweep_comes_daily_or_every_twenty_fourth_of_the_retention) {
  using namespace std::chrono;
  BOOST_TEST(sweep_interval(hours(24 * 30)).count() == milliseconds(hours(24)).count());
  BOOST_TEST(sweep_interval(hours(48)).count() == milliseconds(hours(2)).count());
  BOOST_TEST(sweep_interval(seconds(2)).count() == milliseconds(seconds(1)).count());
}
