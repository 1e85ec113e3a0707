#define BOOST_TEST_MODULE actors_user_directory
#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>

#include <condition_variable>
#include <future>
#include <thread>

#include "../journal/journal_fixture.hpp"
#include "autosync/actors/user_directory.hpp"
#include "namespace_fixture.hpp"
#include "test_data.hpp"

using namespace autosync;
using namespace autosync::actors;
using autosync::test::content_of;

namespace {

// Counts outcomes as they arrive on actor threads; lets the test wait for them.
class outcomes {
public:
  outcome_callback track() {
    {
      std::lock_guard lock(mutex_);
      ++expected_;
    }
    return [this](command_outcome out) {
      std::lock_guard lock(mutex_);
      if (out.applied) {
        ++applied_;
      } else {
        failures_.push_back(out.refused ? out.refused->reason.to_string()
                                        : out.failed ? out.failed->to_string() : "?");
      }
      ++arrived_;
      cv_.notify_all();
    };
  }
  void wait() {
    std::unique_lock lock(mutex_);
    BOOST_REQUIRE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return arrived_ == expected_; }));
  }
  std::size_t applied() const { return applied_; }
  const std::vector<std::string>& failures() const { return failures_; }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t expected_ = 0, arrived_ = 0, applied_ = 0;
  std::vector<std::string> failures_;
};

command commit(const std::string& path, const std::string& op) {
  command cmd;
  cmd.device_id = "laptop";
  cmd.operation_id = op;
  cmd.body = commit_file{path, 0, content_of({"same content"})};
  return cmd;
}

// The outcome of `cmd` sent for `user`, once it arrives.
std::future<command_outcome> sent(user_directory& directory, const std::string& user, command cmd) {
  auto promise = std::make_shared<std::promise<command_outcome>>();
  auto outcome = promise->get_future();
  directory.send(user, std::move(cmd), [promise](command_outcome o) { promise->set_value(std::move(o)); });
  return outcome;
}

// Requires the command to be applied within 10 s (a loaded machine is slow, not stuck).
void require_applied(std::future<command_outcome>& outcome) {
  BOOST_REQUIRE(outcome.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  BOOST_TEST(outcome.get().applied.has_value());
}

// Whether the command still has no outcome after `wait`.
bool still_waiting(std::future<command_outcome>& outcome,
                   std::chrono::milliseconds wait = std::chrono::milliseconds(50)) {
  return outcome.wait_for(wait) == std::future_status::timeout;
}

bool eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The journal, counting the appends that reach it; it can hold one user's recovery (its
// snapshot read) until released.
class counting_store final : public event_store {
public:
  explicit counting_store(event_store& inner) : inner_(inner) {}
  std::size_t appends() const { return appends_.load(); }
  void hold_recovery_of(const std::string& user) {
    std::lock_guard lock(gate_mutex_);
    held_ = user;
  }
  void release() {
    std::lock_guard lock(gate_mutex_);
    held_.clear();
    held_snapshots_.clear();
    held_lookups_.clear();
    gate_.notify_all();
  }
  bool holding() const { return holding_.load(); }

  void append(const std::string& user,
              std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events,
              std::uint64_t expected_next_seq, journal::append_callback done) override {
    ++appends_;
    inner_.append(user, std::move(events), expected_next_seq, std::move(done));
  }
  status read(const std::string& user, std::uint64_t from, std::uint64_t to,
              const std::function<bool(journal::stored_event&&)>& visit,
              journal::chain_check check = journal::chain_check::by_journal) const override {
    if (unreadable_) return error(error_kind::unavailable, "the disk is away for a moment");
    return inner_.read(user, from, to, visit, check);
  }
  void set_unreadable(bool on) { unreadable_ = on; }
  result<std::optional<journal::snapshot>> latest_snapshot(const std::string& user) const override {
    wait_while(held_, user);
    return inner_.latest_snapshot(user);
  }
  result<std::optional<journal::snapshot>> snapshot_at(const std::string& user,
                                                       std::uint64_t at) const override {
    return inner_.snapshot_at(user, at);
  }
  status write_snapshot(const std::string& user, const journal::snapshot& snap) override {
    return inner_.write_snapshot(user, snap);
  }
  // Holds the user's queued snapshot writes (their caller's thread) until release().
  void hold_snapshots_of(const std::string& user) {
    std::lock_guard lock(gate_mutex_);
    held_snapshots_ = user;
  }
  void write_snapshot(const std::string& user, const journal::snapshot& snap,
                      journal::status_callback done) override {
    wait_while(held_snapshots_, user);
    inner_.write_snapshot(user, snap, std::move(done));
  }
  // Holds the user's chunk look-ups (as a cold chunk index read from disk would) until
  // release().
  void hold_lookups_of(const std::string& user) {
    std::lock_guard lock(gate_mutex_);
    held_lookups_ = user;
  }
  result<std::vector<std::optional<std::uint64_t>>> chunk_sizes(
      const std::string& user, const std::vector<sha256_digest>& ids) const override {
    wait_while(held_lookups_, user);
    return inner_.chunk_sizes(user, ids);
  }
  status list_chunks(const std::string& user,
                     const std::function<bool(const journal::stored_chunk&)>& visit) const override {
    return inner_.list_chunks(user, visit);
  }
  // Holds a reclaim's answer until release_reclaim().
  void hold_reclaims() { hold_reclaims_ = true; }
  void release_reclaim() {
    journal::reclaim_callback done;
    result<journal::reclaimed> answer = journal::reclaimed{};
    {
      std::lock_guard lock(gate_mutex_);
      done = std::move(held_reclaim_);
      answer = std::move(held_answer_);
      hold_reclaims_ = false;
    }
    if (done) done(std::move(answer));
  }
  bool reclaim_held() const {
    std::lock_guard lock(gate_mutex_);
    return static_cast<bool>(held_reclaim_);
  }
  void reclaim_chunks(const std::string& user, std::vector<sha256_digest> ids,
                      std::int64_t stored_before_us, journal::reclaim_callback done) override {
    inner_.reclaim_chunks(user, std::move(ids), stored_before_us,
                          [this, done](result<journal::reclaimed> r) {
                            std::lock_guard lock(gate_mutex_);
                            if (!hold_reclaims_) return done(std::move(r));
                            held_reclaim_ = done;
                            held_answer_ = std::move(r);
                          });
  }

private:
  event_store& inner_;
  std::atomic<bool> hold_reclaims_{false};
  journal::reclaim_callback held_reclaim_;
  result<journal::reclaimed> held_answer_ = journal::reclaimed{};
  std::atomic<std::size_t> appends_{0};
  std::atomic<bool> unreadable_{false};
  // Waits while `held` (one of the held_ names, read under the gate's lock) names `user`.
  void wait_while(const std::string& held, const std::string& user) const {
    std::unique_lock lock(gate_mutex_);
    if (held != user) return;
    holding_ = true;
    gate_.wait(lock, [&] { return held != user; });
    holding_ = false;
  }

  mutable std::mutex gate_mutex_;
  mutable std::condition_variable gate_;
  std::string held_;
  std::string held_snapshots_;
  std::string held_lookups_;
  mutable std::atomic<bool> holding_{false};
};

// While `gated` holds `held`'s work, a command for `held` waits and one for `other` goes
// through; once released, the held one is applied too.
void held_user_holds_up_no_other(user_directory& directory, counting_store& gated,
                                 const std::string& held, const std::string& other) {
  // Released before the directory stops, even when a check below fails.
  auto release = std::shared_ptr<void>(nullptr, [&](void*) { gated.release(); });
  auto waiting = sent(directory, held, commit("/held", "op-held"));
  BOOST_REQUIRE(eventually([&] { return gated.holding(); }));
  auto going = sent(directory, other, commit("/other", "op-other"));
  require_applied(going);
  BOOST_TEST(still_waiting(waiting));
  gated.release();
  require_applied(waiting);
}

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<journal::journal> j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store{*j};
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system = std::make_unique<caf::actor_system>(config);

  void upload(const std::string& user) {
    BOOST_REQUIRE(j->put_chunk_and_wait(user, sha256("same content"), "same content"));
  }
};

// One scheduler thread, so work run on it would stall every other user; `gated` can hold
// a user's recovery, chunk look-ups or snapshot writes.
struct single_thread_fixture : fixture {
  single_thread_fixture() {
    one_thread.set("scheduler.max-threads", 1);
    single = std::make_unique<caf::actor_system>(one_thread);
  }
  caf::actor_system_config one_thread;
  std::unique_ptr<caf::actor_system> single;
  counting_store gated{store};
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(many_users_at_once_lose_and_reorder_nothing, fixture) {
  constexpr int users = 100, per_user = 10;
  for (int u = 0; u < users; ++u) upload("user" + std::to_string(u));
  outcomes seen;
  {
    user_directory directory(*system, store, directory_options{});
    std::vector<std::thread> senders;
    for (int t = 0; t < 2; ++t) {
      senders.emplace_back([&, t] {
        for (int u = t; u < users; u += 2) {
          for (int i = 0; i < per_user; ++i) {
            const std::string user = "user" + std::to_string(u);
            directory.send(user, commit("/f" + std::to_string(i), user + "-op-" + std::to_string(i)),
                           seen.track());
          }
        }
      });
    }
    for (auto& s : senders) s.join();
    seen.wait();
    BOOST_TEST(directory.live_users() == static_cast<std::size_t>(users));
  }
  BOOST_TEST(seen.failures().empty(),
             seen.failures().size() << " failed, first: "
                                    << (seen.failures().empty() ? std::string() : seen.failures()[0]));
  BOOST_TEST(seen.applied() == static_cast<std::size_t>(users * per_user));
  for (int u = 0; u < users; ++u) {
    const std::string user = "user" + std::to_string(u);
    BOOST_TEST(j->head(user)->last_seq == static_cast<std::uint64_t>(per_user));
    // Each user's files arrived in the order sent: /f0 is seq 1, /f9 seq 10.
    std::uint64_t expected = 1;
    auto s = j->read_events(user, 1, UINT64_MAX, [&](journal::stored_event&& e) {
      auto path = e.event().getFileCommitted().getPath();
      BOOST_TEST(std::string(path.cStr()) == "/f" + std::to_string(expected - 1));
      ++expected;
      return true;
    });
    BOOST_REQUIRE(s);
  }
}

BOOST_FIXTURE_TEST_CASE(a_user_whose_recovery_failed_recovers_once_the_store_reads_again,
                        fixture) {
  upload("flaky");
  counting_store counted(store);
  directory_options options;
  options.recovery_retry_after = std::chrono::milliseconds(200);
  user_directory directory(*system, counted, options);
  counted.set_unreadable(true);
  outcomes refused;
  directory.send("flaky", commit("/a", "op-a"), refused.track());
  refused.wait();
  BOOST_REQUIRE_EQUAL(refused.failures().size(), 1u);
  BOOST_TEST(refused.failures()[0].find("the disk is away") != std::string::npos);
  counted.set_unreadable(false);
  // A client retrying all along keeps the user from going idle: it recovers anyway.
  bool applied = false;
  for (int i = 0; i < 100 && !applied; ++i) {
    outcomes retry;
    directory.send("flaky", commit("/a", "op-a"), retry.track());
    retry.wait();
    applied = retry.applied() == 1;
    if (!applied) std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  BOOST_TEST(applied);
  BOOST_TEST(j->head("flaky")->last_seq == 1u);
}

// A second owner appended for the user (two nodes, before the replicated log fences one
// off): the first actor's next append no longer follows the store's head. It fails, the
// actor stops serving from a state that is not the user's history, and a client retrying
// all along gets a fresh recovery, without the user ever going idle.
BOOST_FIXTURE_TEST_CASE(a_user_another_owner_appended_for_recovers_from_the_store, fixture) {
  upload("shared");
  directory_options options;
  options.idle_timeout = std::chrono::hours(1);  // only the refusal may passivate it
  user_directory first(*system, store, options);
  auto a = sent(first, "shared", commit("/a", "op-a"));
  require_applied(a);
  {
    user_directory second(*system, store, options);
    auto b = sent(second, "shared", commit("/b", "op-b"));
    require_applied(b);
  }
  auto refused = sent(first, "shared", commit("/c", "op-c"));
  BOOST_REQUIRE(refused.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  BOOST_TEST(!refused.get().applied.has_value());
  bool applied = false;
  for (int i = 0; i < 100 && !applied; ++i) {
    auto retry = sent(first, "shared", commit("/c", "op-c"));
    BOOST_REQUIRE(retry.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    applied = retry.get().applied.has_value();
    if (!applied) std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  BOOST_TEST(applied);
  BOOST_TEST(j->head("shared")->last_seq == 3u);  // /a, /b and /c, each once
}

BOOST_FIXTURE_TEST_CASE(an_idle_user_is_passivated_with_a_snapshot_and_comes_back_intact,
                        fixture) {
  upload("idle");
  directory_options options;
  options.idle_timeout = std::chrono::milliseconds(100);
  user_directory directory(*system, store, options);
  outcomes first;
  directory.send("idle", commit("/a", "op-a"), first.track());
  first.wait();
  BOOST_TEST(first.applied() == 1u);
  BOOST_REQUIRE(eventually([&] { return directory.live_users() == 0; }));
  // Snapshotted on passivation (queued to the journal as the actor stops).
  BOOST_TEST(eventually([&] {
    auto seqs = j->snapshot_seqs("idle");
    return seqs && *seqs == std::vector<std::uint64_t>{1};
  }));

  outcomes second;
  directory.send("idle", commit("/b", "op-b"), second.track());
  directory.send("idle", commit("/a", "op-a"), second.track());  // a retry: same answer
  second.wait();
  BOOST_TEST(second.applied() == 2u);
  BOOST_TEST(j->head("idle")->last_seq == 2u);
  BOOST_TEST(directory.activations() == 2u);
}

BOOST_FIXTURE_TEST_CASE(the_live_actor_cap_passivates_the_least_recently_used, fixture) {
  directory_options options;
  options.live_users_max = 5;
  user_directory directory(*system, store, options);
  for (int u = 0; u < 30; ++u) {
    const std::string user = "capped" + std::to_string(u);
    upload(user);
    outcomes one;
    directory.send(user, commit("/x", "op-x"), one.track());
    one.wait();
    BOOST_TEST(one.applied() == 1u, (one.failures().empty() ? std::string() : one.failures()[0]));
  }
  BOOST_TEST(eventually([&] { return directory.live_users() <= 5; }), directory.live_users());
  BOOST_TEST(directory.activations() == 30u);
  // A passivated user still has everything.
  outcomes again;
  directory.send("capped0", commit("/y", "op-y"), again.track());
  again.wait();
  BOOST_TEST(j->head("capped0")->last_seq == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_subscriber_sees_each_durable_event_in_order_and_keeps_the_user_live,
                        fixture) {
  upload("watched");
  directory_options options;
  options.idle_timeout = std::chrono::milliseconds(50);
  user_directory directory(*system, store, options);
  std::mutex m;
  std::vector<std::uint64_t> seqs;
  directory.subscribe("watched", 7, [&](std::uint64_t seq, schema::Event::Reader) {
    std::lock_guard lock(m);
    seqs.push_back(seq);
  });
  outcomes done;
  for (int i = 0; i < 20; ++i) {
    directory.send("watched", commit("/f" + std::to_string(i), "op-" + std::to_string(i)),
                   done.track());
  }
  done.wait();
  {
    std::lock_guard lock(m);
    BOOST_REQUIRE_EQUAL(seqs.size(), 20u);
    for (std::size_t i = 0; i < seqs.size(); ++i) BOOST_TEST(seqs[i] == i + 1);
  }
  // Idle for many timeouts, yet still live: a passivated actor would drop its subscribers.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  BOOST_TEST(directory.live_users() == 1u);
  directory.unsubscribe("watched", 7);
  BOOST_TEST(eventually([&] { return directory.live_users() == 0; }));
}

BOOST_FIXTURE_TEST_CASE(shutting_down_answers_every_command, fixture) {
  upload("busy");
  outcomes seen;
  {
    user_directory directory(*system, store, directory_options{});
    for (int i = 0; i < 200; ++i) {
      directory.send("busy", commit("/f" + std::to_string(i), "op-" + std::to_string(i)),
                     seen.track());
    }
  }  // destroyed at once, commands still queued
  seen.wait();
  BOOST_TEST_MESSAGE(seen.applied() << " applied, " << seen.failures().size()
                                    << " refused at shutdown");
  BOOST_TEST(seen.applied() + seen.failures().size() == 200u);
  for (const auto& f : seen.failures()) {
    BOOST_TEST(f.find("shutting down") != std::string::npos, f);
  }
  BOOST_TEST(j->head("busy")->last_seq == seen.applied());
}

BOOST_FIXTURE_TEST_CASE(a_slow_recovery_holds_up_no_other_user, single_thread_fixture) {
  upload("slow");
  upload("quick");
  gated.hold_recovery_of("slow");
  user_directory directory(*single, gated, directory_options{});
  held_user_holds_up_no_other(directory, gated, "slow", "quick");
  BOOST_TEST(j->head("slow")->last_seq == 1u);
}

namespace {

// The snapshot writes of user "large" are held, and every state counts as large.
struct held_snapshot_fixture : single_thread_fixture {
  held_snapshot_fixture() {
    upload("large");
    upload("quick");
    gated.hold_snapshots_of("large");
    options.user.snapshot_off_thread_entries = 1;
  }
  directory_options options;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_slow_chunk_lookup_holds_up_no_other_user, single_thread_fixture) {
  upload("cold");
  upload("warm");
  user_directory directory(*single, gated, directory_options{});
  // Both users live first: what is held below is the look-up, not a recovery.
  auto first_cold = sent(directory, "cold", commit("/first", "op-first"));
  require_applied(first_cold);
  auto first_warm = sent(directory, "warm", commit("/first", "op-first"));
  require_applied(first_warm);
  gated.hold_lookups_of("cold");
  held_user_holds_up_no_other(directory, gated, "cold", "warm");
  BOOST_TEST(j->head("cold")->last_seq == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_large_users_snapshot_holds_up_no_other_user, held_snapshot_fixture) {
  options.user.snapshot_every = 5;
  user_directory directory(*single, gated, options);
  auto release = std::shared_ptr<void>(nullptr, [&](void*) { gated.release(); });
  outcomes first_five;
  for (int i = 0; i < 5; ++i) {
    directory.send("large", commit("/l" + std::to_string(i), "op-l" + std::to_string(i)),
                   first_five.track());
  }
  first_five.wait();
  BOOST_REQUIRE(first_five.applied() == 5u);
  // The snapshot due at seq 5 is being written, off the actors' thread, and held there.
  BOOST_REQUIRE(eventually([&] { return gated.holding(); }));
  auto quick = sent(directory, "quick", commit("/q", "op-q"));
  auto large = sent(directory, "large", commit("/l5", "op-l5"));
  require_applied(quick);
  // The large user's own commands wait: its state is being read in place.
  BOOST_TEST(still_waiting(large));
  gated.release();
  require_applied(large);
  BOOST_REQUIRE(eventually([&] {
    auto seqs = j->snapshot_seqs("large");
    return seqs && !seqs->empty() && seqs->front() == 5u;
  }));
}

BOOST_FIXTURE_TEST_CASE(passivating_a_large_user_holds_up_no_other_user, held_snapshot_fixture) {
  options.idle_timeout = std::chrono::milliseconds(100);
  user_directory directory(*single, gated, options);
  auto release = std::shared_ptr<void>(nullptr, [&](void*) { gated.release(); });
  outcomes first;
  directory.send("large", commit("/l", "op-l"), first.track());
  first.wait();
  // Idle, it is passivated: its last snapshot is written off the actors' thread, held.
  BOOST_REQUIRE(eventually([&] { return gated.holding(); }));
  auto quick = sent(directory, "quick", commit("/q", "op-q"));
  require_applied(quick);
  // The large user has not stopped: it stops once its snapshot is out. (The quick one may
  // already be passivated in turn.)
  BOOST_TEST(directory.live_users() >= 1u);
  gated.release();
  BOOST_REQUIRE(eventually([&] {
    auto seqs = j->snapshot_seqs("large");
    return seqs && !seqs->empty() && seqs->back() == 1u;
  }));
  BOOST_REQUIRE(eventually([&] { return directory.live_users() <= 1u; }));
}

// At shutdown a large user's last snapshot is encoded on the snapshot thread too, and the
// directory waits until it is handed to the journal: the next start loads it instead of
// replaying the tail.
BOOST_FIXTURE_TEST_CASE(shutting_down_waits_for_a_large_users_last_snapshot,
                        held_snapshot_fixture) {
  auto directory = std::make_unique<user_directory>(*single, gated, options);
  std::future<void> stopping;
  // Released before anything waits for the directory, even when a check below fails.
  auto release = std::shared_ptr<void>(nullptr, [&](void*) { gated.release(); });
  outcomes three;
  for (int i = 0; i < 3; ++i) {
    directory->send("large", commit("/l" + std::to_string(i), "op-l" + std::to_string(i)),
                    three.track());
  }
  three.wait();
  BOOST_REQUIRE(three.applied() == 3u);
  stopping = std::async(std::launch::async, [&] { directory.reset(); });
  BOOST_REQUIRE(eventually([&] { return gated.holding(); }));
  BOOST_TEST((stopping.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout));
  gated.release();
  BOOST_REQUIRE(stopping.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  // Queued to the journal, which writes it in turn (and before it closes).
  BOOST_TEST(eventually([&] {
    auto seqs = j->snapshot_seqs("large");
    return seqs && std::find(seqs->begin(), seqs->end(), 3u) != seqs->end();
  }));
}

BOOST_FIXTURE_TEST_CASE(a_users_waiting_commands_share_one_append_and_reads_wait_for_them,
                        fixture) {
  upload("batched");
  counting_store counted(store);
  user_directory directory(*system, counted, directory_options{});
  constexpr int commands = 300;
  std::mutex m;
  std::vector<std::uint64_t> first_seqs;  // in the order the outcomes arrive
  std::vector<std::uint64_t> revisions;   // each command's own view of /same
  std::condition_variable cv;
  for (int i = 0; i < commands; ++i) {
    // Every other command rewrites one file on top of the revision before it, which only
    // works when each is decided against the state that includes the one before.
    command cmd = i % 2 == 0 ? commit("/f" + std::to_string(i), "op-" + std::to_string(i))
                             : commit("/same", "op-" + std::to_string(i));
    if (i % 2 == 1) std::get<commit_file>(cmd.body).base_revision = i == 1 ? 0 : i - 1;
    directory.send(
        "batched", std::move(cmd),
        [&, odd = i % 2 == 1](const namespace_state& state, const command_outcome&) {
          if (!odd) return;
          std::lock_guard lock(m);
          revisions.push_back(state.lookup("/same")->revision);
        },
        [&](command_outcome out) {
          std::lock_guard lock(m);
          first_seqs.push_back(out.applied ? out.applied->first_seq : 0);
          cv.notify_all();
        });
  }
  std::uint64_t seen_by_read = 0;
  std::size_t outcomes_before_read = 0;
  directory.read("batched", [&](const namespace_state* state, const error*) {
    std::lock_guard lock(m);
    seen_by_read = state->last_seq();
    outcomes_before_read = first_seqs.size();
    cv.notify_all();
  });
  {
    std::unique_lock lock(m);
    BOOST_REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] {
      return first_seqs.size() == commands && seen_by_read != 0;
    }));
  }
  // Each command wrote one event, in the order sent, each answered in order.
  for (std::size_t i = 0; i < first_seqs.size(); ++i) BOOST_TEST(first_seqs[i] == i + 1);
  for (std::size_t k = 0; k < revisions.size(); ++k) BOOST_TEST(revisions[k] == 2 * k + 2);
  BOOST_TEST(j->head("batched")->last_seq == static_cast<std::uint64_t>(commands));
  // The read came after every command and saw them all, durable and answered.
  BOOST_TEST(seen_by_read == static_cast<std::uint64_t>(commands));
  BOOST_TEST(outcomes_before_read == static_cast<std::size_t>(commands));
  // Commands that waited while an append was in flight went together: far fewer appends.
  BOOST_TEST_MESSAGE(counted.appends() << " appends for " << commands << " commands");
  BOOST_TEST(counted.appends() < static_cast<std::size_t>(commands) / 10);
}


// Reclaiming keeps every chunk a revision refers to, and a commit sent after it is decided
// only once the store has forgotten the rest: decided earlier, it could refer to one of
// them and find it gone after it was accepted.
BOOST_FIXTURE_TEST_CASE(a_reclaim_forgets_unreferenced_chunks_and_commands_wait_for_it, fixture) {
  upload("alice");  // "same content": the files below refer to it
  BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256("left behind"), "left behind"));
  counting_store counted(store);
  user_directory directory(*system, counted, directory_options{});
  auto first = sent(directory, "alice", commit("/kept", "op-1"));
  require_applied(first);

  counted.hold_reclaims();
  std::promise<result<journal::reclaimed>> reclaimed;
  directory.reclaim_chunks("alice", test::an_hour_from_now_us(),
                           [&](result<journal::reclaimed> r) { reclaimed.set_value(std::move(r)); });
  BOOST_REQUIRE(eventually([&] { return counted.reclaim_held(); }));
  // The store has forgotten the chunk; the actor has not heard yet.
  BOOST_TEST(!(*j->has_chunks("alice", {sha256("left behind")}))[0]);
  BOOST_TEST((*j->has_chunks("alice", {sha256("same content")}))[0]);
  const auto appends_before = counted.appends();
  auto second = sent(directory, "alice", commit("/later", "op-2"));
  BOOST_TEST(still_waiting(second, std::chrono::milliseconds(100)));
  BOOST_TEST(counted.appends() == appends_before);

  counted.release_reclaim();
  auto r = reclaimed.get_future().get();
  BOOST_REQUIRE_MESSAGE(r, test::describe(r));
  BOOST_TEST(r->chunks == 1u);
  BOOST_TEST(r->bytes == 11u);
  require_applied(second);
  BOOST_TEST(j->head("alice")->last_seq == 2u);
}
