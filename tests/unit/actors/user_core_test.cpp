#define BOOST_TEST_MODULE actors_user_core
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>

#include "../journal/journal_fixture.hpp"
#include "autosync/actors/user_core.hpp"
#include "namespace_fixture.hpp"
#include "test_data.hpp"

using namespace autosync;
using namespace autosync::actors;
using autosync::test::content_of;

namespace {

command make_command(command_body body, const std::string& op) {
  command cmd;
  cmd.device_id = "laptop";
  cmd.operation_id = op;
  cmd.timestamp_us = 1700000000000000;
  cmd.body = std::move(body);
  return cmd;
}

// Persists what is staged as one append and completes it, synchronously.
status persist(user_core& core, event_store& store) {
  auto pending = core.take_staged();
  std::promise<result<journal::appended>> answer;
  auto future = answer.get_future();
  store.append(core.user(), std::move(pending.events), pending.expected_next_seq,
               [&answer](result<journal::appended> r) { answer.set_value(std::move(r)); });
  return core.complete(future.get());
}

// What the user's actor does with one command alone, synchronously.
command_outcome run(user_core& core, event_store& store, command_body body,
                    const std::string& op) {
  auto out = core.stage(make_command(std::move(body), op));
  if (!core.has_staged()) return out;
  if (auto s = persist(core, store); !s) {
    command_outcome failed;
    failed.failed = s.err();
    return failed;
  }
  return out;
}

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<journal::journal> j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store{*j};

  std::unique_ptr<user_core> recover(const std::string& user, user_options options = {}) {
    auto core = user_core::recover(store, user, options);
    BOOST_REQUIRE_MESSAGE(core, test::describe(core));
    return std::move(core).value();
  }
  void upload(const std::string& user, const std::string& content) {
    BOOST_REQUIRE(j->put_chunk_and_wait(user, sha256(content), content));
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_command_is_applied_only_after_it_is_durable_and_subscribers_see_it,
                        fixture) {
  auto core = recover("alice");
  std::vector<std::pair<std::uint64_t, std::string>> seen;
  core->subscribe(1, [&](std::uint64_t seq, schema::Event::Reader e) {
    seen.emplace_back(seq, e.isFileCommitted() ? "commit" : e.isFolderCreated() ? "folder" : "other");
  });
  upload("alice", "hello");
  auto out = run(*core, store, commit_file{"/docs/a.txt", 0, content_of({"hello"})}, "op-1");
  BOOST_REQUIRE(out.applied.has_value());
  BOOST_TEST(out.applied->first_seq == 1u);
  BOOST_TEST(out.applied->last_seq == 2u);
  BOOST_TEST(core->state().lookup("/docs/a.txt") != nullptr);
  BOOST_TEST((seen == std::vector<std::pair<std::uint64_t, std::string>>{{1, "folder"}, {2, "commit"}}));
  auto head = j->head("alice");
  BOOST_REQUIRE(head);
  BOOST_TEST(head->last_hash == core->state().last_hash());
}

BOOST_FIXTURE_TEST_CASE(a_retry_returns_the_original_result_and_appends_nothing, fixture) {
  auto core = recover("bob");
  upload("bob", "x");
  auto first = run(*core, store, commit_file{"/x", 0, content_of({"x"})}, "op-same");
  auto retry = run(*core, store, commit_file{"/x", 0, content_of({"x"})}, "op-same");
  BOOST_TEST(retry.was_retry);
  BOOST_REQUIRE(retry.applied.has_value());
  BOOST_TEST(retry.applied->last_seq == first.applied->last_seq);
  BOOST_TEST(j->head("bob")->last_seq == 1u);
  // Also after the user was reloaded (the window survives recovery).
  auto reloaded = recover("bob");
  auto again = run(*reloaded, store, commit_file{"/x", 0, content_of({"x"})}, "op-same");
  BOOST_TEST(again.was_retry);
}

BOOST_FIXTURE_TEST_CASE(a_refused_command_answers_at_once_and_changes_nothing, fixture) {
  auto core = recover("carol");
  auto out = run(*core, store, commit_file{"/never-uploaded", 0, content_of({"zzz"})}, "op-1");
  BOOST_REQUIRE(out.refused.has_value());
  BOOST_TEST(out.refused->missing_chunks.size() == 1u);
  BOOST_TEST(!core->has_staged());
  BOOST_TEST(j->head("carol")->last_seq == 0u);
}

BOOST_FIXTURE_TEST_CASE(snapshots_every_n_events_and_recovery_from_snapshot_plus_tail, fixture) {
  auto core = recover("dave", user_options{5});
  upload("dave", "d");
  for (int i = 0; i < 12; ++i) {
    auto out = run(*core, store, commit_file{"/f" + std::to_string(i), 0, content_of({"d"})},
                   "op-" + std::to_string(i));
    BOOST_REQUIRE(out.applied.has_value());
  }
  // Snapshots are queued with the appends, so the last command's fsync covers them.
  auto seqs = j->snapshot_seqs("dave");
  BOOST_REQUIRE(seqs);
  BOOST_TEST(*seqs == (std::vector<std::uint64_t>{5, 10}));
  auto recovered = recover("dave");
  BOOST_TEST(recovered->last_snapshot_seq() == 10u);
  BOOST_TEST((recovered->state() == core->state()));
}

// A large state is snapshotted after half as many events as it has entries, not after
// every `snapshot_every`: encoding it costs per entry, so a fixed interval would make its
// snapshots cost more than its commits.
BOOST_FIXTURE_TEST_CASE(a_large_state_is_snapshotted_less_often, fixture) {
  auto core = recover("erin", user_options{10});
  upload("erin", "e");
  int op = 0;
  auto commit = [&](const std::string& path) {
    const auto* existing = core->state().lookup(path);
    auto out = run(*core, store, commit_file{path, existing ? existing->revision : 0, content_of({"e"})},
                   "op-" + std::to_string(op++));
    BOOST_REQUIRE(out.applied.has_value());
  };
  for (int i = 0; i < 99; ++i) commit("/f" + std::to_string(i));
  BOOST_REQUIRE(core->snapshot());  // 100 entries with the root, at seq 99
  BOOST_REQUIRE_EQUAL(core->state().entry_count(), 100u);
  // Edits add no entries: the next snapshot is due 50 events on, not 10.
  for (int i = 0; i < 48; ++i) commit("/f0");  // seqs 100-147
  commit("/f1");  // seq 148, 49 events on; it also covers anything queued behind 147
  auto seqs = j->snapshot_seqs("erin");
  BOOST_REQUIRE(seqs);
  BOOST_TEST(seqs->back() == 99u);
  commit("/f0");  // seq 149: due
  commit("/f0");  // the snapshot was queued behind 149's append; this one's fsync covers it
  seqs = j->snapshot_seqs("erin");
  BOOST_TEST(seqs->back() == 149u);
  auto recovered = recover("erin");
  BOOST_TEST((recovered->state() == core->state()));
}

BOOST_FIXTURE_TEST_CASE(passivation_snapshot_then_reactivation_gives_the_identical_state,
                        fixture) {
  auto core = recover("erin");
  upload("erin", "e");
  run(*core, store, commit_file{"/a/b", 0, content_of({"e"})}, "op-1");
  run(*core, store, move_entry{"/a", "/c"}, "op-2");
  BOOST_REQUIRE(core->snapshot());
  BOOST_TEST(core->last_snapshot_seq() == core->state().last_seq());
  auto reactivated = recover("erin");
  BOOST_TEST((reactivated->state() == core->state()));
  BOOST_TEST(reactivated->last_snapshot_seq() == core->state().last_seq());
}

BOOST_FIXTURE_TEST_CASE(a_stale_owner_cannot_fork_the_history, fixture) {
  auto owner = recover("fred");
  auto stale = recover("fred");  // e.g. the old owner, still running after a failover
  upload("fred", "f");
  BOOST_REQUIRE(run(*owner, store, commit_file{"/one", 0, content_of({"f"})}, "op-1").applied);
  auto out = run(*stale, store, commit_file{"/two", 0, content_of({"f"})}, "op-2");
  BOOST_REQUIRE(out.failed.has_value());
  BOOST_TEST(out.failed->kind() == error_kind::conflict);
  BOOST_TEST(j->head("fred")->last_seq == 1u);  // nothing appended
  // The stale state dropped its own command and reloaded the store's history.
  BOOST_TEST(stale->usable());
  BOOST_TEST((stale->state() == owner->state()));
  BOOST_TEST(stale->state().lookup("/two") == nullptr);
  BOOST_TEST(stale->state().lookup("/one") != nullptr);
}

BOOST_FIXTURE_TEST_CASE(commands_staged_together_are_decided_in_order_and_persisted_as_one_append,
                        fixture) {
  auto core = recover("gina");
  std::vector<std::uint64_t> notified;
  core->subscribe(1, [&](std::uint64_t seq, schema::Event::Reader) { notified.push_back(seq); });
  upload("gina", "g");
  auto a = core->stage(make_command(commit_file{"/a", 0, content_of({"g"})}, "op-a"));
  auto b = core->stage(make_command(commit_file{"/b", 0, content_of({"g"})}, "op-b"));
  // Decided against the state with /a staged: a create of /a again is a conflict.
  auto again = core->stage(make_command(commit_file{"/a", 0, content_of({"g"})}, "op-a2"));
  auto retry = core->stage(make_command(commit_file{"/b", 0, content_of({"g"})}, "op-b"));
  BOOST_REQUIRE(a.applied.has_value());
  BOOST_REQUIRE(b.applied.has_value());
  BOOST_TEST(a.applied->first_seq == 1u);
  BOOST_TEST(b.applied->first_seq == 2u);
  BOOST_REQUIRE(again.refused.has_value());
  BOOST_TEST(again.refused->reason.kind() == error_kind::conflict);
  BOOST_TEST(retry.was_retry);
  BOOST_TEST(retry.applied->first_seq == 2u);
  BOOST_TEST(core->staged_events() == 2u);
  BOOST_TEST(notified.empty());  // nothing is told before it is durable
  BOOST_REQUIRE(j->head("gina"));
  BOOST_TEST(j->head("gina")->last_seq == 0u);

  BOOST_REQUIRE(persist(*core, store));
  BOOST_TEST(j->head("gina")->last_seq == 2u);
  BOOST_TEST((notified == std::vector<std::uint64_t>{1, 2}));
  BOOST_TEST(j->head("gina")->last_hash == core->state().last_hash());
  BOOST_TEST((recover("gina")->state() == core->state()));
}

BOOST_FIXTURE_TEST_CASE(a_failed_append_drops_the_whole_batch_and_keeps_the_durable_state,
                        fixture) {
  auto owner = recover("hank");
  auto stale = recover("hank");
  upload("hank", "h");
  BOOST_REQUIRE(run(*owner, store, commit_file{"/kept", 0, content_of({"h"})}, "op-1").applied);
  // The stale core stages three commands on its old view; the store refuses their append.
  BOOST_REQUIRE(stale->stage(make_command(create_folder{"/x"}, "op-2")).applied);
  BOOST_REQUIRE(stale->stage(make_command(commit_file{"/x/y", 0, content_of({"h"})}, "op-3")).applied);
  BOOST_REQUIRE(stale->stage(make_command(move_entry{"/x", "/z"}, "op-4")).applied);
  BOOST_TEST(stale->state().lookup("/z/y") != nullptr);  // provisional
  auto s = persist(*stale, store);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::conflict);
  BOOST_TEST(!stale->has_staged());
  BOOST_TEST(stale->state().lookup("/z") == nullptr);
  BOOST_TEST(stale->state().lookup("/x") == nullptr);
  BOOST_TEST((stale->state() == owner->state()));
  // Reloaded, it serves again: the operation ids of the dropped batch were never applied.
  auto redo = run(*stale, store, create_folder{"/x"}, "op-2");
  BOOST_REQUIRE(redo.applied.has_value());
  BOOST_TEST(!redo.was_retry);
  BOOST_TEST(redo.applied->first_seq == 2u);
}

BOOST_FIXTURE_TEST_CASE(no_snapshot_holds_a_staged_command, fixture) {
  auto core = recover("iris");
  BOOST_REQUIRE(core->stage(make_command(create_folder{"/p"}, "op-1")).applied);
  BOOST_TEST(!core->snapshot());
  core->snapshot_in_background();
  BOOST_REQUIRE(persist(*core, store));
  BOOST_REQUIRE(core->snapshot());
  auto seqs = j->snapshot_seqs("iris");
  BOOST_REQUIRE(seqs);
  BOOST_TEST((*seqs == std::vector<std::uint64_t>{1}));
}

namespace {

result<journal::reclaimed> reclaim(user_core& core, std::int64_t stored_before_us) {
  std::promise<result<journal::reclaimed>> answer;
  auto future = answer.get_future();
  auto task = core.reclaim_chunks(
      stored_before_us, [&answer](result<journal::reclaimed> r) { answer.set_value(std::move(r)); });
  task();
  return future.get();
}

}  // namespace

// What any revision still held refers to stays: the current content, older revisions, a
// deleted file's (it can be undeleted); the rest goes, once older than the cutoff.
BOOST_FIXTURE_TEST_CASE(reclaiming_keeps_every_chunk_a_held_revision_refers_to, fixture) {
  for (const char* c : {"current", "older", "deleted", "orphan one", "orphan two"}) upload("alice", c);
  auto core = recover("alice");
  BOOST_REQUIRE(run(*core, store, commit_file{"/a.txt", 0, content_of({"older"})}, "op-1").applied);
  BOOST_REQUIRE(run(*core, store, commit_file{"/a.txt", 1, content_of({"current"})}, "op-2").applied);
  BOOST_REQUIRE(run(*core, store, commit_file{"/b.txt", 0, content_of({"deleted"})}, "op-3").applied);
  BOOST_REQUIRE(run(*core, store, delete_entry{"/b.txt", 3}, "op-4").applied);

  // A cutoff before every put keeps everything: the orphans may be uploads whose commit is
  // still to come.
  auto none = reclaim(*core, 1);
  BOOST_REQUIRE_MESSAGE(none, test::describe(none));
  BOOST_TEST(none->chunks == 0u);

  auto r = reclaim(*core, test::an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(r, test::describe(r));
  BOOST_TEST(r->chunks == 2u);
  auto has = j->has_chunks("alice", {sha256("current"), sha256("older"), sha256("deleted"),
                                     sha256("orphan one"), sha256("orphan two")});
  BOOST_REQUIRE(has);
  BOOST_TEST((*has == std::vector<bool>{true, true, true, false, false}));
  // Once retention drops the old revision and the tombstone, their chunks go too.
  BOOST_REQUIRE(run(*core, store, apply_retention{test::an_hour_from_now_us()}, "op-5").applied);
  auto after = reclaim(*core, test::an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(after, test::describe(after));
  BOOST_TEST(after->chunks == 2u);
  has = j->has_chunks("alice", {sha256("current"), sha256("older"), sha256("deleted")});
  BOOST_TEST((*has == std::vector<bool>{true, false, false}));
}
