// A real autosyncd process on a loopback port, driven through the SDK: content round trips,
// what is sent, the namespace operations, subscriptions, crashes.
#define BOOST_TEST_MODULE sdk_server
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <limits>
#include <thread>

#include "autosync/sdk/client.hpp"
#include "autosync/sdk/folder_sync.hpp"
#include "autosync/server/auth.hpp"
#include "printers.hpp"
#include "raw_database.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"
#include "test_data.hpp"
#include "tokens.hpp"

using namespace autosync;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct fixture {
  test::temp_dir dir;
  test::server_process server{AUTOSYNCD_BIN, dir / "server"};

  std::unique_ptr<sdk::client> connect(const std::string& user, const std::string& device = "dev1") {
    sdk::connect_options o;
    o.server = server.address();
    o.token = test::token_for(user);
    o.device_id = device;
    auto c = sdk::client::connect(o);
    BOOST_REQUIRE_MESSAGE(c.has_value(), test::describe(c));
    return std::move(c).value();
  }

  // The sync of the folder `local` (under the test's folder, created) with `remote`.
  sdk::folder_sync_options sync_of(const std::string& local, const std::string& remote) {
    sdk::folder_sync_options o;
    o.local = dir / local;
    o.remote = remote;
    std::filesystem::create_directories(o.local);
    return o;
  }

  // One pass of that sync as `device`, from a fresh connection; it must succeed.
  sdk::sync_summary sync_once(const sdk::folder_sync_options& o, const std::string& device) {
    auto c = connect("alice", device);
    auto sync = sdk::folder_sync::open(*c, o);
    BOOST_REQUIRE_MESSAGE(sync, test::describe(sync));
    auto pass = (*sync)->run_once();
    BOOST_REQUIRE_MESSAGE(pass, test::describe(pass));
    return std::move(pass).value();
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(files_of_every_size_come_back_byte_identical, fixture) {
  auto alice = connect("alice");
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{10} << 20}) {
    const auto content = test::random_bytes(size, static_cast<unsigned>(size));
    const std::string path = "/sizes/f" + std::to_string(size);
    auto put = alice->put_bytes(content, path);
    BOOST_REQUIRE_MESSAGE(put.has_value(), test::describe(put));
    BOOST_TEST(put->size == size);
    auto got = alice->get_bytes(path);
    BOOST_REQUIRE(got);
    BOOST_TEST((*got == content), "content of " << size << " bytes differs");
  }
  // 100 MiB through files: streamed both ways, never whole in memory on the client.
  const auto big = test::random_bytes(100u << 20, 7);
  { std::ofstream(dir / "big.bin", std::ios::binary) << big; }
  auto put = alice->put_file(dir / "big.bin", "/big.bin");
  BOOST_REQUIRE_MESSAGE(put.has_value(), test::describe(put));
  auto got = alice->get_file("/big.bin", dir / "big.copy");
  BOOST_REQUIRE_MESSAGE(got.has_value(), test::describe(got));
  BOOST_TEST((read_file(dir / "big.copy") == big));
}

BOOST_FIXTURE_TEST_CASE(a_1_mib_edit_resends_only_changed_chunks_and_a_reput_sends_none, fixture) {
  auto alice = connect("alice");
  auto content = test::random_bytes(64u << 20, 11);
  sdk::transfer_stats first;
  sdk::put_options o;
  o.stats = &first;
  BOOST_REQUIRE(alice->put_bytes(content, "/large.bin", o));
  BOOST_TEST(first.bytes_sent == content.size());

  sdk::transfer_stats again;
  o.stats = &again;
  BOOST_REQUIRE(alice->put_bytes(content, "/large.bin", o));
  BOOST_TEST(again.chunks_sent == 0u);
  BOOST_TEST(again.bytes_sent == 0u);

  const auto edit = test::random_bytes(1u << 20, 12);
  content.replace(32u << 20, edit.size(), edit);
  sdk::transfer_stats delta;
  o.stats = &delta;
  BOOST_REQUIRE(alice->put_bytes(content, "/large.bin", o));
  BOOST_TEST_MESSAGE("1 MiB edit re-sent " << delta.bytes_sent << " bytes");
  BOOST_TEST(delta.bytes_sent >= (1u << 20));
  BOOST_TEST(delta.bytes_sent <= (3u << 19));  // at most 1.5 MiB
  auto got = alice->get_bytes("/large.bin");
  BOOST_REQUIRE(got);
  BOOST_TEST((*got == content));
}

// The server dies a third of the way into an upload and comes back: the same put_file
// call reconnects and sends what the server lacks, not what it acknowledged before.
BOOST_FIXTURE_TEST_CASE(an_upload_cut_by_a_server_crash_resumes_with_what_the_server_lacks,
                        fixture) {
  auto alice = connect("alice");
  const auto content = test::random_bytes(48u << 20, 21);
  { std::ofstream(dir / "cut.bin", std::ios::binary) << content; }
  sdk::transfer_stats stats;
  sdk::put_options o;
  o.stats = &stats;
  std::uint64_t sent_before_crash = 0;
  const auto address = server.address();
  o.progress = [&](std::uint64_t done, std::uint64_t) {
    if (sent_before_crash > 0 || done < (16u << 20)) return;
    sent_before_crash = stats.bytes_sent;
    server.kill9();         // chunks in flight lose their answers
    server.start(address);  // same port, same data
  };
  auto put = alice->put_file(dir / "cut.bin", "/cut.bin", o);
  BOOST_REQUIRE_MESSAGE(put.has_value(), test::describe(put));
  BOOST_REQUIRE_GE(sent_before_crash, 16u << 20);
  // Sending again what was acknowledged before the crash would count it twice.
  BOOST_TEST(stats.bytes_sent <= content.size());
  BOOST_TEST(stats.bytes_sent > sent_before_crash);
  auto got = alice->get_bytes("/cut.bin");
  BOOST_REQUIRE_MESSAGE(got.has_value(), test::describe(got));
  BOOST_TEST((*got == content));
}

BOOST_FIXTURE_TEST_CASE(namespace_operations_answer_with_typed_errors, fixture) {
  auto alice = connect("alice");
  auto v1 = alice->put_bytes("one", "/docs/a.txt");
  BOOST_REQUIRE(v1);
  sdk::put_options stale;
  stale.base_revision = 0;  // "create", but it exists
  auto conflict = alice->put_bytes("two", "/docs/a.txt", stale);
  BOOST_REQUIRE(!conflict);
  BOOST_TEST(conflict.err().kind() == error_kind::conflict);
  BOOST_TEST(conflict.err().message().find("current revision") != std::string::npos);

  auto v2 = alice->put_bytes("two", "/docs/a.txt");
  BOOST_REQUIRE(v2);
  BOOST_REQUIRE(alice->move("/docs/a.txt", "/docs/b.txt"));
  auto history = alice->history("/docs/b.txt");
  BOOST_REQUIRE(history);
  BOOST_TEST(history->size() == 2u);
  BOOST_TEST(history->front().path == "/docs/a.txt");

  auto restored = alice->restore("/docs/b.txt", v1->revision);
  BOOST_REQUIRE_MESSAGE(restored.has_value(), test::describe(restored));
  BOOST_TEST(*alice->get_bytes("/docs/b.txt") == "one");

  const auto before_delete = alice->list("/", {true, 0, 0});
  BOOST_REQUIRE(alice->remove("/docs/b.txt"));
  BOOST_TEST(alice->stat("/docs/b.txt").err().kind() == error_kind::not_found);
  BOOST_REQUIRE(alice->undelete("/docs/b.txt"));
  BOOST_TEST(*alice->get_bytes("/docs/b.txt") == "one");

  BOOST_REQUIRE(alice->make_folder("/empty"));
  auto listing = alice->list("/");
  BOOST_REQUIRE(listing);
  BOOST_TEST(listing->size() == 2u);  // /docs, /empty

  auto changes = alice->changes(0);
  BOOST_REQUIRE(changes);
  BOOST_TEST(changes->changes.size() >= 7u);
  auto at_seq = alice->list("/docs", {false, v1->revision, 0});
  BOOST_REQUIRE(at_seq);
  BOOST_REQUIRE(at_seq->size() == 1u);
  BOOST_TEST(at_seq->front().path == "/docs/a.txt");
  auto future = alice->list("/docs", {false, changes->cursor + 100, 0});
  BOOST_REQUIRE(!future.has_value());
  BOOST_TEST(future.err().kind() == error_kind::invalid);
  BOOST_TEST(future.err().message().find("past the newest change") != std::string::npos);

  // Deletes, restores and undeletes leave a line each in the audit log.
  const auto audit = server.audit_log_when([](const std::string& log) {
    return log.find("\"delete\"") != std::string::npos &&
           log.find("\"restore\"") != std::string::npos &&
           log.find("\"undelete\"") != std::string::npos;
  });
  for (const char* action : {"\"delete\"", "\"restore\"", "\"undelete\""}) {
    BOOST_TEST(audit.find(action) != std::string::npos, action << " not audited: " << audit);
  }
}

BOOST_FIXTURE_TEST_CASE(bad_paths_are_invalid_and_change_nothing, fixture) {
  auto alice = connect("alice");
  const std::vector<std::string> bad_paths{"relative.txt", "/a/../b", "/a//b", "/",
                                           std::string("/nul\0x", 6), "/ctl\x01",
                                           "/" + std::string(300, 'n')};
  for (const auto& bad : bad_paths) {
    auto put = alice->put_bytes("x", bad, sdk::put_options{0, {}, {}, nullptr});
    BOOST_REQUIRE_MESSAGE(!put, "accepted " << bad);
    BOOST_TEST((put.err().kind() == error_kind::invalid || put.err().kind() == error_kind::conflict),
               bad << ": " << put.err().to_string());
  }
  auto changes = alice->changes(0);
  BOOST_REQUIRE(changes);
  BOOST_TEST(changes->changes.empty());
}

BOOST_FIXTURE_TEST_CASE(a_subscription_delivers_another_devices_change_within_a_second, fixture) {
  auto watcher = connect("alice", "laptop");
  auto writer = connect("alice", "desktop");
  std::vector<sdk::change> seen;
  BOOST_REQUIRE(watcher->subscribe(0, [&](const sdk::change& c) { seen.push_back(c); }));
  const auto sent = std::chrono::steady_clock::now();
  BOOST_REQUIRE(writer->put_bytes("hello", "/hello.txt"));
  BOOST_REQUIRE(watcher->wait_for_changes(std::chrono::seconds(5), [&] { return !seen.empty(); }));
  const auto took = std::chrono::steady_clock::now() - sent;
  BOOST_REQUIRE(seen.size() == 1u);
  BOOST_TEST(seen[0].path == "/hello.txt");
  BOOST_TEST(seen[0].device_id == "desktop");
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 1000);
  // In order, one after another.
  for (int i = 0; i < 20; ++i) BOOST_REQUIRE(writer->put_bytes("n", "/n" + std::to_string(i)));
  BOOST_REQUIRE(watcher->wait_for_changes(std::chrono::seconds(5), [&] { return seen.size() >= 21; }));
  for (std::size_t i = 1; i < seen.size(); ++i) BOOST_TEST(seen[i].seq > seen[i - 1].seq);
}

// A listener that stops taking changes while more than 10,000 arrive is ended by the server
// (it holds at most that many for one); the SDK subscribes again from the last change it
// delivered, and the subscriber sees every change once, in order.
BOOST_FIXTURE_TEST_CASE(a_subscriber_that_fell_10000_changes_behind_misses_none, fixture) {
  auto alice = connect("alice", "desktop");
  BOOST_REQUIRE(alice->put_bytes("x", "/behind/seed"));  // the folder too: one change each below
  const auto from = alice->current_cursor();
  BOOST_REQUIRE(from);
  constexpr std::size_t count = 12000;
  // The watcher's own thread: its event loop runs only while that thread waits in the
  // SDK, so while it sleeps nothing is taken off the connection.
  std::promise<void> subscribed, committed;
  std::vector<std::uint64_t> seqs;
  std::string failure;
  std::thread watcher([&] {
    sdk::connect_options o;
    o.server = server.address();
    o.token = test::token_for("alice");
    o.device_id = "laptop";
    auto c = sdk::client::connect(o);
    if (!c) {
      failure = "connect: " + c.err().to_string();
      subscribed.set_value();
      return;
    }
    auto& client = **c;
    auto s = client.subscribe(*from, [&](const sdk::change& ch) { seqs.push_back(ch.seq); });
    if (!s) failure = "subscribe: " + s.err().to_string();
    subscribed.set_value();
    if (!s) return;
    committed.get_future().wait();
    auto waited =
        client.wait_for_changes(std::chrono::seconds(120), [&] { return seqs.size() >= count; });
    if (!waited) failure = "wait: " + waited.err().to_string();
  });
  subscribed.get_future().wait();
  std::vector<sdk::client::commit_request> requests;
  const auto plan = sdk::plan_bytes("x");
  for (std::size_t i = 0; i < count; ++i)
    requests.push_back({"/behind/f" + std::to_string(i), plan, 0, 0, {}});
  const auto answers = alice->commit_many(requests);
  committed.set_value();
  watcher.join();
  BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  std::size_t failed = 0;
  for (const auto& a : answers) failed += a ? 0 : 1;
  BOOST_REQUIRE(failed == 0u);
  BOOST_REQUIRE_EQUAL(seqs.size(), count);
  for (std::size_t i = 0; i < count; ++i) {
    if (seqs[i] != *from + 1 + i) {
      BOOST_TEST(seqs[i] == *from + 1 + i, "change " << i);
      break;
    }
  }
}

// A listing gives, with its point, the hash of the event there: the one the change feed
// names that point by, so a sync that starts from a listing can tell a restored server
// without a second call.
BOOST_FIXTURE_TEST_CASE(a_listing_names_its_point_by_the_hash_the_feed_gives, fixture) {
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("a", "/h/a"));
  BOOST_REQUIRE(alice->put_bytes("b", "/h/b"));
  auto now = alice->list_with_cursor("/", {});
  BOOST_REQUIRE(now);
  BOOST_REQUIRE(now->seq >= 2u);
  BOOST_TEST(!now->seq_hash.is_zero());
  auto page = alice->changes(now->seq - 1, 1);
  BOOST_REQUIRE(page);
  BOOST_REQUIRE(page->cursor == now->seq);
  BOOST_TEST((page->cursor_hash == now->seq_hash));
  // A past point's too.
  auto then = alice->list_with_cursor("/", {false, now->seq - 1, 0});
  BOOST_REQUIRE(then);
  BOOST_REQUIRE(then->seq == now->seq - 1);
  auto before = alice->changes(now->seq - 2, 1);
  BOOST_REQUIRE(before);
  BOOST_TEST((before->cursor_hash == then->seq_hash));
  // The feed takes it as the cursor's name.
  BOOST_TEST(alice->changes(now->seq, 10, now->seq_hash).has_value());
}

// A cursor past the user's newest change is a client's bug (or another server's cursor).
// 2^64-1 wrapped round to every change, and a subscription one past the head waited for
// changes that never came: both are refused, saying how to get a good one.
BOOST_FIXTURE_TEST_CASE(a_cursor_past_the_newest_change_is_refused_as_stale, fixture) {
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("x", "/x.txt"));
  auto head = alice->current_cursor();
  BOOST_REQUIRE(head);
  for (std::uint64_t bad : {*head + 1, std::numeric_limits<std::uint64_t>::max()}) {
    auto listed = alice->changes(bad);
    BOOST_REQUIRE_MESSAGE(!listed, "cursor " << bad << " accepted");
    BOOST_TEST(listed.err().kind() == error_kind::stale_cursor);
    BOOST_TEST(listed.err().message().find("list again") != std::string::npos,
               listed.err().message());
    auto subscribed = alice->subscribe(bad, [](const sdk::change&) {});
    BOOST_REQUIRE_MESSAGE(!subscribed, "subscribed at " << bad);
    BOOST_TEST(subscribed.err().kind() == error_kind::stale_cursor);
  }
  auto none = alice->changes(*head);
  BOOST_REQUIRE(none);
  BOOST_TEST(none->changes.empty());
  std::vector<sdk::change> seen;
  BOOST_REQUIRE(alice->subscribe(*head, [&](const sdk::change& c) { seen.push_back(c); }));
  BOOST_REQUIRE(alice->put_bytes("y", "/y.txt"));
  BOOST_REQUIRE(alice->wait_for_changes(std::chrono::seconds(5), [&] { return !seen.empty(); }));
  BOOST_TEST(seen.front().path == "/y.txt");
}

BOOST_FIXTURE_TEST_CASE(bad_tokens_are_refused_and_users_are_isolated, fixture) {
  sdk::connect_options o;
  o.server = server.address();
  o.device_id = "d";
  o.retries_max = 0;
  auto refused = [&](const std::string& token) {
    o.token = token;
    auto c = sdk::client::connect(o);
    return !c && c.err().kind() == error_kind::unauthenticated;
  };
  BOOST_TEST(refused(""));
  BOOST_TEST(refused(test::token_for("alice", std::chrono::seconds(60), test::unix_now_s() - 3600)));
  server::token_request r;
  r.user = "alice";
  auto forged =
      server::issue_token(server::token_algorithm::hs256, std::string(48, 'x'), r, test::unix_now_s());
  BOOST_TEST(refused(*forged));
  // alg none: header {"alg":"none","typ":"JWT"}, payload {"sub":"alice","exp":<future>}.
  const std::string none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
  BOOST_TEST(refused(none));

  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("secret", "/private.txt"));
  auto bob = connect("bob");
  BOOST_TEST(bob->stat("/private.txt").err().kind() == error_kind::not_found);
  BOOST_TEST(bob->list("/")->empty());
  BOOST_TEST(bob->get_chunk(sha256("secret")).err().kind() == error_kind::not_found);
  BOOST_TEST(bob->remove("/private.txt").err().kind() == error_kind::not_found);
  BOOST_TEST(*alice->get_bytes("/private.txt") == "secret");
  const auto audit = server.audit_log_when(
      [](const std::string& log) { return log.find("login_failed") != std::string::npos; });
  BOOST_TEST(audit.find("login_failed") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(every_acknowledged_commit_survives_kill_9, fixture) {
  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    sdk::connect_options o;
    o.server = server.address();
    o.token = test::token_for("alice");
    o.device_id = "w";
    o.retries_max = 0;
    auto c = sdk::client::connect(o);
    if (!c) return;
    for (int i = 0; !stop; ++i) {
      if (!(*c)->put_bytes("v" + std::to_string(i), "/f" + std::to_string(i))) return;
      acknowledged = i + 1;
    }
  });
  while (acknowledged < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.kill9();
  stop = true;
  writer.join();
  const int acked = acknowledged;
  server.start();
  auto alice = connect("alice");
  for (int i = 0; i < acked; ++i) {
    auto got = alice->get_bytes("/f" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(got, "acknowledged /f" << i << " lost");
    BOOST_TEST(*got == "v" + std::to_string(i));
  }
  // The replay tool reads the same data folder beside the live node: chains intact.
  auto verified = test::run_process(AUTOSYNC_REPLAY_BIN,
                                    "--data-dir " + server.data_dir().string() + " verify");
  BOOST_TEST(verified.exit_code == 0, verified.output);
}

BOOST_FIXTURE_TEST_CASE(a_client_reconnects_by_itself_after_the_server_restarts, fixture) {
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("before", "/before.txt"));
  std::vector<sdk::change> seen;
  BOOST_REQUIRE(alice->subscribe(0, [&](const sdk::change& c) { seen.push_back(c); }));
  BOOST_REQUIRE(alice->wait_for_changes(std::chrono::seconds(5), [&] { return !seen.empty(); }));
  const auto address = server.address();
  server.kill9();
  server.start(address);  // same port: the client's next call reconnects and logs in again
  auto after = alice->put_bytes("after", "/after.txt");
  BOOST_REQUIRE_MESSAGE(after.has_value(), test::describe(after));
  BOOST_TEST(*alice->get_bytes("/before.txt") == "before");
  // The subscription resumed after the last change it delivered: no gap, no repeat.
  BOOST_REQUIRE(alice->wait_for_changes(std::chrono::seconds(5), [&] { return seen.size() >= 2; }));
  BOOST_REQUIRE(seen.size() == 2u);
  BOOST_TEST(seen[1].path == "/after.txt");
}

BOOST_FIXTURE_TEST_CASE(pipelined_commits_and_chunk_fetches_answer_each_request_in_order, fixture) {
  auto alice = connect("alice");
  std::vector<sdk::client::commit_request> requests;
  std::vector<sdk::chunk_info> chunks;
  for (int i = 0; i < 300; ++i) {
    const auto content = "file " + std::to_string(i);
    auto plan = sdk::plan_bytes(content);
    chunks.push_back(plan.chunks.at(0));
    requests.push_back({"/many/f" + std::to_string(i), plan, 0, 0, {}});
  }
  // The chunks first (one upload of all of them), then 300 commits in flight.
  std::string all;
  for (int i = 0; i < 300; ++i) all += "file " + std::to_string(i);
  sdk::file_plan pack;
  for (const auto& c : chunks) pack.chunks.push_back(c);
  { std::ofstream(dir / "pack", std::ios::binary) << all; }
  std::vector<std::size_t> every(pack.chunks.size());
  for (std::size_t i = 0; i < every.size(); ++i) every[i] = i;
  BOOST_REQUIRE(alice->put_chunks(dir / "pack", pack, every));
  requests.push_back({"/many/f0", requests[0].plan, 0, 0, {}});  // a create that conflicts
  auto answers = alice->commit_many(requests);
  BOOST_REQUIRE(answers.size() == 301u);
  for (int i = 0; i < 300; ++i) BOOST_REQUIRE_MESSAGE(answers[i].has_value(), test::describe(answers[i]));
  BOOST_TEST(answers[300].err().kind() == error_kind::conflict);
  auto listed = alice->list_with_cursor("/many", {});
  BOOST_REQUIRE(listed.has_value());
  BOOST_TEST(listed->entries.size() == 300u);
  BOOST_TEST(listed->seq == *alice->current_cursor());
  auto fetched = alice->get_chunks(chunks);
  for (int i = 0; i < 300; ++i) BOOST_TEST(*fetched[i] == "file " + std::to_string(i));
  BOOST_TEST(alice->changes(listed->seq)->changes.empty());
}

// More entries than one answer may carry (8 MiB): before paging, the listing failed, and a
// first sync of such a folder never got going.
BOOST_FIXTURE_TEST_CASE(a_tree_too_large_for_one_message_is_listed_whole, fixture) {
  auto alice = connect("alice");
  const std::string long_name(200, 'n');
  constexpr int files = 30000;  // about 10 MiB of entries
  std::vector<sdk::client::commit_request> requests;
  for (int i = 0; i < files; ++i) {
    requests.push_back(
        {"/big/" + long_name + std::to_string(10000 + i), sdk::plan_bytes(""), 0, 0, {}});
  }
  for (const auto& a : alice->commit_many(requests)) BOOST_REQUIRE(a.has_value());
  sdk::client::list_options everything;
  everything.recursive = true;
  auto listed = alice->list_with_cursor("/", everything);
  BOOST_REQUIRE_MESSAGE(listed, test::describe(listed));
  BOOST_REQUIRE_EQUAL(listed->entries.size(), static_cast<std::size_t>(files) + 1);
  BOOST_TEST(listed->entries[0].path == "/big");
  for (int i = 0; i < files; ++i) {
    BOOST_REQUIRE(listed->entries[i + 1].path == "/big/" + long_name + std::to_string(10000 + i));
  }
  BOOST_TEST(listed->seq == *alice->current_cursor());
}

// A change carries its file's chunk list: a page of changes to files of many chunks went
// over the 8 MiB an answer may take, and the feed could not get past them.
BOOST_FIXTURE_TEST_CASE(a_feed_of_files_with_long_chunk_lists_pages_under_the_message_limit,
                        fixture) {
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("x", "/x"));
  sdk::file_plan plan;  // 1,000 times the one-byte chunk "x"
  const std::string content(1000, 'x');
  plan.size = content.size();
  plan.hash = sha256(content);
  for (std::size_t i = 0; i < content.size(); ++i) plan.chunks.push_back({sha256("x"), 1});
  std::vector<sdk::client::commit_request> requests;
  for (int i = 0; i < 220; ++i) requests.push_back({"/long/f" + std::to_string(i), plan, 0, 0, {}});
  for (const auto& a : alice->commit_many(requests)) BOOST_REQUIRE_MESSAGE(a, test::describe(a));
  std::size_t committed = 0;
  std::uint64_t cursor = 0;
  for (int pages = 0;; ++pages) {
    auto page = alice->changes(cursor);
    BOOST_REQUIRE_MESSAGE(page, test::describe(page));
    for (const auto& c : page->changes) committed += c.what == sdk::change::kind::committed;
    cursor = page->cursor;
    if (!page->more) break;
    BOOST_REQUIRE(pages < 100);
  }
  BOOST_TEST(committed == 221u);  // /x and the 220
}

BOOST_FIXTURE_TEST_CASE(a_retried_commit_answers_with_the_entry_it_made_not_a_later_one, fixture) {
  auto laptop = connect("alice", "laptop");
  auto phone = connect("alice", "phone");
  auto first = laptop->put_bytes("laptop's first", "/r.txt");
  BOOST_REQUIRE_MESSAGE(first, test::describe(first));
  BOOST_REQUIRE(laptop->put_bytes("laptop's second", "/scratch"));  // uploads its chunk
  const auto plan = sdk::plan_bytes("laptop's second");
  auto mine = laptop->commit("/r.txt", plan, first->revision, 0, "op-retried");
  BOOST_REQUIRE_MESSAGE(mine, test::describe(mine));
  sdk::put_options after;
  after.base_revision = mine->revision;
  auto theirs = phone->put_bytes("the phone's edit", "/r.txt", after);
  BOOST_REQUIRE_MESSAGE(theirs, test::describe(theirs));
  // The laptop never saw its answer and asks again: the commit is not applied twice, and
  // the answer is the laptop's revision, not the phone's.
  auto again = laptop->commit("/r.txt", plan, first->revision, 0, "op-retried");
  BOOST_REQUIRE_MESSAGE(again, test::describe(again));
  BOOST_TEST(again->revision == mine->revision);
  BOOST_TEST(again->hash == plan.hash);
  BOOST_TEST(again->device_id == "laptop");
  BOOST_TEST(laptop->stat("/r.txt")->revision == theirs->revision);
}

// A subscription the restored server cannot resume (its cursor is past everything the
// server has) ends, and says why; the connection goes on serving the client's own calls.
BOOST_FIXTURE_TEST_CASE(a_subscription_a_restored_server_cannot_resume_ends_without_failing_calls,
                        fixture) {
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->put_bytes("one", "/one.txt"));
  BOOST_REQUIRE(alice->put_bytes("two", "/two.txt"));
  std::vector<sdk::change> seen;
  BOOST_REQUIRE(alice->subscribe(0, [&](const sdk::change& c) { seen.push_back(c); }));
  BOOST_REQUIRE(alice->wait_for_changes(std::chrono::seconds(5), [&] { return seen.size() >= 2; }));
  const auto address = server.address();
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::remove_all(server.data_dir());  // back from a backup older than both
  server.start(address);
  auto put = alice->put_bytes("three", "/three.txt");
  BOOST_REQUIRE_MESSAGE(put.has_value(), test::describe(put));
  auto ended = alice->wait_for_changes(std::chrono::seconds(5), [] { return false; });
  BOOST_REQUIRE(!ended);
  BOOST_TEST(ended.err().kind() == error_kind::stale_cursor);
  BOOST_TEST(ended.err().message().find("cursor") != std::string::npos, ended.err().message());
  // And calls go on working after it.
  auto back = alice->get_bytes("/three.txt");
  BOOST_REQUIRE_MESSAGE(back.has_value(), test::describe(back));
  BOOST_TEST(*back == "three");
}

BOOST_FIXTURE_TEST_CASE(a_server_restored_to_before_the_last_sync_gets_the_files_again, fixture) {
  const auto o = sync_of("laptop", "/sync");
  { std::ofstream(o.local / "kept.txt") << "only here now"; }
  sync_once(o, "laptop");
  // The server comes back from a backup older than all of it: an empty journal.
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::remove_all(server.data_dir());
  server.start();
  sync_once(o, "laptop");
  BOOST_TEST(read_file(o.local / "kept.txt") == "only here now");  // not deleted here
  auto back = connect("alice")->get_bytes("/sync/kept.txt");
  BOOST_REQUIRE_MESSAGE(back, test::describe(back));
  BOOST_TEST(*back == "only here now");
}

BOOST_FIXTURE_TEST_CASE(a_restored_server_that_went_on_differently_is_told_apart, fixture) {
  const auto o = sync_of("laptop", "/sync");
  { std::ofstream(o.local / "a.txt") << "a"; }
  sync_once(o, "laptop");
  sync_once(o, "laptop");
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::copy(server.data_dir(), dir / "backup", std::filesystem::copy_options::recursive);
  server.start();
  { std::ofstream(o.local / "b.txt") << "b"; }
  { std::ofstream(o.local / "c.txt") << "c"; }
  sync_once(o, "laptop");
  sync_once(o, "laptop");  // the laptop's cursor now names its own upload of c.txt
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::remove_all(server.data_dir());
  std::filesystem::copy(dir / "backup", server.data_dir(), std::filesystem::copy_options::recursive);
  server.start();
  {  // another device writes on: the seqs the laptop saw now name other events
    auto phone = connect("alice", "phone");
    for (int i = 0; i < 8; ++i) {
      BOOST_REQUIRE(phone->put_bytes("p" + std::to_string(i), "/sync/p" + std::to_string(i) + ".txt"));
    }
  }
  const auto pass = sync_once(o, "laptop");
  BOOST_TEST(pass.deleted_local == 0u);
  BOOST_TEST(read_file(o.local / "b.txt") == "b");
  BOOST_TEST(read_file(o.local / "c.txt") == "c");
  BOOST_TEST(read_file(o.local / "p7.txt") == "p7");
  auto phone = connect("alice", "phone");
  for (const char* name : {"a.txt", "b.txt", "c.txt"}) {
    auto back = phone->get_bytes(std::string("/sync/") + name);
    BOOST_REQUIRE_MESSAGE(back, name << ": " << test::describe(back));
  }
}

BOOST_FIXTURE_TEST_CASE(a_first_sync_can_already_tell_a_restored_server_apart, fixture) {
  BOOST_REQUIRE(connect("alice", "phone")->put_bytes("one", "/sync/one.txt"));
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::copy(server.data_dir(), dir / "backup", std::filesystem::copy_options::recursive);
  server.start();
  const auto o = sync_of("laptop", "/sync");
  { std::ofstream(o.local / "mine.txt") << "mine"; }
  sync_once(o, "laptop");  // one pass: it lists, then uploads
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::remove_all(server.data_dir());
  std::filesystem::copy(dir / "backup", server.data_dir(), std::filesystem::copy_options::recursive);
  server.start();
  {
    auto phone = connect("alice", "phone");
    for (int i = 1; i <= 3; ++i) {
      BOOST_REQUIRE(phone->put_bytes("p", "/sync/p" + std::to_string(i) + ".txt"));
    }
  }
  const auto pass = sync_once(o, "laptop");
  BOOST_TEST(pass.deleted_local == 0u);
  BOOST_TEST(read_file(o.local / "mine.txt") == "mine");
  auto back = connect("alice", "phone")->get_bytes("/sync/mine.txt");
  BOOST_REQUIRE_MESSAGE(back, test::describe(back));
  BOOST_TEST(*back == "mine");
}

BOOST_FIXTURE_TEST_CASE(a_remote_folder_named_in_another_letter_case_syncs_as_itself, fixture) {
  auto laptop = connect("alice", "laptop");
  BOOST_REQUIRE(laptop->put_bytes("from the server", "/Docs/there.txt"));
  sdk::folder_sync_options o;
  o.local = dir / "laptop";
  o.remote = "/docs";  // the server holds /Docs
  std::filesystem::create_directories(o.local);
  {
    auto sync = sdk::folder_sync::open(*laptop, o);
    BOOST_REQUIRE(sync);
    BOOST_REQUIRE((*sync)->run_once());
    { std::ofstream(o.local / "own.txt") << "from here"; }
    BOOST_REQUIRE((*sync)->run_once());
    auto again = (*sync)->run_once();
    BOOST_REQUIRE_MESSAGE(again, test::describe(again));
    BOOST_TEST(again->deleted_local == 0u);
  }
  BOOST_TEST(read_file(o.local / "own.txt") == "from here");  // before: deleted here
  BOOST_TEST(read_file(o.local / "there.txt") == "from the server");
  auto uploaded = laptop->get_bytes("/Docs/own.txt");
  BOOST_REQUIRE_MESSAGE(uploaded, test::describe(uploaded));
  BOOST_TEST(*uploaded == "from here");
  o.remote = "/DOCS";  // any spelling of the same folder opens the same sync
  BOOST_TEST(sdk::folder_sync::open(*laptop, o).has_value());
}

// Its files moved here into a new folder named the same in another letter case, which the
// server takes for the folder itself: each move is refused ("onto itself"). The plan had
// counted on them to empty the old folder before deleting it.
BOOST_FIXTURE_TEST_CASE(a_folder_is_not_deleted_on_the_server_while_a_move_out_of_it_failed,
                        fixture) {
  const auto o = sync_of("laptop", "/sync");
  std::filesystem::create_directories(o.local / "Docs");
  { std::ofstream(o.local / "Docs" / "x.txt") << "the x file"; }
  { std::ofstream(o.local / "Docs" / "y.txt") << "the y file"; }
  sync_once(o, "laptop");
  sync_once(o, "laptop");
  std::filesystem::create_directories(o.local / "docs");
  std::filesystem::rename(o.local / "Docs" / "x.txt", o.local / "docs" / "x.txt");
  std::filesystem::rename(o.local / "Docs" / "y.txt", o.local / "docs" / "y.txt");
  std::filesystem::remove(o.local / "Docs");
  auto alice = connect("alice");
  auto on_server = [&](const std::string& name) {
    for (const std::string folder : {"/sync/Docs/", "/sync/docs/"}) {
      if (auto got = alice->get_bytes(folder + name)) return *got;
    }
    return std::string("(gone from the server)");
  };
  for (int pass = 0; pass < 2; ++pass) {
    auto c = connect("alice", "laptop");
    auto sync = sdk::folder_sync::open(*c, o);
    BOOST_REQUIRE(sync);
    auto ran = (*sync)->run_once();
    BOOST_REQUIRE_MESSAGE(ran, test::describe(ran));
    BOOST_TEST(ran->deleted_remote == 0u);
    BOOST_TEST(on_server("x.txt") == "the x file");
    BOOST_TEST(on_server("y.txt") == "the y file");
  }
  BOOST_TEST(read_file(o.local / "docs" / "x.txt") == "the x file");
}

BOOST_FIXTURE_TEST_CASE(a_server_restored_to_a_backup_after_the_last_sync_loses_nothing_here, fixture) {
  const auto o = sync_of("laptop", "/sync");
  { std::ofstream(o.local / "a.txt") << "a"; }
  sync_once(o, "laptop");
  sync_once(o, "laptop");  // the feed now reaches past a.txt
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::copy(server.data_dir(), dir / "backup", std::filesystem::copy_options::recursive);
  server.start();
  { std::ofstream(o.local / "b.txt") << "b"; }
  sync_once(o, "laptop");
  // Back to the backup: the server knows the laptop's cursor, not b.txt.
  BOOST_REQUIRE(server.stop() == 0);
  std::filesystem::remove_all(server.data_dir());
  std::filesystem::copy(dir / "backup", server.data_dir(), std::filesystem::copy_options::recursive);
  server.start();
  const auto pass = sync_once(o, "laptop");
  BOOST_TEST(pass.deleted_local == 0u);
  BOOST_TEST(read_file(o.local / "b.txt") == "b");
  auto back = connect("alice")->get_bytes("/sync/b.txt");
  BOOST_REQUIRE_MESSAGE(back, test::describe(back));
  BOOST_TEST(*back == "b");
}

BOOST_FIXTURE_TEST_CASE(a_folder_deleted_here_keeps_what_another_device_put_in_meanwhile, fixture) {
  auto laptop = connect("alice", "laptop");
  auto phone = connect("alice", "phone");
  sdk::folder_sync_options o;
  o.local = dir / "laptop";
  o.remote = "/sync";
  std::filesystem::create_directories(o.local / "d");
  { std::ofstream(o.local / "d" / "old.txt") << "old"; }
  bool put_meanwhile = false;
  o.stop = [&] {
    // The pass has read the server's tree and is scanning or acting on it: the phone's
    // file arrives now, unseen by the plan.
    if (put_meanwhile) {
      put_meanwhile = false;
      BOOST_REQUIRE(phone->put_bytes("the phone's", "/sync/d/new.txt"));
    }
    return false;
  };
  auto sync = sdk::folder_sync::open(*laptop, o);
  BOOST_REQUIRE_MESSAGE(sync, test::describe(sync));
  BOOST_REQUIRE((*sync)->run_once());
  std::filesystem::remove_all(o.local / "d");
  put_meanwhile = true;
  auto pass = (*sync)->run_once();
  BOOST_REQUIRE_MESSAGE(pass, test::describe(pass));
  BOOST_TEST(!put_meanwhile);
  // The phone's file was neither deleted nor lost: it is on the server and, after the
  // pass that retried, here too; the laptop's deletion of what it had seen stands.
  auto kept = laptop->stat("/sync/d/new.txt");
  BOOST_TEST(kept.has_value(), test::describe(kept));
  BOOST_TEST(!laptop->stat("/sync/d/old.txt").has_value());
  BOOST_TEST(read_file(o.local / "d" / "new.txt") == "the phone's");
}

BOOST_FIXTURE_TEST_CASE(a_file_written_during_its_upload_is_not_committed_as_a_mix, fixture) {
  auto alice = connect("alice");
  const auto file = dir / "growing.bin";
  const std::string before = test::random_bytes(6 << 20, 7);
  { std::ofstream(file, std::ios::binary) << before; }
  bool written = false;
  sdk::put_options o;
  o.progress = [&](std::uint64_t, std::uint64_t) {
    if (written) return;
    written = true;  // the first and the last MiB change while the upload runs
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    const std::string other = test::random_bytes(1 << 20, 8);
    f.seekp(0);
    f.write(other.data(), static_cast<std::streamsize>(other.size()));
    f.seekp(static_cast<std::streamoff>(before.size() - other.size()));
    f.write(other.data(), static_cast<std::streamsize>(other.size()));
  };
  auto put = alice->put_file(file, "/growing.bin", o);
  BOOST_REQUIRE(written);
  BOOST_REQUIRE(!put.has_value());
  BOOST_TEST(put.err().kind() == error_kind::conflict);
  BOOST_TEST(put.err().message().find("changed while it was being uploaded") != std::string::npos);
  BOOST_TEST(!alice->stat("/growing.bin").has_value());  // nothing committed
  auto again = alice->put_file(file, "/growing.bin");  // nothing writes it now
  BOOST_REQUIRE_MESSAGE(again, test::describe(again));
  BOOST_REQUIRE(alice->get_file("/growing.bin", dir / "back.bin"));
  BOOST_TEST(read_file(dir / "back.bin") == read_file(file));
}

BOOST_FIXTURE_TEST_CASE(a_device_id_that_is_not_text_is_refused_at_login, fixture) {
  for (const std::string& device : {std::string("dev\xff"), std::string("dev\x01")}) {
    sdk::connect_options o;
    o.server = server.address();
    o.token = test::token_for("alice");
    o.device_id = device;
    auto c = sdk::client::connect(o);
    BOOST_REQUIRE(!c.has_value());
    BOOST_TEST(c.err().kind() == error_kind::invalid, c.err().to_string());
  }
  // A failed login is a failed login, whatever failed: audited. (A valid login after them
  // leaves its line after theirs: once it is in, theirs are.)
  auto valid = connect("alice");
  const std::string log = server.audit_log_when(
      [](const std::string& l) { return l.find("\"action\":\"login\"") != std::string::npos; });
  std::size_t failed = 0;
  for (auto at = log.find("\"login_failed\""); at != std::string::npos;
       at = log.find("\"login_failed\"", at + 1)) {
    ++failed;
  }
  BOOST_TEST(failed == 2u, log);
  BOOST_TEST(log.find("a device id must be UTF-8 text") != std::string::npos, log);
}

BOOST_FIXTURE_TEST_CASE(a_subscription_ended_by_the_tokens_expiry_says_so, fixture) {
  sdk::connect_options o;
  o.server = server.address();
  // Expired already, accepted (with the clock leeway) for 6 more seconds: time enough to
  // connect and subscribe on a loaded machine.
  const std::int64_t leeway = server::token_policy{}.leeway.count();
  o.token = test::token_for("alice", std::chrono::seconds(3600),
                            test::unix_now_s() - 3600 - leeway + 6);
  o.device_id = "short";
  auto c = sdk::client::connect(o);
  BOOST_REQUIRE_MESSAGE(c.has_value(), test::describe(c));
  int changes = 0;
  BOOST_REQUIRE((*c)->subscribe(0, [&](const sdk::change&) { ++changes; }));
  const auto start = std::chrono::steady_clock::now();
  auto waited = (*c)->wait_for_changes(std::chrono::seconds(20));
  BOOST_REQUIRE(!waited);  // before: it waited the whole time and heard nothing
  BOOST_TEST(waited.err().kind() == error_kind::unauthenticated);
  BOOST_TEST(waited.err().message().find("new token") != std::string::npos);
  BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(15)));
}

// A user whose history cannot be read cannot be followed: the subscription ends saying
// so, instead of waiting silently for changes that will never come.
BOOST_FIXTURE_TEST_CASE(a_subscription_to_a_damaged_history_ends_saying_why, fixture) {
  BOOST_REQUIRE(connect("alice")->put_bytes("one", "/one.txt"));
  const auto address = server.address();
  BOOST_REQUIRE(server.stop() == 0);
  {
    test::raw_database raw(server.data_dir());
    const auto key = test::raw_database::event_key("alice", 1);
    std::string value;
    BOOST_REQUIRE(raw.db->Get(rocksdb::ReadOptions(), raw.handles[1], key, &value).ok());
    value[value.size() / 2] ^= 1;
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[1], key, value).ok());
  }
  server.start(address);
  auto alice = connect("alice");
  BOOST_REQUIRE(alice->subscribe(0, [](const sdk::change&) {}));
  auto ended = alice->wait_for_changes(std::chrono::seconds(10), [] { return false; });
  BOOST_REQUIRE(!ended);
  BOOST_TEST(ended.err().kind() == error_kind::corruption, test::describe(ended));
  BOOST_TEST(ended.err().message().find("seq 1") != std::string::npos, ended.err().message());
}

BOOST_FIXTURE_TEST_CASE(a_replaced_subscription_gives_back_its_place_on_the_connection, fixture) {
  auto alice = connect("alice");
  // A connection holds at most 16: each new one of the SDK's replaces the last, which the
  // server then forgets.
  for (int i = 0; i < 20; ++i) {
    auto s = alice->subscribe(0, [](const sdk::change&) {});
    BOOST_REQUIRE_MESSAGE(s, "subscription " << i << ": " << test::describe(s));
    BOOST_REQUIRE(alice->wait_for_changes(std::chrono::milliseconds(20)));
  }
}

BOOST_AUTO_TEST_CASE(the_first_run_instructions_work_from_any_folder) {
  test::temp_dir dir;
  const auto log = dir / "first-run.log";
  const pid_t pid = test::spawn_process(
      {AUTOSYNCD_BIN, "--data-dir", (dir / "data").string(), "--listen", "127.0.0.1:0"},
      log.string());
  std::string printed;
  for (int i = 0; i < 200 && printed.find("connect:") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    printed = read_file(log);
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  BOOST_TEST_MESSAGE(printed);
  const auto from = printed.find("AUTOSYNC_TOKEN=$(");
  BOOST_REQUIRE(from != std::string::npos);
  const auto start = from + std::string("AUTOSYNC_TOKEN=$(").size();
  const std::string command = printed.substr(start, printed.find(')', start) - start);
  // Run from the root folder, not where the server started.
  auto issued = test::run_process("cd / &&", command);
  BOOST_TEST(issued.exit_code == 0, issued.output);
  BOOST_TEST(std::count(issued.output.begin(), issued.output.end(), '.') == 2, issued.output);
}

// Login accepts a token up to the clock leeway past its `exp`; the session it opens works
// exactly as long (it once refused every call at once: a login that led nowhere), and a
// login with the token after that is refused.
BOOST_FIXTURE_TEST_CASE(a_session_lasts_as_long_as_login_accepts_its_token, fixture) {
  const std::int64_t leeway = server::token_policy{}.leeway.count();
  const std::int64_t lifetime = 3600;
  // Expired already, accepted for 6 more seconds (under 6 from now: the clock's seconds
  // are whole), time enough to connect and list on a loaded machine.
  const auto issued = std::chrono::steady_clock::now();
  const auto token = test::token_for("alice", std::chrono::seconds(lifetime),
                                     test::unix_now_s() - lifetime - leeway + 6);
  sdk::connect_options o;
  o.server = server.address();
  o.token = token;
  o.device_id = "short";
  o.retries_max = 0;
  auto c = sdk::client::connect(o);
  BOOST_REQUIRE_MESSAGE(c.has_value(), test::describe(c));
  auto listed = (*c)->list("/");
  BOOST_TEST(listed.has_value(), test::describe(listed));
  std::this_thread::sleep_until(issued + std::chrono::milliseconds(7200));
  auto late = (*c)->list("/");
  BOOST_REQUIRE(!late.has_value());
  BOOST_TEST(late.err().kind() == error_kind::unauthenticated);
  BOOST_TEST(late.err().message().find("new token") != std::string::npos);
  auto again = sdk::client::connect(o);
  BOOST_REQUIRE(!again.has_value());
  BOOST_TEST(again.err().kind() == error_kind::unauthenticated);
  BOOST_TEST(again.err().message().find("expired") != std::string::npos, again.err().message());
}
