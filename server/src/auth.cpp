#include "autosync/server/auth.hpp"

#include <jwt.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "autosync/base/utc_time.hpp"
#include "autosync/journal/journal.hpp"

namespace autosync::server {

namespace {

constexpr std::size_t token_bytes_max = 16 * 1024;  // a JWT is a few hundred bytes
constexpr std::size_t secret_bytes_min = 32;        // HS256 secrets shorter than this are guessable

struct jwt_free_deleter {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_free_deleter>;

jwt_alg_t to_jwt(token_algorithm algorithm) {
  switch (algorithm) {
    case token_algorithm::hs256: return JWT_ALG_HS256;
    case token_algorithm::rs256: return JWT_ALG_RS256;
    case token_algorithm::es256: return JWT_ALG_ES256;
  }
  return JWT_ALG_INVAL;
}

error refused(const std::string& why) {
  return error(error_kind::unauthenticated, "token refused: " + why);
}

std::string utc(std::int64_t seconds) { return format_utc(seconds * 1000000); }

// A numeric claim, or nothing when absent.
std::optional<long> int_claim(jwt_t* jwt, const char* name) {
  errno = 0;
  const long value = jwt_get_grant_int(jwt, name);
  if (errno == ENOENT || errno == EINVAL) return std::nullopt;
  return value;
}

bool audience_matches(jwt_t* jwt, const std::string& wanted) {
  if (const char* single = jwt_get_grant(jwt, "aud")) return wanted == single;
  char* json = jwt_get_grants_json(jwt, "aud");  // an array of audiences
  if (json == nullptr) return false;
  const auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  std::free(json);
  if (!parsed.is_array()) return false;
  for (const auto& a : parsed) {
    if (a.is_string() && a.get<std::string>() == wanted) return true;
  }
  return false;
}

// The last second a token expiring at `exp` is accepted (identity::accepted_until).
std::int64_t accepted_until(const token_policy& policy, std::int64_t exp) {
  return exp + policy.leeway.count();
}

status check_times(const token_policy& policy, jwt_t* jwt, std::int64_t now) {
  const auto exp = int_claim(jwt, "exp");
  if (!exp) return refused("it has no expiry (exp): tokens must expire");
  const std::int64_t leeway = policy.leeway.count();
  if (now > accepted_until(policy, *exp)) {
    return refused("it expired at " + utc(*exp) + ": get a new token");
  }
  if (const auto nbf = int_claim(jwt, "nbf"); nbf && now + leeway < *nbf) {
    return refused("it is not valid before " + utc(*nbf));
  }
  const auto iat = int_claim(jwt, "iat");
  if (iat && *iat > now + leeway) return refused("it was issued in the future (" + utc(*iat) + ")");
  const std::int64_t start = iat ? *iat : now;
  if (*exp - start > policy.lifetime_max.count()) {
    return refused("it lives " + std::to_string(*exp - start) + " s, longer than the " +
                   std::to_string(policy.lifetime_max.count()) + " s allowed");
  }
  return status::ok();
}

result<std::string> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return error(error_kind::not_found, "cannot read " + file.string() + ": check the path");
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

result<token_policy> policy_from_secret_file(const std::filesystem::path& file) {
  auto text = read_file(file);
  if (!text) return std::move(text).err();
  std::string secret = std::move(text).value();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < secret_bytes_min) {
    return error(error_kind::invalid, "the JWT secret in " + file.string() + " has " +
                                          std::to_string(secret.size()) + " bytes; use at least " +
                                          std::to_string(secret_bytes_min) +
                                          " (e.g. `openssl rand -hex 32`)");
  }
  token_policy policy;
  policy.algorithm = token_algorithm::hs256;
  policy.key = std::move(secret);
  return policy;
}

result<token_policy> policy_from_public_key_file(const std::filesystem::path& file) {
  auto pem = read_file(file);
  if (!pem) return std::move(pem).err();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())),
                                                &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key) {
    return error(error_kind::invalid,
                 file.string() + " holds no PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
  }
  token_policy policy;
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA: policy.algorithm = token_algorithm::rs256; break;
    case EVP_PKEY_EC: policy.algorithm = token_algorithm::es256; break;
    default:
      return error(error_kind::invalid, file.string() + " is neither an RSA nor an EC public key");
  }
  policy.key = std::move(pem).value();
  return policy;
}

result<identity> verify_token(const token_policy& policy, std::string_view token,
                              std::int64_t now_s) {
  if (token.empty()) return refused("there is none: log in with a token");
  if (token.size() > token_bytes_max) return refused("it is longer than 16 KiB");
  const std::string text(token);
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, text.c_str(),
                            reinterpret_cast<const unsigned char*>(policy.key.data()),
                            static_cast<int>(policy.key.size()));
  jwt_ptr jwt(raw);
  if (rc != 0 || !jwt) return refused("it is malformed or its signature does not verify");
  // The signature verified under the algorithm the token names; accept only ours, or an
  // HS256 token "signed" with a public key (known to all) would pass.
  if (jwt_get_alg(jwt.get()) != to_jwt(policy.algorithm)) {
    return refused(std::string("it is signed with ") + jwt_alg_str(jwt_get_alg(jwt.get())) +
                   ", and this server accepts only " + jwt_alg_str(to_jwt(policy.algorithm)));
  }
  if (auto s = check_times(policy, jwt.get(), now_s); !s) return std::move(s).err();
  if (policy.issuer) {
    const char* iss = jwt_get_grant(jwt.get(), "iss");
    if (iss == nullptr || *policy.issuer != iss) {
      return refused("it was issued by " + std::string(iss ? iss : "nobody") + ", not " +
                     *policy.issuer);
    }
  }
  if (policy.audience && !audience_matches(jwt.get(), *policy.audience)) {
    return refused("it is not meant for " + *policy.audience + " (aud)");
  }
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (sub == nullptr) return refused("it names no user (sub)");
  if (auto s = journal::validate_user_id(sub); !s) return refused("its user (sub): " + s.err().message());
  identity who;
  who.user = sub;
  errno = 0;
  who.admin = jwt_get_grant_bool(jwt.get(), "autosync_admin") == 1 && errno == 0;
  who.expires_at = *int_claim(jwt.get(), "exp");
  who.accepted_until = accepted_until(policy, who.expires_at);
  return who;
}

result<std::string> issue_token(token_algorithm algorithm, std::string_view key,
                                const token_request& request, std::int64_t now_s) {
  if (auto s = journal::validate_user_id(request.user); !s) return std::move(s).err();
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return error(error_kind::internal, "cannot create a token");
  jwt_ptr jwt(raw);
  bool ok = jwt_add_grant(jwt.get(), "sub", request.user.c_str()) == 0 &&
            jwt_add_grant_int(jwt.get(), "iat", now_s) == 0 &&
            jwt_add_grant_int(jwt.get(), "exp", now_s + request.ttl.count()) == 0;
  if (ok && request.admin) ok = jwt_add_grant_bool(jwt.get(), "autosync_admin", 1) == 0;
  if (ok && request.issuer) ok = jwt_add_grant(jwt.get(), "iss", request.issuer->c_str()) == 0;
  if (ok && request.audience) ok = jwt_add_grant(jwt.get(), "aud", request.audience->c_str()) == 0;
  if (ok) {
    ok = jwt_set_alg(jwt.get(), to_jwt(algorithm), reinterpret_cast<const unsigned char*>(key.data()),
                     static_cast<int>(key.size())) == 0;
  }
  char* encoded = ok ? jwt_encode_str(jwt.get()) : nullptr;
  if (encoded == nullptr) {
    return error(error_kind::invalid, "cannot sign the token: check the key matches the algorithm");
  }
  std::string out(encoded);
  std::free(encoded);  // libjwt 1.10 allocates with malloc and has no jwt_free_str
  return out;
}

}  // namespace autosync::server
