#define BOOST_TEST_MODULE server_auth
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <fstream>
#include <memory>

#include "autosync/server/auth.hpp"
#include "printers.hpp"
#include "temp_dir.hpp"

using namespace autosync;
using namespace autosync::server;

namespace {

constexpr std::int64_t now = 1800000000;  // the tests' clock
const std::string secret(40, 's');

token_policy hs256_policy() {
  token_policy p;
  p.algorithm = token_algorithm::hs256;
  p.key = secret;
  return p;
}

std::string hs256(token_request r, std::int64_t at = now) {
  auto t = issue_token(token_algorithm::hs256, secret, r, at);
  BOOST_REQUIRE_MESSAGE(t, test::describe(t));
  return *t;
}

token_request alice(std::chrono::seconds ttl = std::chrono::minutes(15)) {
  token_request r;
  r.user = "alice";
  r.ttl = ttl;
  return r;
}

// A fresh key pair as PEM: {private, public}.
std::pair<std::string, std::string> key_pair(bool rsa) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"), &EVP_PKEY_free);
  BOOST_REQUIRE(key);
  auto pem = [](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    BOOST_REQUIRE(write(bio.get()) == 1);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
  };
  return {pem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); }),
          pem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key.get()); })};
}

void refused(const result<identity>& r, const std::string& why) {
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::unauthenticated);
  BOOST_TEST(r.err().message().find(why) != std::string::npos, r.err().message());
}

std::string base64url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

// A token with exactly these claims, properly HS256-signed with the test secret.
std::string signed_claims(const std::string& claims_json) {
  const std::string input = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims_json);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url(std::string(reinterpret_cast<char*>(mac), len));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_valid_hs256_token_names_its_user) {
  token_request r = alice();
  r.admin = true;
  auto who = verify_token(hs256_policy(), hs256(r), now + 60);
  BOOST_REQUIRE_MESSAGE(who, test::describe(who));
  BOOST_TEST(who->user == "alice");
  BOOST_TEST(who->admin);
  BOOST_TEST(who->expires_at == now + 900);
  BOOST_TEST(!verify_token(hs256_policy(), hs256(alice()), now)->admin);
}

BOOST_AUTO_TEST_CASE(expired_tokens_are_refused_beyond_the_leeway) {
  const auto token = hs256(alice(std::chrono::seconds(600)));
  BOOST_TEST(verify_token(hs256_policy(), token, now + 600 + 30).has_value());  // within leeway
  BOOST_TEST(verify_token(hs256_policy(), token, now + 600 + 60).has_value());
  refused(verify_token(hs256_policy(), token, now + 600 + 61), "expired at");
}

// The session ends when login would refuse the token: its last second is the last one
// verify_token accepts.
BOOST_AUTO_TEST_CASE(a_token_is_accepted_until_exp_plus_the_leeway) {
  const auto token = hs256(alice(std::chrono::seconds(600)));
  auto who = verify_token(hs256_policy(), token, now);
  BOOST_REQUIRE_MESSAGE(who, test::describe(who));
  BOOST_TEST(who->accepted_until == now + 600 + 60);
  BOOST_TEST(verify_token(hs256_policy(), token, who->accepted_until).has_value());
  BOOST_TEST(!verify_token(hs256_policy(), token, who->accepted_until + 1).has_value());
}

BOOST_AUTO_TEST_CASE(tokens_living_longer_than_the_maximum_are_refused) {
  refused(verify_token(hs256_policy(), hs256(alice(std::chrono::hours(48))), now), "longer than");
}

BOOST_AUTO_TEST_CASE(a_wrong_signature_or_garbage_is_refused) {
  auto other = issue_token(token_algorithm::hs256, std::string(40, 'x'), alice(), now);
  BOOST_REQUIRE(other);
  refused(verify_token(hs256_policy(), *other, now), "signature");
  refused(verify_token(hs256_policy(), "not.a.token", now), "malformed");
  refused(verify_token(hs256_policy(), "", now), "log in");
  refused(verify_token(hs256_policy(), std::string(20000, 'a'), now), "16 KiB");
  auto tampered = hs256(alice());
  tampered[tampered.find('.') + 5] ^= 1;
  refused(verify_token(hs256_policy(), tampered, now), "signature");
}

BOOST_AUTO_TEST_CASE(alg_none_is_refused) {
  const std::string header = base64url(R"({"alg":"none","typ":"JWT"})");
  const std::string claims = base64url(R"({"sub":"alice","exp":1800000900,"iat":1800000000})");
  for (const auto& token : {header + "." + claims + ".", header + "." + claims}) {
    auto r = verify_token(hs256_policy(), token, now);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind() == error_kind::unauthenticated);
  }
}

BOOST_AUTO_TEST_CASE(tokens_without_expiry_or_with_a_bad_user_are_refused) {
  BOOST_TEST(verify_token(hs256_policy(), signed_claims(R"({"sub":"alice","exp":1800000900})"), now)
                 .has_value());  // the hand-made signing is right
  refused(verify_token(hs256_policy(), signed_claims(R"({"sub":"alice"})"), now), "no expiry");
  refused(verify_token(hs256_policy(), signed_claims(R"({"exp":1800000900})"), now), "no user");
  refused(verify_token(hs256_policy(), signed_claims(R"({"sub":"a\u0001b","exp":1800000900})"), now),
          "control character");
  refused(verify_token(hs256_policy(),
                       signed_claims(R"({"sub":"alice","exp":1800000900,"nbf":1800000500})"), now),
          "not valid before");
  refused(verify_token(hs256_policy(),
                       signed_claims(R"({"sub":"alice","exp":1800009000,"iat":1800008000})"), now),
          "issued in the future");
  token_request bad = alice();
  bad.user = "bad\nuser";
  BOOST_TEST(!issue_token(token_algorithm::hs256, secret, bad, now).has_value());
}

BOOST_AUTO_TEST_CASE(issuer_and_audience_are_checked_when_configured) {
  token_policy p = hs256_policy();
  p.issuer = "https://id.example";
  p.audience = "autosync";
  token_request r = alice();
  refused(verify_token(p, hs256(r), now), "issued by nobody");
  r.issuer = "https://id.example";
  refused(verify_token(p, hs256(r), now), "not meant for autosync");
  r.audience = "autosync";
  BOOST_TEST(verify_token(p, hs256(r), now).has_value());
  r.issuer = "https://evil.example";
  refused(verify_token(p, hs256(r), now), "evil");
}

BOOST_AUTO_TEST_CASE(rs256_and_es256_tokens_verify_with_the_providers_public_key) {
  for (bool rsa : {true, false}) {
    const auto [private_pem, public_pem] = key_pair(rsa);
    test::temp_dir dir;
    { std::ofstream(dir / "provider.pem") << public_pem; }
    auto policy = policy_from_public_key_file(dir / "provider.pem");
    BOOST_REQUIRE_MESSAGE(policy, test::describe(policy));
    BOOST_TEST((policy->algorithm == (rsa ? token_algorithm::rs256 : token_algorithm::es256)));
    auto token = issue_token(policy->algorithm, private_pem, alice(), now);
    BOOST_REQUIRE_MESSAGE(token, test::describe(token));
    auto who = verify_token(*policy, *token, now);
    BOOST_REQUIRE_MESSAGE(who, test::describe(who));
    BOOST_TEST(who->user == "alice");

    // The classic confusion: an HS256 token "signed" with the public key, which anyone has.
    auto forged = issue_token(token_algorithm::hs256, public_pem, alice(), now);
    BOOST_REQUIRE(forged);
    refused(verify_token(*policy, *forged, now), "accepts only");
  }
}

BOOST_AUTO_TEST_CASE(key_files_are_checked_with_clear_errors) {
  test::temp_dir dir;
  { std::ofstream(dir / "short") << "tooshort\n"; }
  auto short_secret = policy_from_secret_file(dir / "short");
  BOOST_REQUIRE(!short_secret);
  BOOST_TEST(short_secret.err().message().find("at least 32") != std::string::npos);
  { std::ofstream(dir / "good") << secret << "\n"; }
  auto good = policy_from_secret_file(dir / "good");
  BOOST_REQUIRE(good);
  BOOST_TEST(good->key == secret);  // the newline is not part of it
  auto missing = policy_from_secret_file(dir / "missing");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.err().kind() == error_kind::not_found);
  auto not_pem = policy_from_public_key_file(dir / "good");
  BOOST_REQUIRE(!not_pem);
  BOOST_TEST(not_pem.err().message().find("PEM") != std::string::npos);
}
