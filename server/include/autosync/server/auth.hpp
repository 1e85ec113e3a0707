// Bearer tokens: JWTs verified with libjwt. HS256 with a shared secret for small setups;
// RS256 or ES256 with the public key of an OIDC provider (Keycloak and the like).
//
// A token is accepted only if: it is signed with exactly the configured algorithm and key
// ("alg": "none" and algorithm switches are refused), it has `exp` and is not expired
// (beyond a small leeway), it lives no longer than the configured maximum (`exp` - `iat`),
// `iss` and `aud` match when configured, and `sub` names a valid user id. The clock is the
// caller's: this code reads none.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "autosync/base/error.hpp"

namespace autosync::server {

enum class token_algorithm { hs256, rs256, es256 };

struct token_policy {
  token_algorithm algorithm = token_algorithm::hs256;
  // HS256: the shared secret. RS256/ES256: the provider's public key, PEM.
  std::string key;
  std::optional<std::string> issuer;    // required `iss` when set
  std::optional<std::string> audience;  // required among `aud` when set
  // Long-lived bearer tokens are stolen bearer tokens: refuse what lives longer than this.
  std::chrono::seconds lifetime_max{std::chrono::hours(24)};
  // Clocks of issuer and server disagree a little; a minute covers NTP-synced machines.
  std::chrono::seconds leeway{60};
};

// HS256 from a secret file (its bytes, a trailing newline dropped), or RS256/ES256 from a
// PEM public key file (the algorithm follows the key's type).
result<token_policy> policy_from_secret_file(const std::filesystem::path& file);
result<token_policy> policy_from_public_key_file(const std::filesystem::path& file);

struct identity {
  std::string user;             // the token's `sub`
  bool admin = false;           // the `autosync_admin` claim
  std::int64_t expires_at = 0;  // `exp`, seconds since 1970
  // The last second the token is accepted: `exp` plus the policy's leeway. A session opened
  // with it lasts until then, so login never accepts a token its session would refuse.
  std::int64_t accepted_until = 0;
};

// Verifies a token at time `now_s` (seconds since 1970). Every refusal is `unauthenticated`
// and says why ("expired at ...: get a new token").
result<identity> verify_token(const token_policy& policy, std::string_view token,
                              std::int64_t now_s);

struct token_request {
  std::string user;
  std::chrono::seconds ttl{std::chrono::minutes(15)};
  bool admin = false;
  std::optional<std::string> issuer;
  std::optional<std::string> audience;
};

// Issues a token: HS256 with a shared secret (development setups: `autosync-admin token
// issue`), RS256/ES256 with a PEM private key (tests standing in for an OIDC provider).
result<std::string> issue_token(token_algorithm algorithm, std::string_view key,
                                const token_request& request, std::int64_t now_s);

}  // namespace autosync::server
