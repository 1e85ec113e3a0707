#define BOOST_TEST_MODULE actors_replay
#include <boost/test/unit_test.hpp>

#include <limits>

#include <map>
#include <random>

#include "../journal/journal_fixture.hpp"
#include "autosync/actors/decide.hpp"
#include "autosync/actors/changes.hpp"
#include "autosync/actors/replay.hpp"
#include "journaled_user.hpp"
#include "namespace_fixture.hpp"
#include "raw_database.hpp"

using namespace autosync;
using namespace autosync::actors;
using autosync::test::content_of;

namespace {

namespace_state replay_from(const journal::journal& j, const std::string& user) {
  namespace_state fresh;
  auto s = j.read_events(user, 1, UINT64_MAX, [&](journal::stored_event&& e) {
    auto applied = fresh.apply(e.seq(), e.hash(), e.event());
    if (!applied) throw std::runtime_error(applied.to_string());
    return true;
  });
  if (!s) throw std::runtime_error(s.to_string());
  return fresh;
}

}  // namespace

BOOST_AUTO_TEST_CASE(live_state_equals_a_replay_of_the_journal_and_the_chain_heads_match) {
  test::temp_dir dir;
  auto j = test::open_journal(test::journal_options(dir.path()));
  test::journaled_user alice(*j, "alice");
  std::mt19937 rng(42);
  const std::vector<std::string> names = {"a", "b", "Docs", "docs", "f.txt"};
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    std::string path;
    for (int k = 0, depth = 1 + static_cast<int>(rng() % 3); k < depth; ++k) {
      path += "/" + names[rng() % names.size()];
    }
    const std::string piece = "content " + std::to_string(rng() % 50);
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(piece), piece));
    const node* at = alice.state.lookup(path);
    command_body body;
    switch (rng() % 4) {
      case 0:
      case 1: body = commit_file{path, at != nullptr ? at->revision : 0, content_of({piece})}; break;
      case 2: body = delete_entry{path, 0}; break;
      default: body = move_entry{path, "/moved" + path};
    }
    if (alice.run(std::move(body))) ++accepted;
  }
  BOOST_TEST(accepted > 100);
  const auto replayed = replay_from(*j, "alice");
  BOOST_TEST((replayed == alice.state));
  auto head = j->head("alice");
  BOOST_REQUIRE(head);
  BOOST_TEST(head->last_seq == alice.state.last_seq());
  BOOST_TEST(head->last_hash == alice.state.last_hash());

  // Recovery as an actor will do it: newest snapshot at or below a point, then the tail.
  const std::uint64_t snapshot_at = alice.state.last_seq() / 2;
  namespace_state prefix;
  auto s = j->read_events("alice", 1, snapshot_at, [&](journal::stored_event&& e) {
    return prefix.apply(e.seq(), e.hash(), e.event()).is_ok();
  });
  BOOST_REQUIRE(s);
  journal::snapshot snap{prefix.last_seq(), prefix.last_hash(), 0, schema::NAMESPACE_STATE_FORMAT,
                         prefix.encode()};
  BOOST_REQUIRE(j->write_snapshot("alice", snap));
  auto stored = j->read_snapshot("alice", UINT64_MAX);
  BOOST_REQUIRE(stored && stored->has_value());
  auto recovered = namespace_state::decode((*stored)->state, (*stored)->seq, (*stored)->head_hash);
  BOOST_REQUIRE_MESSAGE(recovered, test::describe(recovered));
  s = j->read_events("alice", (*stored)->seq + 1, UINT64_MAX, [&](journal::stored_event&& e) {
    return recovered->apply(e.seq(), e.hash(), e.event()).is_ok();
  });
  BOOST_REQUIRE(s);
  BOOST_TEST((*recovered == alice.state));
}

BOOST_AUTO_TEST_CASE(a_commit_of_chunks_never_uploaded_is_refused_by_the_real_chunk_store) {
  test::temp_dir dir;
  auto j = test::open_journal(test::journal_options(dir.path()));
  test::journaled_user bob(*j, "bob");
  BOOST_REQUIRE(j->put_chunk_and_wait("bob", sha256("uploaded"), "uploaded"));
  BOOST_TEST(bob.run(commit_file{"/ok", 0, content_of({"uploaded"})}));
  BOOST_TEST(!bob.run(commit_file{"/missing", 0, content_of({"uploaded", "never"})}));
  BOOST_TEST(bob.state.lookup("/missing") == nullptr);
  BOOST_TEST(bob.state.last_seq() == 1u);
}

BOOST_AUTO_TEST_CASE(pipelined_replay_equals_the_live_state_and_reports_a_gap) {
  test::temp_dir dir;
  namespace_state live;
  {
    auto j = test::open_journal(test::journal_options(dir.path()));
    test::journaled_user carol(*j, "carol");
    BOOST_REQUIRE(j->put_chunk_and_wait("carol", sha256("c"), "c"));
    // More than one reader batch (1024 events), so the hand-over between threads is used.
    for (int i = 0; i < 2500; ++i) {
      BOOST_REQUIRE(carol.run(commit_file{"/d" + std::to_string(i % 7) + "/f" + std::to_string(i),
                                          0, content_of({"c"})}));
    }
    live = carol.state;
    journal_event_store store(*j);
    namespace_state replayed;
    BOOST_REQUIRE(replay_events(store, "carol", replayed));
    BOOST_TEST((replayed == live));
    namespace_state partial;
    BOOST_REQUIRE(replay_events(store, "carol", partial, 1500));
    BOOST_TEST(partial.last_seq() == 1500u);
  }
  test::raw_database(dir.path()).delete_event("carol", 2000);
  auto j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store(*j);
  namespace_state broken;
  auto s = replay_events(store, "carol", broken);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("user carol seq 2000") != std::string::npos, s.err().message());
  BOOST_TEST(broken.last_seq() < 2000u);
}

// AES-GCM binds an event to its user and seq, not to the history it belongs to: once a
// copy of the journal is written on, one seq exists in two histories that both open under
// the user's key. Only the hash chain tells them apart, so replay, which leaves the chain
// to apply() (its hashing runs on the applying thread), must still refuse the splice.
BOOST_AUTO_TEST_CASE(replay_refuses_an_event_spliced_in_from_another_history_of_the_user) {
  test::temp_dir dir;
  const auto main_dir = dir.path() / "main";
  const auto fork_dir = dir.path() / "fork";
  {
    auto j = test::open_journal(test::journal_options(main_dir));
    test::journaled_user dave(*j, "dave");
    for (int i = 1; i <= 4; ++i) BOOST_REQUIRE(dave.run(create_folder{"/d" + std::to_string(i)}));
    BOOST_REQUIRE(j->create_checkpoint(fork_dir));
    for (int i = 5; i <= 8; ++i) BOOST_REQUIRE(dave.run(create_folder{"/main" + std::to_string(i)}));
  }
  {
    auto j = test::open_journal(test::journal_options(fork_dir));
    test::journaled_user forked(*j, "dave");
    forked.operation_prefix = "fork-op-";
    forked.state = replay_from(*j, "dave");
    BOOST_REQUIRE(forked.state.last_seq() == 4u);
    for (int i = 5; i <= 8; ++i) BOOST_REQUIRE(forked.run(create_folder{"/fork" + std::to_string(i)}));
  }
  std::string spliced;
  {
    test::raw_database fork(fork_dir);
    BOOST_REQUIRE(fork.db->Get(rocksdb::ReadOptions(), fork.handles[1],
                               test::raw_database::event_key("dave", 6), &spliced).ok());
  }
  {
    test::raw_database main(main_dir);
    BOOST_REQUIRE(main.db->Put(rocksdb::WriteOptions(), main.handles[1],
                               test::raw_database::event_key("dave", 6), spliced).ok());
  }
  auto j = test::open_journal(test::journal_options(main_dir));
  // The spliced event opens: it is a genuine event of this user at this seq.
  BOOST_REQUIRE(j->read_events("dave", 6, 6, [](journal::stored_event&&) { return true; },
                               journal::chain_check::by_caller));

  journal_event_store store(*j);
  namespace_state replayed;
  auto s = replay_events(store, "dave", replayed);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("seq 6") != std::string::npos, s.err().message());
  BOOST_TEST(s.err().message().find("chain is broken") != std::string::npos, s.err().message());
  BOOST_TEST(replayed.last_seq() == 5u);
  BOOST_TEST(!state_at(store, "dave", 8));

  // The journal's own check refuses it too.
  s = j->read_events("dave", 1, 8, [](journal::stored_event&&) { return true; });
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().message().find("user dave seq 6") != std::string::npos, s.err().message());
}

BOOST_AUTO_TEST_CASE(point_in_time_views_by_seq_and_by_time_match_what_was_live_then) {
  test::temp_dir dir;
  auto j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store(*j);
  test::journaled_user dana(*j, "dana");
  BOOST_REQUIRE(j->put_chunk_and_wait("dana", sha256("v"), "v"));
  std::map<std::uint64_t, std::string> live_at;  // seq -> encoded live state then
  for (int i = 0; i < 40; ++i) {
    const std::string path = "/p" + std::to_string(i % 5);
    const node* at = dana.state.lookup(path);
    command_body body = i % 7 == 6 ? command_body{delete_entry{path, 0}}
                                   : command_body{commit_file{path, at ? at->revision : 0,
                                                              content_of({"v"})}};
    if (dana.run(std::move(body))) live_at[dana.state.last_seq()] = dana.state.encode();
    if (i == 20) {  // a snapshot in the middle: later views start from it
      journal::snapshot snap{dana.state.last_seq(), dana.state.last_hash(), 0,
                             schema::NAMESPACE_STATE_FORMAT, dana.state.encode()};
      BOOST_REQUIRE(j->write_snapshot("dana", snap));
    }
  }
  BOOST_REQUIRE(live_at.size() > 20u);
  for (const auto& [seq, encoded] : live_at) {
    auto view = state_at(store, "dana", seq);
    BOOST_REQUIRE_MESSAGE(view, test::describe(view));
    BOOST_TEST(view->encode() == encoded, "at seq " << seq);
  }
  // journaled_user stamps command n at n microseconds: time maps to the events of <= n.
  auto seq = seq_at_time(store, "dana", 10);
  BOOST_REQUIRE(seq);
  BOOST_TEST(*seq == 10u);
  BOOST_TEST(*seq_at_time(store, "dana", 0) == 0u);
  BOOST_TEST(state_at(store, "dana", 0)->last_seq() == 0u);
}

BOOST_AUTO_TEST_CASE(the_change_feed_pages_through_changes_in_order_from_any_cursor) {
  test::temp_dir dir;
  auto j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store(*j);
  test::journaled_user erik(*j, "erik");
  BOOST_REQUIRE(j->put_chunk_and_wait("erik", sha256("e"), "e"));
  BOOST_REQUIRE(erik.run(commit_file{"/docs/a.txt", 0, content_of({"e"})}));  // seq 1 folder, 2 file
  BOOST_REQUIRE(erik.run(move_entry{"/docs", "/papers"}));                    // 3
  BOOST_REQUIRE(erik.run(delete_entry{"/papers/a.txt", 0}));                  // 4
  // 5: reclaims the tombstone of a.txt, which is not a change devices see.
  BOOST_REQUIRE(erik.run(apply_retention{std::numeric_limits<std::int64_t>::max()}));
  BOOST_REQUIRE(erik.run(set_quota{1000}));                                   // 6

  auto all = changes_since(store, "erik", 0, 100);
  BOOST_REQUIRE_MESSAGE(all, test::describe(all));
  BOOST_REQUIRE_EQUAL(all->changes.size(), 5u);
  BOOST_TEST(all->cursor == 6u);
  BOOST_TEST(!all->more);
  const auto& c = all->changes;
  BOOST_TEST((c[0].what == change::kind::folder_created && c[0].path == "/docs"));
  BOOST_TEST((c[1].what == change::kind::committed && c[1].path == "/docs/a.txt"));
  BOOST_TEST(c[1].revision == 2u);
  BOOST_TEST(c[1].content.size == 1u);
  BOOST_TEST((c[2].what == change::kind::moved && c[2].from_path == "/docs" && c[2].path == "/papers"));
  BOOST_TEST(c[2].folder);
  BOOST_TEST((c[3].what == change::kind::deleted && c[3].path == "/papers/a.txt"));
  BOOST_TEST((c[4].what == change::kind::quota_changed && c[4].quota_bytes == 1000u));
  BOOST_TEST(c[4].seq == 6u);

  BOOST_TEST(!c[3].folder);

  // Pages cut by their size too, with at least one change each: the same changes.
  std::vector<std::uint64_t> seqs;
  for (std::uint64_t cursor = 0, pages = 0;; ++pages) {
    auto page = changes_since(store, "erik", cursor, 100, std::nullopt, /*bytes_max=*/1);
    BOOST_REQUIRE(page);
    for (const auto& ch : page->changes) seqs.push_back(ch.seq);
    cursor = page->cursor;
    if (!page->more) break;
    BOOST_TEST(page->changes.size() == 1u);
    BOOST_REQUIRE(pages < 10u);
  }
  BOOST_TEST(seqs == (std::vector<std::uint64_t>{1, 2, 3, 4, 6}));

  auto first = changes_since(store, "erik", 0, 2);  // pages
  BOOST_REQUIRE(first);
  BOOST_TEST(first->changes.size() == 2u);
  BOOST_TEST(first->more);
  auto rest = changes_since(store, "erik", first->cursor, 100);
  BOOST_REQUIRE(rest);
  BOOST_TEST(rest->changes.size() == 3u);
  BOOST_TEST(rest->changes.front().seq == 3u);
  auto none = changes_since(store, "erik", 6, 100);
  BOOST_REQUIRE(none);
  BOOST_TEST(none->changes.empty());
  BOOST_TEST(none->cursor == 6u);
  // The cursor's event named by its hash: the same history passes, another is refused.
  BOOST_TEST(!none->cursor_hash.is_zero());
  BOOST_TEST(changes_since(store, "erik", 6, 100, none->cursor_hash).has_value());
  auto other = changes_since(store, "erik", 6, 100, sha256("another history"));
  BOOST_REQUIRE(!other.has_value());
  BOOST_TEST(other.err().kind() == error_kind::stale_cursor);
  BOOST_TEST(other.err().message().find("restored from a backup") != std::string::npos);

  BOOST_REQUIRE(erik.run(delete_entry{"/papers", 0}));  // 7: a folder's delete says so
  auto folder_gone = changes_since(store, "erik", 6, 100);
  BOOST_REQUIRE(folder_gone);
  BOOST_REQUIRE_EQUAL(folder_gone->changes.size(), 1u);
  BOOST_TEST((folder_gone->changes[0].what == change::kind::deleted));
  BOOST_TEST(folder_gone->changes[0].folder);
}

// 2^64-1 as cursor + 1 wrapped round to 0 and paged through everything; a cursor past the
// head answered "nothing yet" for ever.
BOOST_AUTO_TEST_CASE(a_cursor_past_the_users_newest_change_is_invalid) {
  test::temp_dir dir;
  auto j = test::open_journal(test::journal_options(dir.path()));
  journal_event_store store(*j);
  test::journaled_user erik(*j, "erik");
  BOOST_REQUIRE(erik.run(create_folder{"/a"}));  // 1
  BOOST_REQUIRE(erik.run(create_folder{"/b"}));  // 2
  for (std::uint64_t bad : {std::uint64_t{3}, std::uint64_t{1000},
                            std::numeric_limits<std::uint64_t>::max()}) {
    auto page = changes_since(store, "erik", bad, 100);
    BOOST_REQUIRE_MESSAGE(!page, "cursor " << bad << " accepted");
    BOOST_TEST(page.err().kind() == error_kind::stale_cursor);
    BOOST_TEST(page.err().message().find("list again to get a fresh cursor") != std::string::npos,
               page.err().message());
    auto checked = check_cursor(store, "erik", bad);
    BOOST_REQUIRE(!checked);
    BOOST_TEST(checked.err().kind() == error_kind::stale_cursor);
  }
  for (std::uint64_t good : {0, 1, 2}) {
    BOOST_TEST(check_cursor(store, "erik", good).is_ok(), good);
    BOOST_TEST(changes_since(store, "erik", good, 100).has_value(), good);
  }
  // A user with no events yet: only 0.
  BOOST_TEST(check_cursor(store, "nobody", 0).is_ok());
  BOOST_TEST(changes_since(store, "nobody", 0, 100)->changes.empty());
  BOOST_TEST(!changes_since(store, "nobody", 1, 100).has_value());
}
