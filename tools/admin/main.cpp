// autosync-admin: operators' commands. So far: issuing development tokens.
//   autosync-admin token issue --secret-file F --user U [--ttl 15m] [--admin]
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "autosync/base/utc_time.hpp"
#include "autosync/server/auth.hpp"

int main(int argc, char** argv) {
  CLI::App app{"AutoSync administration"};
  app.require_subcommand(1);
  auto* token = app.add_subcommand("token", "bearer tokens");
  token->require_subcommand(1);
  auto* issue = token->add_subcommand(
      "issue", "print an HS256 token for development setups (production: your OIDC provider)");
  std::string secret_file, user, ttl_text = "15m", issuer, audience;
  bool admin = false;
  issue->add_option("--secret-file", secret_file, "the server's --jwt-secret-file")->required();
  issue->add_option("--user", user, "the user the token is for (its sub)")->required();
  issue->add_option("--ttl", ttl_text, "lifetime: 90s, 15m, 2h, 1d (default 15m; at most 24h)");
  issue->add_option("--issuer", issuer, "iss claim, if the server checks one");
  issue->add_option("--audience", audience, "aud claim, if the server checks one");
  issue->add_flag("--admin", admin, "allow the admin API");
  CLI11_PARSE(app, argc, argv);

  const auto ttl = autosync::parse_duration(ttl_text);
  if (!ttl) {
    std::cerr << "autosync-admin: --ttl wants a number and a unit (ms, s, m, h, d), like 15m, not \""
              << ttl_text << "\"\n";
    return 2;
  }
  // autosyncd refuses a token that lives longer than this at every login: issuing one would
  // only hand out a token that never works.
  const auto lifetime_max = autosync::server::token_policy{}.lifetime_max;
  if (*ttl > lifetime_max) {
    const auto hours = std::to_string(lifetime_max / std::chrono::hours(1)) + "h";
    std::cerr << "autosync-admin: --ttl " << ttl_text << " is longer than the " << hours
              << " autosyncd accepts (it refuses longer-lived tokens at login, and has no flag "
                 "to raise that): issue a token of at most "
              << hours << ", and a new one when it expires\n";
    return 2;
  }
  auto policy = autosync::server::policy_from_secret_file(secret_file);
  if (!policy) {
    std::cerr << "autosync-admin: " << policy.err().to_string() << "\n";
    return 2;
  }
  autosync::server::token_request request;
  request.user = user;
  request.ttl = std::chrono::ceil<std::chrono::seconds>(*ttl);
  request.admin = admin;
  if (!issuer.empty()) request.issuer = issuer;
  if (!audience.empty()) request.audience = audience;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto issued = autosync::server::issue_token(policy->algorithm, policy->key, request, now);
  if (!issued) {
    std::cerr << "autosync-admin: " << issued.err().to_string() << "\n";
    return 1;
  }
  std::cout << *issued << "\n";
  return 0;
}
