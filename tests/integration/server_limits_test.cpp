// A real autosyncd against clients that misbehave: garbage and oversized messages on the
// socket, too many requests, oversized chunks; and TLS.
#define BOOST_TEST_MODULE server_limits
#include <arpa/inet.h>
#include <capnp/any.h>
#include <capnp/rpc-twoparty.h>
#include <fcntl.h>
#include <kj/async-io.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "autosync/schema/sync.capnp.h"
#include "autosync/sdk/client.hpp"
#include "autosync/server/auth.hpp"
#include "printers.hpp"
#include "server_process.hpp"
#include "small_tmpfs.hpp"
#include "temp_dir.hpp"
#include "test_data.hpp"
#include "tokens.hpp"

using namespace autosync;

namespace {

result<std::unique_ptr<sdk::client>> connect(const std::string& address, int retries = 4,
                                             std::optional<std::filesystem::path> ca = {}) {
  sdk::connect_options o;
  o.server = address;
  o.token = test::token_for("alice");
  o.device_id = "d";
  o.retries_max = retries;
  o.tls_ca_file = std::move(ca);
  if (o.tls_ca_file) o.tls_server_name = "localhost";
  return sdk::client::connect(o);
}

// A plain TCP connection to HOST:PORT.
int raw_connect(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

// Whether the server closes the connection within `ms` (reads until EOF or error).
bool closed_by_server(int fd, int ms) {
  char buf[4096];
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    if (::read(fd, buf, sizeof(buf)) <= 0) return true;
  }
  return false;
}

// A logged-in session over raw RPC, for what the SDK would never send (or would retry).
struct raw_session {
  explicit raw_session(const std::string& server)
      : io(kj::setupAsyncIo()),
        stream(io.provider->getNetwork().parseAddress(server).wait(io.waitScope)->connect().wait(
            io.waitScope)),
        rpc(*stream) {
    auto login = rpc.bootstrap().castAs<schema::rpc::Gateway>().loginRequest();
    login.setToken(test::token_for("alice"));
    login.setDeviceId("d");
    login.setProtocolVersion(schema::rpc::PROTOCOL_VERSION);
    session = login.send().wait(io.waitScope).getSession();
  }
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient rpc;
  schema::rpc::Session::Client session = nullptr;
};

// A listener that takes every change and does nothing with it.
class idle_listener final : public schema::rpc::ChangeListener::Server {};

capnp::Data::Reader data_of(const std::string& bytes) {
  return {reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_connection_holds_at_most_16_subscriptions) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  raw_session raw(server.address());
  std::vector<schema::rpc::Subscription::Client> held;
  for (int i = 0; i < 16; ++i) {
    auto request = raw.session.subscribeRequest();
    request.setListener(kj::heap<idle_listener>());
    auto reply = request.send().wait(raw.io.waitScope);
    BOOST_REQUIRE_MESSAGE(!reply.hasFailure(), "subscription " << i);
    held.push_back(reply.getSubscription());
  }
  auto request = raw.session.subscribeRequest();
  request.setListener(kj::heap<idle_listener>());
  auto refused = request.send().wait(raw.io.waitScope);
  BOOST_REQUIRE(refused.hasFailure());
  BOOST_TEST((refused.getFailure().getKind() == schema::rpc::Failure::Kind::TOO_LARGE));
  // Dropping one frees its place.
  held.pop_back();
  raw.session.listRequest().send().wait(raw.io.waitScope);  // the release has gone through
  auto again = raw.session.subscribeRequest();
  again.setListener(kj::heap<idle_listener>());
  BOOST_TEST(!again.send().wait(raw.io.waitScope).hasFailure());
}

BOOST_AUTO_TEST_CASE(garbage_and_oversized_messages_end_only_their_connection) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  auto good = connect(server.address());
  BOOST_REQUIRE_MESSAGE(good.has_value(), test::describe(good));
  BOOST_REQUIRE((*good)->put_bytes("kept", "/kept.txt"));

  int garbage = raw_connect(server.address());
  const auto junk = test::random_bytes(64 << 10, 3);
  (void)!::write(garbage, junk.data(), junk.size());
  BOOST_TEST(closed_by_server(garbage, 3000));
  ::close(garbage);

  // A frame header announcing one segment of 64 MiB: refused on the header, unread.
  int big = raw_connect(server.address());
  const std::uint32_t header[2] = {0, (64u << 20) / 8};
  (void)!::write(big, header, sizeof(header));
  BOOST_TEST(closed_by_server(big, 3000));
  ::close(big);

  auto still = (*good)->get_bytes("/kept.txt");
  BOOST_REQUIRE_MESSAGE(still.has_value(), test::describe(still));
  BOOST_TEST(*still == "kept");
  auto fresh = connect(server.address());
  BOOST_REQUIRE(fresh.has_value());
  BOOST_TEST((*fresh)->list("/")->size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_oversized_chunk_is_too_large_and_stores_nothing) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  auto c = connect(server.address());
  BOOST_REQUIRE(c.has_value());
  // One 5 MiB chunk (the SDK never cuts one this large; a hand-made plan does).
  const auto data = test::random_bytes(5u << 20, 5);
  sdk::file_plan plan;
  plan.size = data.size();
  plan.hash = sha256(data);
  plan.chunks.push_back({plan.hash, static_cast<std::uint32_t>(data.size())});
  { std::ofstream(dir / "five", std::ios::binary) << data; }
  auto sent = (*c)->put_chunks(dir / "five", plan, {0});
  BOOST_REQUIRE(!sent);
  BOOST_TEST(sent.err().kind() == error_kind::too_large);
  auto missing = (*c)->missing_chunks({plan.hash});
  BOOST_REQUIRE(missing.has_value());
  BOOST_TEST(missing->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_user_beyond_the_rate_limit_is_told_when_to_retry) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server", {"--rate-limit", "5"});
  auto c = connect(server.address(), 0);
  BOOST_REQUIRE(c.has_value());
  std::optional<error> limited;
  for (int i = 0; i < 40 && !limited; ++i) {
    auto s = (*c)->list("/");
    if (!s) limited = s.err();
  }
  BOOST_REQUIRE(limited.has_value());
  BOOST_TEST(limited->kind() == error_kind::rate_limited);
  BOOST_TEST(limited->message().find("retry in") != std::string::npos);
}

// Failed logins from one address beyond a generous budget are answered rate limited and
// leave no audit line each; a valid token from the same address still logs in at once.
BOOST_AUTO_TEST_CASE(a_flood_of_failed_logins_from_one_address_is_rate_limited) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  int refused = 0, limited = 0;
  std::uint32_t retry_after = 0;
  {  // a raw connection, closed (with its event loop) before the SDK connects below
    auto io = kj::setupAsyncIo();
    auto stream = io.provider->getNetwork().parseAddress(server.address()).wait(io.waitScope)
                      ->connect().wait(io.waitScope);
    capnp::TwoPartyClient rpc(*stream);
    auto gateway = rpc.bootstrap().castAs<schema::rpc::Gateway>();
    for (int i = 0; i < 400 && limited == 0; ++i) {
      auto login = gateway.loginRequest();
      login.setToken("not a token");
      login.setDeviceId("d");
      login.setProtocolVersion(schema::rpc::PROTOCOL_VERSION);
      auto reply = login.send().wait(io.waitScope);
      BOOST_REQUIRE(reply.hasFailure());
      if (reply.getFailure().getKind() == schema::rpc::Failure::Kind::RATE_LIMITED) {
        ++limited;
        retry_after = reply.getFailure().getRetryAfterMs();
      } else {
        ++refused;
      }
    }
  }
  BOOST_TEST(limited == 1);
  BOOST_TEST(refused >= 200);  // the burst passed: an office behind one address is fine
  BOOST_TEST(retry_after > 0u);
  // The flood holds back nobody with a valid token, from the same address, right now.
  auto good = connect(server.address(), 0);
  BOOST_TEST(good.has_value(), test::describe(good));
  // Only the logins that were checked left audit lines. The log's lines are in the order
  // given, so once the valid login's line is in, every line of the flood is.
  const std::string log = server.audit_log_when(
      [](const std::string& l) { return l.find("\"action\":\"login\"") != std::string::npos; });
  BOOST_REQUIRE(log.find("\"action\":\"login\"") != std::string::npos);
  std::size_t lines = 0;
  for (auto at = log.find("login_failed"); at != std::string::npos; at = log.find("login_failed", at + 1)) {
    ++lines;
  }
  BOOST_TEST(lines == static_cast<std::size_t>(refused));
}

namespace {

// A server that answers every list with rateLimited and the longest wait the field holds
// (49 days): what a bug or a hostile server could send.
class stalling_session final : public schema::rpc::Session::Server {
public:
  explicit stalling_session(std::atomic<int>& calls) : calls_(calls) {}

protected:
  kj::Promise<void> list(ListContext context) override {
    ++calls_;
    auto failure = context.getResults().initFailure();
    failure.setKind(schema::rpc::Failure::Kind::RATE_LIMITED);
    failure.setMessage("too many requests");
    failure.setRetryAfterMs(UINT32_MAX);
    return kj::READY_NOW;
  }

private:
  std::atomic<int>& calls_;
};

class stalling_gateway final : public schema::rpc::Gateway::Server {
public:
  explicit stalling_gateway(std::atomic<int>& calls) : calls_(calls) {}

protected:
  kj::Promise<void> login(LoginContext context) override {
    auto results = context.getResults();
    results.setUser("alice");
    results.setExpiresAtS(test::unix_now_s() + 3600);
    results.setSession(kj::heap<stalling_session>(calls_));
    return kj::READY_NOW;
  }

private:
  std::atomic<int>& calls_;
};

// The stalling server on a thread of its own (its own event loop), on a free loopback port.
struct stalling_server {
  stalling_server() {
    std::promise<std::uint16_t> port;
    auto listening = port.get_future();
    thread = std::thread([this, port = std::move(port)]() mutable {
      auto io = kj::setupAsyncIo();
      auto stop_paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      capnp::TwoPartyServer server(kj::heap<stalling_gateway>(calls));
      auto address = io.provider->getNetwork().parseAddress("127.0.0.1:0").wait(io.waitScope);
      auto receiver = address->listen();
      auto serving = server.listen(*receiver);
      stop = kj::mv(stop_paf.fulfiller);
      port.set_value(static_cast<std::uint16_t>(receiver->getPort()));
      stop_paf.promise.exclusiveJoin(kj::mv(serving)).wait(io.waitScope);
    });
    address = "127.0.0.1:" + std::to_string(listening.get());
  }
  ~stalling_server() {
    stop->fulfill();
    thread.join();
  }
  std::atomic<int> calls{0};
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop;
  std::thread thread;
  std::string address;
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_sdk_waits_at_most_retry_after_max_however_long_the_server_asks) {
  stalling_server server;
  auto outcome = std::make_shared<std::promise<std::optional<error>>>();
  auto answered = outcome->get_future();
  // On a thread of its own: without the cap it would sleep for 49 days.
  std::thread client([outcome, address = server.address] {
    sdk::connect_options o;
    o.server = address;
    o.token = "any";
    o.device_id = "d";
    o.retries_max = 2;
    o.retry_after_max = std::chrono::milliseconds(200);
    auto c = sdk::client::connect(o);
    if (!c) return outcome->set_value(c.err());
    auto listed = (*c)->list("/");
    outcome->set_value(listed ? std::nullopt : std::optional<error>(listed.err()));
  });
  if (answered.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    client.detach();  // asleep in its retry: the process ends with it
    BOOST_FAIL("the client still waits after 20 s: retryAfterMs was not capped");
  }
  client.join();
  const auto failed = answered.get();
  BOOST_REQUIRE(failed.has_value());
  BOOST_TEST(failed->kind() == error_kind::rate_limited, failed->to_string());
  BOOST_TEST(server.calls == 3);  // the first attempt and two retries
  BOOST_TEST((sdk::connect_options{}.retry_after_max == std::chrono::seconds(60)));
}

BOOST_AUTO_TEST_CASE(tls_serves_clients_that_trust_the_certificate_and_refuses_plain_ones) {
  test::temp_dir dir;
  auto made = test::run_process(
      "openssl", "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                 "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
                     (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string());
  BOOST_REQUIRE_MESSAGE(made.exit_code == 0, made.output);
  test::server_process server(AUTOSYNCD_BIN, dir / "server",
                              {"--tls-cert", (dir / "cert.pem").string(), "--tls-key",
                               (dir / "key.pem").string()});
  auto secure = connect(server.address(), 0, dir / "cert.pem");
  BOOST_REQUIRE_MESSAGE(secure.has_value(), test::describe(secure));
  BOOST_REQUIRE((*secure)->put_bytes("over tls", "/tls.txt"));
  BOOST_TEST(*(*secure)->get_bytes("/tls.txt") == "over tls");
  auto plain = connect(server.address(), 0);
  BOOST_TEST(!plain.has_value());
}

BOOST_AUTO_TEST_CASE(a_config_file_carries_the_flags_and_sigterm_stops_cleanly) {
  test::temp_dir dir;
  { std::ofstream(dir / "autosyncd.toml") << "# the same names as the flags\nrate-limit = 5\n"; }
  test::server_process server(AUTOSYNCD_BIN, dir / "server",
                              {"--config", (dir / "autosyncd.toml").string()});
  auto c = connect(server.address(), 0);
  BOOST_REQUIRE(c.has_value());
  bool limited = false;
  for (int i = 0; i < 40 && !limited; ++i) limited = !(*c)->list("/");
  BOOST_TEST(limited);  // the file's rate limit, not the default 20,000/s
  c->reset();
  BOOST_TEST(server.stop() == 0);
  const auto out = server.output();
  BOOST_TEST(out.find("stopped cleanly") != std::string::npos, out);
}

// A key the server would drop (a typo, TOML's underscores, a [section]) is refused, naming
// the key and the file: dropped, it meant a default in its place, development mode instead
// of the JWT secret the operator wrote.
BOOST_AUTO_TEST_CASE(a_config_file_with_a_key_no_flag_has_is_refused_at_start) {
  test::temp_dir dir;
  { std::ofstream(dir / "secret") << std::string(48, 's') << "\n"; }
  const auto secret = (dir / "secret").string();
  const std::pair<std::string, std::string> cases[] = {
      {"jwt-secrete-file = " + secret + "\n", "unknown key \"jwt-secrete-file\""},
      {"jwt_secret_file = \"" + secret + "\"\n", "did you mean \"jwt-secret-file\"?"},
      {"[server]\njwt-secret-file = " + secret + "\n", "section [server]"},
      {"server.jwt-secret-file = " + secret + "\n", "key \"server.jwt-secret-file\""},
  };
  for (const auto& [text, hint] : cases) {
    const auto file = dir / "autosyncd.conf";
    { std::ofstream(file) << "rate-limit = 100\n" << text; }
    // Under `timeout`: a server that starts anyway would serve until killed.
    auto run = test::run_process("timeout 10 " + std::string(AUTOSYNCD_BIN),
                                 "--data-dir " + (dir / "d").string() +
                                     " --listen 127.0.0.1:0 --config " + file.string());
    BOOST_TEST(run.exit_code == 2, text);
    BOOST_TEST(run.output.find(hint) != std::string::npos, run.output);
    BOOST_TEST(run.output.find(file.string()) != std::string::npos, run.output);
    BOOST_TEST(run.output.find("the keys are the flags' names") != std::string::npos, run.output);
    BOOST_TEST(run.output.find("DEVELOPMENT MODE") == std::string::npos, run.output);
  }
}

// The server is built with jemalloc (a sixth less CPU per commit than glibc's malloc) and
// says which allocator serves it, so a build that lost it is seen at once.
BOOST_AUTO_TEST_CASE(the_server_allocates_with_jemalloc_and_says_so) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  const auto out = server.output();
  BOOST_TEST(out.find("memory allocator: jemalloc 5") != std::string::npos, out);
}

namespace {

// A server keeping deleted and replaced revisions for 2 s (its sweep visits every user
// each second), and a client of it.
struct short_retention {
  explicit short_retention(std::vector<std::string> more = {}) : server(start(dir, std::move(more))) {}
  static test::server_process start(const test::temp_dir& dir, std::vector<std::string> more) {
    more.insert(more.begin(), {"--retention", "2s"});
    return test::server_process(AUTOSYNCD_BIN, dir / "server", more);
  }
  test::temp_dir dir;
  test::server_process server;
  std::unique_ptr<sdk::client> client = [this] {
    auto c = connect(server.address(), 0);
    BOOST_REQUIRE_MESSAGE(c, test::describe(c));
    return std::move(c).value();
  }();
};

// The same without the sweep: only the user's own calls find retention due.
struct short_retention_no_sweep : short_retention {
  short_retention_no_sweep() : short_retention({"--retention-sweep", "off"}) {}
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(retention_reclaims_deletes_and_replaced_revisions_once_older_than_it,
                        short_retention) {
  auto& client = *this->client;
  BOOST_REQUIRE(client.put_bytes("gone", "/gone.txt"));
  BOOST_REQUIRE(client.remove("/gone.txt"));
  auto v1 = client.put_bytes("one", "/kept.txt");
  BOOST_REQUIRE(v1);
  sdk::put_options over;
  over.base_revision = v1->revision;
  BOOST_REQUIRE(client.put_bytes("two", "/kept.txt", over));
  // Within the retention both stay recoverable.
  BOOST_TEST(client.history("/gone.txt")->size() == 2u);
  BOOST_TEST(client.history("/kept.txt")->size() == 2u);

  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  // The next call finds the user's retention due; it runs first, in order with the calls.
  BOOST_REQUIRE(client.list("/"));
  auto gone = client.history("/gone.txt");
  BOOST_REQUIRE(!gone);
  BOOST_TEST(gone.err().kind() == error_kind::not_found);
  auto undeleted = client.undelete("/gone.txt");
  BOOST_REQUIRE(!undeleted);
  BOOST_TEST(undeleted.err().kind() == error_kind::not_found);
  auto kept = client.history("/kept.txt");
  BOOST_REQUIRE(kept);
  BOOST_REQUIRE_EQUAL(kept->size(), 1u);  // the newest revision always stays
  BOOST_TEST(*client.get_bytes("/kept.txt") == "two");
  // The chunks only the dropped revisions referred to are gone from the store (each of these
  // files is one chunk, named by its content's hash), and the audit log says so.
  auto missing = client.missing_chunks({sha256("gone"), sha256("one"), sha256("two")});
  BOOST_REQUIRE(missing);
  BOOST_TEST((*missing == std::vector<std::size_t>{0, 1}));
  // The session's check and the sweep may each have reclaimed part of it: add them up.
  const auto reclaimed = [](const std::string& log) {
    std::pair<std::uint64_t, std::uint64_t> sum{0, 0};
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"action\":\"reclaim\"") == std::string::npos) continue;
      unsigned long long c = 0, b = 0;
      const auto at = line.find("\"detail\":\"");
      if (at == std::string::npos ||
          std::sscanf(line.c_str() + at + 10, "%llu chunks, %llu bytes", &c, &b) != 2) {
        continue;
      }
      sum.first += c;
      sum.second += b;
    }
    return sum;
  };
  const auto [chunks, bytes] = reclaimed(
      server.audit_log_when([&](const std::string& log) { return reclaimed(log).first >= 2; }));
  BOOST_TEST(chunks == 2u);
  BOOST_TEST(bytes == 7u);
}

// A chunk the server said it had can be reclaimed before the commit that refers to it
// (no file used it for longer than the retention period). The put still succeeds: the SDK
// sends what the commit was refused for, and commits again.
BOOST_FIXTURE_TEST_CASE(a_put_succeeds_when_a_chunk_it_counted_on_is_reclaimed_before_its_commit,
                        short_retention_no_sweep) {
  auto& client = *this->client;
  BOOST_REQUIRE(client.put_bytes("content used again", "/first.txt"));
  BOOST_REQUIRE(client.remove("/first.txt"));
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  // No stat first (the base revision is given): the first call asks which chunks are
  // missing, is answered from the index at once, and finds retention due, which drops the
  // deleted file and then reclaims its chunk, ahead of the commit in the user's queue.
  sdk::put_options fresh;
  fresh.base_revision = 0;
  auto put = client.put_bytes("content used again", "/second.txt", fresh);
  BOOST_REQUIRE_MESSAGE(put, test::describe(put));
  auto back = client.get_bytes("/second.txt");
  BOOST_REQUIRE_MESSAGE(back, test::describe(back));
  BOOST_TEST(*back == "content used again");
}

// Retention reaches users who never call again: the sweep visits every user in the
// journal (here every second, retention / 24 at least a second) and reclaims what their
// dropped revisions referred to.
BOOST_FIXTURE_TEST_CASE(the_sweep_applies_retention_to_a_user_who_stopped_calling,
                        short_retention) {
  BOOST_REQUIRE(client->put_bytes("left alone", "/left.txt"));
  BOOST_REQUIRE(client->remove("/left.txt"));
  client.reset();  // the user is gone: no call of theirs will find retention due
  std::string log;
  for (int i = 0; i < 100 && log.find("\"reclaim\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream audit(server.data_dir() / "audit.log");
    log.assign(std::istreambuf_iterator<char>(audit), std::istreambuf_iterator<char>());
  }
  BOOST_TEST(log.find("\"peer\":\"retention sweep\"") != std::string::npos, log);
  BOOST_TEST(log.find("1 chunks, 10 bytes") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(durations_that_are_not_lengths_of_time_are_refused_at_start) {
  test::temp_dir dir;
  const std::pair<const char*, const char*> cases[] = {
      {"--retention 'a month'", "write it like 90s, 12h or 30d"},
      {"--request-deadline soon", "write it like 500ms, 30s or 2m"},
      {"--retention-sweep often", "write it like 6h or 1d, or 'auto' or 'off'"},
      {"--retention-sweep 40000d", "up to 100 years"},
      {"--retention 40000d", "longer than 100 years: write 'forever'"},
  };
  for (const auto& [flag, hint] : cases) {
    auto run = test::run_process(AUTOSYNCD_BIN, "--data-dir " + (dir / "d").string() +
                                                    " --listen 127.0.0.1:0 " + flag);
    BOOST_TEST(run.exit_code == 2, flag);
    BOOST_TEST(run.output.find(hint) != std::string::npos, run.output);
  }
}

// Each of these started a server: with no rate at all (every call refused, or none), or
// with a deadline whose nanoseconds overflow.
BOOST_AUTO_TEST_CASE(limits_outside_their_range_are_refused_at_start) {
  test::temp_dir dir;
  const std::pair<const char*, const char*> cases[] = {
      {"--rate-limit 0", "allowed range is 1 to 1000000000 requests per second"},
      {"--rate-limit nan", "allowed range is 1 to 1000000000 requests per second"},
      {"--rate-limit -5", "allowed range is 1 to 1000000000 requests per second"},
      {"--rate-limit 0.5", "allowed range is 1 to 1000000000 requests per second"},
      {"--rate-limit inf", "allowed range is 1 to 1000000000 requests per second"},
      {"--request-deadline 200000d", "from 1ms to 24h"},
      {"--request-deadline 25h", "from 1ms to 24h"},
      {"--request-deadline 0s", "from 1ms to 24h"},
      {"--request-deadline -1s", "from 1ms to 24h"},
  };
  for (const auto& [flag, hint] : cases) {
    // Under `timeout`: a server that starts anyway would serve until killed.
    auto run = test::run_process("timeout 10 " + std::string(AUTOSYNCD_BIN),
                                 "--data-dir " + (dir / "d").string() +
                                     " --listen 127.0.0.1:0 " + flag);
    BOOST_TEST(run.exit_code == 2, flag);
    BOOST_TEST(run.output.find(hint) != std::string::npos, run.output);
  }
}

BOOST_AUTO_TEST_CASE(a_connection_beyond_its_calls_in_flight_is_told_overloaded_and_keeps_working) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  // Raw RPC: the SDK never has more than 128 calls in flight, the server allows 256.
  raw_session raw(server.address());
  auto& io = raw.io;
  auto& session = raw.session;

  constexpr int calls = 3000;
  kj::Vector<kj::Promise<int>> answers;  // 0 answered, 1 overloaded, 2 anything else
  for (int i = 0; i < calls; ++i) {
    auto req = session.listRequest();
    req.setPath("/");
    answers.add(req.send().then([](auto reply) {
      if (!reply.hasFailure()) return 0;
      const auto f = reply.getFailure();
      if (f.getKind() == schema::rpc::Failure::Kind::OVERLOADED && f.getRetryAfterMs() > 0) return 1;
      return 2;
    }));
  }
  auto results = kj::joinPromises(answers.releaseAsArray()).wait(io.waitScope);
  int answered = 0, overloaded = 0, other = 0;
  for (int r : results) (r == 0 ? answered : r == 1 ? overloaded : other)++;
  BOOST_TEST_MESSAGE(answered << " answered, " << overloaded << " overloaded");
  BOOST_TEST(other == 0);
  BOOST_TEST(overloaded > 0);
  BOOST_TEST(answered >= 256);
  // Once the answers are in, the same connection serves again.
  auto again = session.listRequest();
  again.setPath("/");
  BOOST_TEST(!again.send().wait(io.waitScope).hasFailure());
}

// A listing larger than a message may be (8 MiB) comes in pages. Each page after the first
// is asked at the first one's seq, so a commit between two pages is not in the listing:
// together the pages are the tree at one point, each entry once, in order.
BOOST_AUTO_TEST_CASE(a_listing_comes_in_pages_that_are_one_point_in_time) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  // The SDK's client runs on a thread of its own: this one's event loop is the raw RPC's.
  const auto with_sdk = [&](auto&& fn) {
    return std::async(std::launch::async,
                      [&] {
                        auto c = connect(server.address());
                        if (!c) throw std::runtime_error(c.err().to_string());
                        return fn(**c);
                      })
        .get();
  };
  with_sdk([](sdk::client& c) {
    std::vector<sdk::client::commit_request> commits;
    for (int i = 0; i < 60; ++i) {
      commits.push_back({"/paged/f" + std::to_string(100 + i), sdk::plan_bytes(""), 0, 0, ""});
    }
    for (const auto& a : c.commit_many(commits)) BOOST_REQUIRE(a.has_value());
    return 0;
  });
  raw_session raw(server.address());
  std::vector<std::string> paths;
  std::uint64_t seq = 0;
  int pages = 0;
  for (bool more = true; more; ++pages) {
    auto request = raw.session.listRequest();
    request.setPath("/paged");
    request.setPageBytesMax(2000);  // about 15 entries
    if (pages > 0) {
      request.setAtSeq(seq);
      request.setAfter(paths.back());
    }
    auto reply = request.send().wait(raw.io.waitScope);
    BOOST_REQUIRE(!reply.hasFailure());
    if (pages == 0) {
      seq = reply.getSeq();
      // Written after the first page: not part of this listing.
      with_sdk([](sdk::client& c) { return c.put_bytes("", "/paged/f100-later").has_value(); });
    }
    BOOST_TEST(reply.getSeq() == seq);
    for (auto e : reply.getEntries()) paths.push_back(e.getPath());
    more = reply.getMore();
    BOOST_REQUIRE(pages < 100);
  }
  BOOST_TEST(pages > 3);
  BOOST_REQUIRE_EQUAL(paths.size(), 60u);
  for (int i = 0; i < 60; ++i) BOOST_TEST(paths[i] == "/paged/f" + std::to_string(100 + i));
  // Through the SDK, which pages by itself: now with the later file.
  BOOST_TEST(with_sdk([](sdk::client& c) { return c.list("/paged")->size(); }) == 61u);
}

// A request no client of ours would send: its path is a struct where text belongs. Each
// is refused as malformed, and none keeps its place among the connection's calls in
// flight (before, 256 of them left the connection answering every call `overloaded`).
BOOST_AUTO_TEST_CASE(malformed_requests_are_refused_and_give_back_their_place_in_flight) {
  test::temp_dir dir;
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  raw_session raw(server.address());
  for (int i = 0; i < 300; ++i) {
    auto request = raw.session.statRequest();
    capnp::AnyStruct::Builder params = schema::rpc::Session::StatParams::Builder(request);
    params.getPointerSection()[0].initAsAnyStruct(1, 0);
    auto reply = request.send().wait(raw.io.waitScope);
    BOOST_REQUIRE(reply.hasFailure());
    BOOST_REQUIRE(reply.getFailure().getKind() == schema::rpc::Failure::Kind::INVALID);
    if (i == 0) {
      BOOST_TEST(std::string(reply.getFailure().getMessage().cStr()).find("malformed request") !=
                 std::string::npos);
    }
  }
  auto fine = raw.session.listRequest();
  fine.setPath("/");
  auto answer = fine.send().wait(raw.io.waitScope);
  BOOST_TEST(!answer.hasFailure());
}

// The audit line of a change is written as the change becomes durable: a reply cut short by
// the deadline (the client's retry is then answered as a retry) still leaves exactly one.
BOOST_AUTO_TEST_CASE(every_applied_delete_is_audited_once_even_past_the_request_deadline) {
  test::temp_dir dir;
  constexpr int files = 30;
  {
    test::server_process server(AUTOSYNCD_BIN, dir / "server");
    auto client = connect(server.address());
    BOOST_REQUIRE(client);
    for (int i = 0; i < files; ++i) {
      BOOST_REQUIRE((*client)->put_bytes("g", "/many/g" + std::to_string(i)));
    }
    BOOST_TEST(server.stop() == 0);
  }
  std::filesystem::rename(dir / "server" / "server-1.log", dir / "server" / "first.log");
  test::server_process server(AUTOSYNCD_BIN, dir / "server", {"--request-deadline", "1ms"});
  auto client = connect(server.address(), 1000);
  BOOST_REQUIRE(client);
  for (int i = 0; i < files; ++i) {
    auto removed = (*client)->remove("/many/g" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(removed, test::describe(removed));
  }
  BOOST_TEST(server.stop() == 0);
  std::ifstream audit(server.data_dir() / "audit.log");
  std::map<std::string, int> deletes;
  for (std::string line; std::getline(audit, line);) {
    if (line.find("\"action\":\"delete\"") == std::string::npos) continue;
    const auto at = line.find("\"target\":\"");
    BOOST_REQUIRE(at != std::string::npos);
    ++deletes[line.substr(at + 10, line.find('"', at + 10) - at - 10)];
  }
  BOOST_TEST(deletes.size() == static_cast<std::size_t>(files));
  for (const auto& [target, count] : deletes) BOOST_TEST(count == 1, target);
}

namespace {

// The file descriptors `pid` has open.
std::size_t open_files_of(pid_t pid) {
  const auto dir = std::filesystem::path("/proc") / std::to_string(pid) / "fd";
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace

// Out of file descriptors, accept fails (EMFILE). That once ended the RPC loop: the port
// closed and every connection with it, for good, with the process still running.
BOOST_AUTO_TEST_CASE(a_server_out_of_file_descriptors_keeps_serving_and_accepts_again_later) {
  test::temp_dir dir;
  constexpr rlim_t open_files_max = 64;  // autosyncd needs about 20 of them idle
  test::server_process server(AUTOSYNCD_BIN, dir / "server", {}, open_files_max);
  auto kept = connect(server.address(), 0);
  BOOST_REQUIRE_MESSAGE(kept, test::describe(kept));
  BOOST_REQUIRE((*kept)->put_bytes("kept", "/kept.txt"));

  // Idle connections until the server has no descriptor left, then a few more that wait
  // in the listen queue, each accept of them failing.
  // Given up to 10 s: a loaded machine accepts slowly.
  std::vector<int> idle;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (open_files_of(server.pid()) < open_files_max && std::chrono::steady_clock::now() < give_up) {
    if (idle.size() < 200) idle.push_back(raw_connect(server.address()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  BOOST_REQUIRE_EQUAL(open_files_of(server.pid()), open_files_max);
  for (int i = 0; i < 4; ++i) idle.push_back(raw_connect(server.address()));
  std::string out;
  for (int i = 0; i < 100 && out.find("cannot accept") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out = server.output();
  }
  BOOST_TEST(out.find("cannot accept a connection (") != std::string::npos, out);
  BOOST_TEST(out.find("Too many open files") != std::string::npos, out);

  // The connections it has are served meanwhile.
  auto listed = (*kept)->list("/");
  BOOST_REQUIRE_MESSAGE(listed, test::describe(listed));
  BOOST_TEST(listed->size() == 1u);

  // Once descriptors are free again, it accepts again.
  for (int fd : idle) ::close(fd);
  auto fresh = connect(server.address());
  BOOST_REQUIRE_MESSAGE(fresh, test::describe(fresh));
  auto back = (*fresh)->get_bytes("/kept.txt");
  BOOST_REQUIRE_MESSAGE(back, test::describe(back));
  BOOST_TEST(*back == "kept");
  fresh->reset();
  kept->reset();
  BOOST_TEST(server.stop() == 0);
  // Reported once, not at every retry (every 100 ms).
  out = server.output();
  std::size_t reports = 0;
  for (auto at = out.find("cannot accept"); at != std::string::npos;
       at = out.find("cannot accept", at + 1)) {
    ++reports;
  }
  BOOST_TEST(reports <= 2u, out);
}

BOOST_AUTO_TEST_CASE(a_call_past_the_request_deadline_is_answered_unavailable_and_still_completes) {
  test::temp_dir dir;
  // Hashing, sealing and syncing 4 MiB takes milliseconds on any machine.
  const std::string bytes = test::random_bytes(4 << 20, 5);
  const auto id = sha256(bytes);
  {
    test::server_process server(AUTOSYNCD_BIN, dir / "server", {"--request-deadline", "1ms"});
    raw_session raw(server.address());
    auto put = raw.session.putChunkRequest();
    put.setHash({id.bytes.data(), id.bytes.size()});
    put.setData(data_of(bytes));
    auto reply = put.send().wait(raw.io.waitScope);
    BOOST_REQUIRE(reply.hasFailure());
    BOOST_TEST((reply.getFailure().getKind() == schema::rpc::Failure::Kind::UNAVAILABLE));
    const std::string message = reply.getFailure().getMessage().cStr();
    BOOST_TEST(message.find("no answer within 1 ms") != std::string::npos, message);
    BOOST_TEST(message.find("retry") != std::string::npos, message);

    // The answer came early; the write goes on behind it, and the connection serves on.
    // (A look-up may itself miss a 1 ms deadline now and then: it is asked again.)
    bool present = false;
    for (int i = 0; i < 500 && !present; ++i) {
      auto ask = raw.session.missingChunksRequest();
      ask.initHashes(1).set(0, {id.bytes.data(), id.bytes.size()});
      auto answer = ask.send().wait(raw.io.waitScope);
      present = !answer.hasFailure() && answer.getMissing().size() == 0;
      if (!present) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    BOOST_TEST(present);
    BOOST_TEST(server.stop() == 0);
  }
  // What was stored is the chunk that was sent: read back through a server with the default
  // deadline on the same data (its log starts afresh: the old one names the old port).
  std::filesystem::rename(dir / "server" / "server-1.log", dir / "server" / "deadline.log");
  test::server_process server(AUTOSYNCD_BIN, dir / "server");
  raw_session raw(server.address());
  auto get = raw.session.getChunkRequest();
  get.setHash({id.bytes.data(), id.bytes.size()});
  auto got = get.send().wait(raw.io.waitScope);
  BOOST_REQUIRE(!got.hasFailure());
  const auto data = got.getData();
  BOOST_TEST((std::string(data.asChars().begin(), data.size()) == bytes));
}

BOOST_AUTO_TEST_CASE(pipelines_ask_again_for_just_what_the_rate_limit_refused) {
  test::temp_dir dir;
  // 20 calls a second, 40 at once: each pipeline below meets the limit part of the way.
  test::server_process server(AUTOSYNCD_BIN, dir / "server", {"--rate-limit", "20"});
  auto c = connect(server.address());
  BOOST_REQUIRE(c.has_value());
  auto& client = **c;
  const std::string big = test::random_bytes(1536 << 10, 9);
  auto stored = client.put_bytes(big, "/big.bin");
  BOOST_REQUIRE(stored);
  BOOST_REQUIRE_GE(stored->chunks.size(), 12u);
  const auto refill = [] { std::this_thread::sleep_for(std::chrono::seconds(2)); };

  // 60 commits against 40 tokens: the refused ones are sent again (same operation ids).
  refill();
  std::vector<sdk::client::commit_request> commits;
  for (int i = 0; i < 60; ++i) {
    commits.push_back({"/e" + std::to_string(i), sdk::plan_bytes(""), 0, 0, ""});
  }
  auto committed = client.commit_many(commits);
  BOOST_REQUIRE_EQUAL(committed.size(), 60u);
  for (const auto& a : committed) BOOST_TEST(a.has_value(), (a ? "" : a.err().to_string()));
  auto listed = client.list("/");
  BOOST_REQUIRE(listed);
  BOOST_TEST(listed->size() == 61u);  // each commit applied once

  // The file's chunks twice over in one pipeline: only the refused ones are asked again.
  refill();
  std::vector<sdk::chunk_info> wanted(stored->chunks);
  wanted.insert(wanted.end(), stored->chunks.begin(), stored->chunks.end());
  auto got = client.get_chunks(wanted);
  BOOST_REQUIRE_EQUAL(got.size(), wanted.size());
  std::string joined;
  for (std::size_t i = 0; i < stored->chunks.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(got[i].has_value(), (got[i] ? "" : got[i].err().to_string()));
    joined += *got[i];
  }
  BOOST_TEST((joined == big));
  for (std::size_t i = stored->chunks.size(); i < got.size(); ++i) BOOST_TEST(got[i].has_value());

  // A whole download with the bucket still empty: it resumes where the refusals stopped it,
  // so nothing is written twice.
  auto back = client.get_bytes("/big.bin");
  BOOST_REQUIRE_MESSAGE(back.has_value(), (back ? "" : back.err().to_string()));
  BOOST_TEST((*back == big));
}

// A full disk fails uploads as `unavailable`, saying so, and loses nothing acknowledged;
// the node serves reads meanwhile, and takes uploads again once space is freed, without a
// restart (the journal resumes writing by itself).
BOOST_AUTO_TEST_CASE(a_full_disk_fails_uploads_and_the_node_takes_them_again_once_space_is_freed,
                     *boost::unit_test::precondition(test::can_mount_tmpfs)) {
  test::small_tmpfs disk("48m");
  BOOST_REQUIRE(disk.mounted);
  test::server_process server(AUTOSYNCD_BIN, disk.dir / "server");
  auto client = connect(server.address(), 1);
  BOOST_REQUIRE_MESSAGE(client, test::describe(client));
  BOOST_REQUIRE((*client)->put_bytes("kept", "/kept.txt"));
  std::vector<std::pair<std::string, std::string>> stored;  // path, content
  std::optional<error> full;
  for (int i = 0; i < 100 && !full; ++i) {
    auto content = test::random_bytes(1 << 20, 500 + static_cast<unsigned>(i));
    const auto path = "/big/" + std::to_string(i);
    auto put = (*client)->put_bytes(content, path);
    if (put) {
      stored.emplace_back(path, std::move(content));
    } else {
      full = put.err();
    }
  }
  BOOST_REQUIRE_MESSAGE(full, "48 MiB should fill before 100 MiB is stored");
  BOOST_TEST(full->kind() == error_kind::unavailable, full->to_string());
  BOOST_TEST(full->message().find("disk is full") != std::string::npos, full->to_string());
  auto kept = (*client)->get_bytes("/kept.txt");
  BOOST_REQUIRE_MESSAGE(kept, test::describe(kept));
  BOOST_TEST(*kept == "kept");
  // Freed: RocksDB's own recovery checks for space every 5 s, and writes go on once it
  // has (or at once, when the journal's own resume gets there first).
  BOOST_REQUIRE(disk.resize("256m"));
  const auto freed = std::chrono::steady_clock::now();
  auto after = (*client)->put_bytes("after", "/after.txt");
  while (!after && std::chrono::steady_clock::now() - freed < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = (*client)->put_bytes("after", "/after.txt");
  }
  BOOST_REQUIRE_MESSAGE(after, test::describe(after));
  BOOST_TEST_MESSAGE("uploads again " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - freed)
                                             .count()
                                      << " ms after space was freed");
  for (const auto& [path, content] : stored) {
    auto back = (*client)->get_bytes(path);
    BOOST_REQUIRE_MESSAGE(back, path << ": " << test::describe(back));
    BOOST_TEST((*back == content), path);
  }
}

// A clean stop waits for every audit line to be written. Should it never finish (here: the
// audit log is a pipe nobody reads, full), a second SIGTERM stops the process at once
// instead of leaving it for SIGKILL.
BOOST_AUTO_TEST_CASE(a_second_sigterm_ends_a_stop_that_cannot_finish) {
  test::temp_dir dir;
  const auto fifo = dir / "audit.fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opened for reading (so the server's open does not wait) and never read.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  BOOST_REQUIRE(reader >= 0);
  test::server_process server(AUTOSYNCD_BIN, dir / "server", {"--audit-log", fifo.string()});
  // A line per login: 600 of them overfill the pipe's 64 KiB.
  for (int i = 0; i < 600; ++i) BOOST_REQUIRE(connect(server.address(), 0));
  server.signal(SIGTERM);
  const auto first = server.ended_within(std::chrono::milliseconds(1000));
  BOOST_TEST(!first.has_value());  // still writing its audit lines
  server.signal(SIGTERM);
  const auto second = server.ended_within(std::chrono::seconds(10));
  if (!second) server.kill9();
  ::close(reader);
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST(WIFSIGNALED(*second));
  BOOST_TEST(WTERMSIG(*second) == SIGTERM);
}
