// Tokens for the servers tests start (server_process writes this secret).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "autosync/server/auth.hpp"

namespace autosync::test {

inline std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The HS256 secret server_process gives every test server.
inline std::string test_secret() { return std::string(48, 's'); }

// A token for `user` from the test servers' secret, issued at `issued_at_s` (default now).
inline std::string token_for(const std::string& user,
                             std::chrono::seconds ttl = std::chrono::hours(1),
                             std::int64_t issued_at_s = unix_now_s()) {
  server::token_request r;
  r.user = user;
  r.ttl = ttl;
  auto t = server::issue_token(server::token_algorithm::hs256, test_secret(), r, issued_at_s);
  if (!t) throw std::runtime_error(t.err().to_string());
  return *t;
}

}  // namespace autosync::test
