// autosync-admin token issue, run as a process; its tokens verified as the server will.
#define BOOST_TEST_MODULE admin_tool
#include <boost/test/unit_test.hpp>


#include <chrono>
#include <fstream>

#include "autosync/server/auth.hpp"
#include "printers.hpp"
#include "temp_dir.hpp"
#include "test_data.hpp"

using namespace autosync;

namespace {

std::pair<int, std::string> run(const std::string& args) {
  auto r = test::run_process(AUTOSYNC_ADMIN_BIN, args);
  return {r.exit_code, r.output};
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

BOOST_AUTO_TEST_CASE(issued_tokens_verify_with_the_same_secret_and_say_their_lifetime) {
  test::temp_dir dir;
  { std::ofstream(dir / "jwt.secret") << std::string(64, 'k') << "\n"; }
  auto [code, out] = run("token issue --secret-file " + (dir / "jwt.secret").string() +
                         " --user alice --ttl 2h --admin");
  BOOST_REQUIRE_MESSAGE(code == 0, out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  auto policy = server::policy_from_secret_file(dir / "jwt.secret");
  BOOST_REQUIRE(policy);
  auto who = server::verify_token(*policy, out, now_s());
  BOOST_REQUIRE_MESSAGE(who, test::describe(who));
  BOOST_TEST(who->user == "alice");
  BOOST_TEST(who->admin);
  BOOST_TEST(who->expires_at - now_s() > 7000);
  BOOST_TEST(who->expires_at - now_s() <= 7200);
}

BOOST_AUTO_TEST_CASE(bad_arguments_get_errors_that_say_what_to_do) {
  test::temp_dir dir;
  { std::ofstream(dir / "short") << "abc\n"; }
  auto [ttl_code, ttl_out] = run("token issue --secret-file " + (dir / "short").string() +
                                 " --user alice --ttl soon");
  BOOST_TEST(ttl_code != 0);
  BOOST_TEST(ttl_out.find("like 15m") != std::string::npos, ttl_out);
  auto [short_code, short_out] = run("token issue --secret-file " + (dir / "short").string() +
                                     " --user alice");
  BOOST_TEST(short_code != 0);
  BOOST_TEST(short_out.find("at least 32") != std::string::npos, short_out);
  auto [missing_code, missing_out] = run("token issue --user alice");
  BOOST_TEST(missing_code != 0);
  BOOST_TEST(missing_out.find("secret-file") != std::string::npos, missing_out);
}

// The server refuses a token living longer than its maximum (24 h) at every login: the tool
// refuses to issue one rather than print a token that never works.
BOOST_AUTO_TEST_CASE(a_ttl_beyond_the_servers_maximum_is_refused) {
  test::temp_dir dir;
  { std::ofstream(dir / "jwt.secret") << std::string(64, 'k') << "\n"; }
  const auto issue = "token issue --secret-file " + (dir / "jwt.secret").string() + " --user alice";
  auto [long_code, long_out] = run(issue + " --ttl 25h");
  BOOST_TEST(long_code == 2);
  BOOST_TEST(long_out.find("--ttl 25h is longer than the 24h autosyncd accepts") !=
                 std::string::npos,
             long_out);
  BOOST_TEST(long_out.find("eyJ") == std::string::npos, long_out);  // no token printed
  auto [day_code, day_out] = run(issue + " --ttl 24h");
  BOOST_REQUIRE_MESSAGE(day_code == 0, day_out);
  while (!day_out.empty() && day_out.back() == '\n') day_out.pop_back();
  auto policy = server::policy_from_secret_file(dir / "jwt.secret");
  BOOST_REQUIRE(policy);
  auto who = server::verify_token(*policy, day_out, now_s());
  BOOST_TEST(who.has_value(), test::describe(who));
}
