#define BOOST_TEST_MODULE journal_events
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <rocksdb/db.h>

#include <condition_variable>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "journal_fixture.hpp"
#include "raw_database.hpp"

using namespace autosync;
using namespace autosync::test;

namespace {

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }


}  // namespace

BOOST_AUTO_TEST_CASE(every_event_kind_round_trips) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));

  journal::append_request req;
  req.user = "alice";
  req.events.push_back(commit_event("/docs/a.txt", 11, 0, "abc"));
  {
    auto m = new_event(1, "phone", "op-del");
    auto d = m->getRoot<schema::Event>().initFileDeleted();
    d.setNodeId(11);
    d.setPath("/docs/a.txt");
    d.setBaseRevision(1);
    req.events.push_back(std::move(m));
  }
  {
    auto m = new_event(2, "phone", "op-mv");
    auto mv = m->getRoot<schema::Event>().initMoved();
    mv.setNodeId(12);
    mv.setFromPath("/old");
    mv.setToPath("/new");
    mv.setIsFolder(true);
    req.events.push_back(std::move(m));
  }
  {
    auto m = new_event(3, "tablet", "op-mkdir");
    auto f = m->getRoot<schema::Event>().initFolderCreated();
    f.setNodeId(13);
    f.setPath("/photos");
    req.events.push_back(std::move(m));
  }
  {
    auto m = new_event(4, "tablet", "op-restore");
    auto r = m->getRoot<schema::Event>().initRevisionRestored();
    r.setNodeId(11);
    r.setPath("/docs/a.txt");
    r.setRestoredRevision(1);
    r.setBaseRevision(0);
    r.initContent().setSize(3);
    req.events.push_back(std::move(m));
  }
  {
    auto m = new_event(5, "", "");
    m->getRoot<schema::Event>().initQuotaChanged().setQuotaBytes(1u << 30);
    req.events.push_back(std::move(m));
  }
  auto appended = j->append_and_wait(std::move(req));
  BOOST_REQUIRE_MESSAGE(appended, describe(appended));
  BOOST_TEST(appended->first_seq == 1u);
  BOOST_TEST(appended->last_seq == 6u);

  std::vector<journal::stored_event> events;
  auto s = j->read_events("alice", 1, 100, [&](journal::stored_event&& e) {
    events.push_back(std::move(e));
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s, s.to_string());
  BOOST_REQUIRE_EQUAL(events.size(), 6u);

  auto c = events[0].event();
  BOOST_TEST(c.getSeq() == 1u);
  BOOST_TEST(c.getFormatVersion() == schema::EVENT_FORMAT_VERSION);
  BOOST_TEST(text(c.getDeviceId()) == "laptop");
  BOOST_TEST(c.getPrevHash().size() == 32u);
  BOOST_TEST(sha256_digest::from_bytes({reinterpret_cast<const char*>(c.getPrevHash().begin()),
                                        32})->is_zero());
  BOOST_REQUIRE(c.isFileCommitted());
  BOOST_TEST(c.getFileCommitted().getNodeId() == 11u);
  BOOST_TEST(text(c.getFileCommitted().getPath()) == "/docs/a.txt");
  BOOST_TEST(c.getFileCommitted().getContent().getSize() == 3u);
  BOOST_TEST(c.getFileCommitted().getContent().getChunks().size() == 1u);

  auto d = events[1].event();
  BOOST_REQUIRE(d.isFileDeleted());
  BOOST_TEST(d.getFileDeleted().getBaseRevision() == 1u);
  BOOST_TEST(text(d.getOperationId()) == "op-del");
  auto mv = events[2].event();
  BOOST_REQUIRE(mv.isMoved());
  BOOST_TEST(text(mv.getMoved().getToPath()) == "/new");
  BOOST_TEST(mv.getMoved().getIsFolder());
  auto f = events[3].event();
  BOOST_REQUIRE(f.isFolderCreated());
  BOOST_TEST(text(f.getFolderCreated().getPath()) == "/photos");
  auto r = events[4].event();
  BOOST_REQUIRE(r.isRevisionRestored());
  BOOST_TEST(r.getRevisionRestored().getRestoredRevision() == 1u);
  auto q = events[5].event();
  BOOST_REQUIRE(q.isQuotaChanged());
  BOOST_TEST(q.getQuotaChanged().getQuotaBytes() == (1u << 30));
  BOOST_TEST(q.getTimestampUs() == 5);

  // The chain: each prevHash names the previous event's hash, which hashes its bytes.
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(sha256(events[i].canonical_bytes()) == events[i].hash());
    if (i > 0) {
      auto prev = events[i].event().getPrevHash();
      BOOST_TEST(std::string_view(reinterpret_cast<const char*>(prev.begin()), prev.size()) ==
                 events[i - 1].hash().view());
    }
  }
  auto head = j->head("alice");
  BOOST_REQUIRE(head);
  BOOST_TEST(head->last_seq == 6u);
  BOOST_TEST(head->last_hash == events[5].hash());
}

BOOST_DATA_TEST_CASE(concurrent_appenders_get_dense_gap_free_sequences,
                     boost::unit_test::data::make({1, 2, 3}), write_shards) {
  temp_dir dir;
  auto options = journal_options(dir.path());
  options.write_shards = static_cast<std::size_t>(write_shards);
  auto j = open_journal(options);
  constexpr int threads = 8;
  constexpr int per_thread = 200;
  const std::vector<std::string> users = {"u1", "u2", "u3"};
  std::vector<std::thread> workers;
  std::mutex seen_mutex;
  std::map<std::string, std::set<std::uint64_t>> acknowledged;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const auto& user = users[static_cast<std::size_t>(i + t) % users.size()];
        auto seq = append_commit(*j, user, "/t" + std::to_string(t) + "/" + std::to_string(i));
        std::lock_guard lock(seen_mutex);
        BOOST_TEST(acknowledged[user].insert(seq).second);  // never the same seq twice
      }
    });
  }
  for (auto& w : workers) w.join();

  std::size_t total = 0;
  for (const auto& user : users) {
    auto events = all_events(*j, user);
    total += events.size();
    for (std::size_t i = 0; i < events.size(); ++i) BOOST_TEST(events[i].seq == i + 1);
    BOOST_TEST(acknowledged[user].size() == events.size());
    BOOST_TEST(*acknowledged[user].rbegin() == events.size());
  }
  BOOST_TEST(total == static_cast<std::size_t>(threads * per_thread));
}

BOOST_AUTO_TEST_CASE(async_appends_for_one_user_complete_in_sequence_order) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  std::mutex m;
  std::vector<std::uint64_t> completed;
  std::promise<void> all_done;
  constexpr int count = 500;
  for (int i = 0; i < count; ++i) {
    j->append(request_for("bob", commit_event("/f" + std::to_string(i))),
              [&](result<journal::appended> r) {
                BOOST_REQUIRE(r);
                std::lock_guard lock(m);
                completed.push_back(r->last_seq);
                if (completed.size() == count) all_done.set_value();
              });
  }
  all_done.get_future().wait();
  for (std::size_t i = 0; i < completed.size(); ++i) BOOST_TEST(completed[i] == i + 1);
}

BOOST_AUTO_TEST_CASE(reopen_after_close_keeps_every_event_and_continues_the_chain) {
  temp_dir dir;
  std::vector<seen_event> before;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 50; ++i) append_commit(*j, "carol", "/f" + std::to_string(i));
    before = all_events(*j, "carol");
  }
  auto j = open_journal(journal_options(dir.path()));
  auto after = all_events(*j, "carol");
  BOOST_REQUIRE_EQUAL(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    BOOST_TEST(after[i].hash == before[i].hash);
    BOOST_TEST(after[i].canonical == before[i].canonical);
  }
  BOOST_TEST(append_commit(*j, "carol", "/next") == 51u);
  BOOST_TEST(all_events(*j, "carol").size() == 51u);
}

BOOST_AUTO_TEST_CASE(append_with_a_stale_expected_seq_is_a_conflict_and_writes_nothing) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  append_commit(*j, "dave", "/a");
  auto req = request_for("dave", commit_event("/b"));
  req.expected_next_seq = 1;  // someone else already wrote seq 1
  auto r = j->append_and_wait(std::move(req));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::conflict);
  BOOST_TEST(all_events(*j, "dave").size() == 1u);

  auto ok = request_for("dave", commit_event("/b"));
  ok.expected_next_seq = 2;
  BOOST_TEST(j->append_and_wait(std::move(ok)).has_value());
}

BOOST_AUTO_TEST_CASE(bad_requests_get_typed_errors_and_change_nothing) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  auto empty_user = j->append_and_wait(request_for("", commit_event("/a")));
  BOOST_REQUIRE(!empty_user);
  BOOST_TEST(empty_user.err().kind() == error_kind::invalid);
  auto control = j->append_and_wait(request_for(std::string("ev\nil"), commit_event("/a")));
  BOOST_REQUIRE(!control);
  BOOST_TEST(control.err().kind() == error_kind::invalid);
  journal::append_request none;
  none.user = "erin";
  auto no_events = j->append_and_wait(std::move(none));
  BOOST_REQUIRE(!no_events);
  BOOST_TEST(no_events.err().kind() == error_kind::invalid);

  auto huge = new_event();
  auto chunks = huge->getRoot<schema::Event>().initFileCommitted().initContent().initChunks(
      journal::limits::event_bytes_max / 8);  // 8 bytes each, canonically
  for (auto c : chunks) c.setSize(1);
  journal::append_request big;
  big.user = "erin";
  big.events.push_back(commit_event("/fine"));
  big.events.push_back(std::move(huge));
  auto too_large = j->append_and_wait(std::move(big));
  BOOST_REQUIRE(!too_large);
  BOOST_TEST(too_large.err().kind() == error_kind::too_large);
  // All or nothing: the valid first event of that append was not written either.
  BOOST_TEST(all_events(*j, "erin").empty());
  BOOST_TEST(append_commit(*j, "erin", "/a") == 1u);
}

BOOST_AUTO_TEST_CASE(reads_honour_bounds_and_an_unknown_user_has_no_events) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  for (int i = 0; i < 20; ++i) append_commit(*j, "frank", "/f" + std::to_string(i));
  std::vector<std::uint64_t> seqs;
  auto s = j->read_events("frank", 5, 9, [&](journal::stored_event&& e) {
    seqs.push_back(e.seq());
    return true;
  });
  BOOST_REQUIRE(s);
  BOOST_TEST(seqs == (std::vector<std::uint64_t>{5, 6, 7, 8, 9}));
  BOOST_TEST(all_events(*j, "nobody").empty());
  auto head = j->head("nobody");
  BOOST_REQUIRE(head);
  BOOST_TEST(head->last_seq == 0u);

  std::vector<std::string> users;
  s = j->list_users([&](std::string_view u, const result<journal::user_head>& h) {
    users.emplace_back(u);
    BOOST_REQUIRE(h);
    BOOST_TEST(h->last_seq == 20u);
    return true;
  });
  BOOST_REQUIRE(s);
  BOOST_TEST(users == std::vector<std::string>{"frank"});
}

BOOST_AUTO_TEST_CASE(snapshots_are_found_at_or_below_a_seq_and_must_sit_on_the_chain) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  for (int i = 0; i < 30; ++i) append_commit(*j, "gina", "/f" + std::to_string(i));
  auto events = all_events(*j, "gina");
  for (std::uint64_t seq : {10u, 20u}) {
    journal::snapshot snap;
    snap.seq = seq;
    snap.head_hash = events[seq - 1].hash;
    snap.timestamp_us = 99;
    snap.state_format = 1;
    snap.state = "state at " + std::to_string(seq);
    BOOST_REQUIRE(j->write_snapshot("gina", snap));
  }
  auto none = j->read_snapshot("gina", 9);
  BOOST_REQUIRE(none);
  BOOST_TEST(!none->has_value());
  auto at15 = j->read_snapshot("gina", 15);
  BOOST_REQUIRE(at15);
  BOOST_REQUIRE(at15->has_value());
  BOOST_TEST((*at15)->seq == 10u);
  BOOST_TEST((*at15)->state == "state at 10");
  BOOST_TEST((*at15)->head_hash == events[9].hash);
  auto latest = j->read_snapshot("gina", UINT64_MAX);
  BOOST_REQUIRE(latest && latest->has_value());
  BOOST_TEST((*latest)->seq == 20u);
  auto seqs = j->snapshot_seqs("gina");
  BOOST_REQUIRE(seqs);
  BOOST_TEST(*seqs == (std::vector<std::uint64_t>{10, 20}));

  journal::snapshot wrong;
  wrong.seq = 25;
  wrong.head_hash = events[3].hash;
  auto s = j->write_snapshot("gina", wrong);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::invalid);
  wrong.seq = 31;  // beyond the chain
  s = j->write_snapshot("gina", wrong);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::invalid);
}

// Each snapshot is a whole copy of the state: old ones are thinned as new ones come, the
// older the sparser, so their number grows with the log of the history while a view of
// any past point still finds one not much further back than the point is old.
BOOST_AUTO_TEST_CASE(old_snapshots_thin_out_with_age_and_views_of_any_point_still_find_one) {
  temp_dir dir;
  constexpr std::uint64_t every = 10;
  auto write_up_to = [&](journal::journal& j, std::uint64_t from, std::uint64_t to) {
    auto events = all_events(j, "ines");
    for (std::uint64_t seq = from; seq <= to; seq += every) {
      journal::snapshot snap;
      snap.seq = seq;
      snap.head_hash = events[seq - 1].hash;
      snap.state_format = 1;
      snap.state = "state at " + std::to_string(seq);
      BOOST_REQUIRE(j.write_snapshot("ines", snap));
    }
  };
  auto check = [&](journal::journal& j, std::uint64_t newest) {
    auto seqs = j.snapshot_seqs("ines");
    BOOST_REQUIRE(seqs);
    BOOST_TEST(seqs->back() == newest);
    // About log2 of the history in intervals, against one per interval when all are kept.
    const auto bound = 3 + static_cast<std::size_t>(std::log2(static_cast<double>(newest / every)));
    BOOST_TEST(seqs->size() <= bound, seqs->size() << " snapshots at seq " << newest);
    for (std::uint64_t p = every; p <= newest; ++p) {
      auto found = j.read_snapshot("ines", p);
      BOOST_REQUIRE(found);
      const std::uint64_t from = found->has_value() ? (*found)->seq : 0;
      if (found->has_value()) BOOST_TEST((*found)->state == "state at " + std::to_string(from));
      // A view of p replays p - from events: at most about twice p's age.
      BOOST_TEST(p - from <= 2 * (newest - p + every), "view at " << p << " starts at " << from);
    }
  };
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 600; ++i) append_commit(*j, "ines", "/f" + std::to_string(i));
    write_up_to(*j, every, 300);
    check(*j, 300);
  }
  // The list of kept snapshots survives a restart, and thinning goes on from it.
  auto j = open_journal(journal_options(dir.path()));
  write_up_to(*j, 310, 600);
  check(*j, 600);
  auto seqs = j->snapshot_seqs("ines");
  BOOST_REQUIRE(seqs);
  BOOST_TEST(seqs->front() <= 30u);  // the oldest stretch keeps its oldest
}

// A journal from before the list of kept snapshots, or one whose list is damaged: its
// snapshots are found by a scan of their keys at the next snapshot, and thinned with it.
BOOST_AUTO_TEST_CASE(snapshots_the_list_does_not_name_are_found_and_thinned_too) {
  for (const char* list : {"", "damaged", "descending"}) {
    BOOST_TEST_CONTEXT("list: " << (*list ? list : "none")) {
      temp_dir dir;
      {
        auto j = open_journal(journal_options(dir.path()));
        for (int i = 0; i < 400; ++i) append_commit(*j, "jules", "/f" + std::to_string(i));
      }
      {
        // Forty snapshot keys, as an older build left them. Only keys are looked at by
        // thinning; the values here are never read.
        test::raw_database raw(dir.path());
        for (std::uint64_t seq = 10; seq <= 390; seq += 10) {
          BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[2],
                                    test::raw_database::event_key("jules", seq), "old").ok());
        }
        std::string value;
        if (std::string(list) == "damaged") value = "7 bytes";
        if (std::string(list) == "descending") {
          for (char seq : {'\x20', '\x10'}) value += std::string(7, '\0') + seq;
        }
        if (!value.empty()) {
          BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[0],
                                    "l" + test::raw_database::event_key("jules", 0).substr(0, 6),
                                    value).ok());
        }
      }
      auto j = open_journal(journal_options(dir.path()));
      auto events = all_events(*j, "jules");
      journal::snapshot snap;
      snap.seq = 400;
      snap.head_hash = events[399].hash;
      snap.state_format = 1;
      snap.state = "state at 400";
      BOOST_REQUIRE(j->write_snapshot("jules", snap));
      auto seqs = j->snapshot_seqs("jules");
      BOOST_REQUIRE(seqs);
      BOOST_TEST(seqs->back() == 400u);
      BOOST_TEST(seqs->size() <= 3u + 5u, seqs->size() << " snapshots kept of 41");  // log2(40) ~ 5
    }
  }
}

// A sealed value is bound to its key and to its family: an event copied into the
// snapshots family under the very same key bytes does not open there.
BOOST_AUTO_TEST_CASE(a_value_moved_to_another_family_under_the_same_key_does_not_open) {
  temp_dir dir;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 3; ++i) append_commit(*j, "kira", "/f" + std::to_string(i));
  }
  {
    test::raw_database raw(dir.path());
    const auto key = test::raw_database::event_key("kira", 2);
    std::string value;
    BOOST_REQUIRE(raw.db->Get(rocksdb::ReadOptions(), raw.handles[1], key, &value).ok());
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[2], key, value).ok());
  }
  auto j = open_journal(journal_options(dir.path()));
  auto snap = j->read_snapshot("kira", UINT64_MAX);
  BOOST_REQUIRE(!snap);
  BOOST_TEST(snap.err().kind() == error_kind::corruption);
  BOOST_TEST(snap.err().message().find("user kira seq 2") != std::string::npos, snap.err().message());
  // Refused by its seal, not by what it would have decoded to.
  BOOST_TEST(snap.err().message().find("cannot decrypt") != std::string::npos, snap.err().message());
}

BOOST_AUTO_TEST_CASE(read_only_journal_reads_beside_a_writer_and_refuses_writes) {
  temp_dir dir;
  auto writer = open_journal(journal_options(dir.path()));
  for (int i = 0; i < 5; ++i) append_commit(*writer, "hana", "/f" + std::to_string(i));
  auto options = journal_options(dir.path());
  options.read_only = true;
  auto reader = open_journal(options);
  BOOST_TEST(all_events(*reader, "hana").size() == 5u);
  auto r = reader->append_and_wait(request_for("hana", commit_event("/x")));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::invalid);
}

BOOST_AUTO_TEST_CASE(opening_a_missing_journal_read_only_says_where_it_looked) {
  temp_dir dir;
  auto options = journal_options(dir / "nothing-here");
  options.read_only = true;
  auto j = journal::journal::open(options);
  BOOST_REQUIRE(!j);
  BOOST_TEST(j.err().kind() == error_kind::not_found);
  BOOST_TEST(j.err().message().find("nothing-here") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_tampered_or_missing_event_is_corruption_naming_user_and_seq) {
  temp_dir dir;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 10; ++i) append_commit(*j, "ivan", "/f" + std::to_string(i));
  }
  // Flip one byte of event 4 and delete event 7 behind the journal's back.
  {
    test::raw_database raw(dir.path());
    auto& db = raw.db;
    auto& handles = raw.handles;
    auto key = [](std::uint64_t seq) { return test::raw_database::event_key("ivan", seq); };
    std::string value;
    BOOST_REQUIRE(db->Get(rocksdb::ReadOptions(), handles[1], key(4), &value).ok());
    value[value.size() / 2] ^= 1;
    BOOST_REQUIRE(db->Put(rocksdb::WriteOptions(), handles[1], key(4), value).ok());
    BOOST_REQUIRE(db->Delete(rocksdb::WriteOptions(), handles[1], key(7)).ok());
  }
  auto j = open_journal(journal_options(dir.path()));
  std::uint64_t visited = 0;
  auto s = j->read_events("ivan", 1, 100, [&](journal::stored_event&&) {
    ++visited;
    return true;
  });
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("user ivan seq 4") != std::string::npos, s.err().message());
  BOOST_TEST(visited == 3u);  // events before the damage are still readable

  s = j->read_events("ivan", 5, 100, [&](journal::stored_event&&) { return true; });
  BOOST_REQUIRE(!s);
  // Starting at 5 checks 5's prevHash against 4, which is damaged.
  BOOST_TEST(s.err().message().find("user ivan seq 4") != std::string::npos, s.err().message());
  s = j->read_events("ivan", 6, 100, [&](journal::stored_event&&) { return true; });
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().message().find("user ivan seq 7") != std::string::npos, s.err().message());
}

BOOST_AUTO_TEST_CASE(a_second_writer_on_the_same_folder_is_refused_with_a_clear_error) {
  temp_dir dir;
  auto first = open_journal(journal_options(dir.path()));
  auto second = journal::journal::open(journal_options(dir.path()));
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.err().kind() == error_kind::unavailable);
  BOOST_TEST(second.err().message().find("in use by another process") != std::string::npos,
             second.err().message());
}

BOOST_AUTO_TEST_CASE(appends_after_a_tampered_head_are_refused_rather_than_forking_the_chain) {
  temp_dir dir;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 3; ++i) append_commit(*j, "kate", "/f" + std::to_string(i));
  }
  auto j = open_journal(journal_options(dir.path(), 0x77));  // wrong key: the head is unreadable
  auto r = j->append_and_wait(request_for("kate", commit_event("/g")));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::corruption);
  BOOST_TEST(r.err().message().find("user kate seq 3") != std::string::npos, r.err().message());
}

BOOST_AUTO_TEST_CASE(a_full_write_queue_refuses_appends_as_overloaded_and_keeps_seqs_dense) {
  temp_dir dir;
  auto options = journal_options(dir.path());
  options.queue_bytes_max = 2000;  // a handful of events
  auto j = open_journal(options);
  std::mutex m;
  std::condition_variable cv;
  int completed = 0, overloaded = 0;
  constexpr int count = 2000;
  for (int i = 0; i < count; ++i) {
    j->append(request_for("lena", commit_event("/f" + std::to_string(i))),
              [&](result<journal::appended> r) {
                std::lock_guard lock(m);
                if (!r) {
                  BOOST_TEST(r.err().kind() == error_kind::overloaded);
                  ++overloaded;
                }
                ++completed;
                cv.notify_all();
              });
  }
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return completed == count; });
  BOOST_TEST(overloaded > 0);
  const auto events = all_events(*j, "lena");
  BOOST_TEST(events.size() == static_cast<std::size_t>(count - overloaded));
  for (std::size_t i = 0; i < events.size(); ++i) BOOST_TEST(events[i].seq == i + 1);
}

BOOST_AUTO_TEST_CASE(a_journal_of_a_newer_format_is_refused_with_upgrade_advice) {
  temp_dir dir;
  { open_journal(journal_options(dir.path())); }
  {
    test::raw_database raw(dir.path());
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[0], "format", "2").ok());
  }
  auto j = journal::journal::open(journal_options(dir.path()));
  BOOST_REQUIRE(!j);
  BOOST_TEST(j.err().kind() == error_kind::invalid);
  BOOST_TEST(j.err().message().find("upgrade AutoSync") != std::string::npos, j.err().message());
}

// The metadata is not sealed: what it holds is checked like any outside input, and a
// damaged value is a corruption error naming it, not an exception out of open().
BOOST_AUTO_TEST_CASE(damaged_metadata_counters_are_corruption_naming_them) {
  for (const char* key : {"format", "next_pack"}) {
    for (const char* value : {"x", "", "12abc", "99999999999999999999"}) {
      temp_dir dir;
      { open_journal(journal_options(dir.path())); }
      {
        test::raw_database raw(dir.path());
        BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[0], key, value).ok());
      }
      auto j = journal::journal::open(journal_options(dir.path()));
      BOOST_REQUIRE_MESSAGE(!j, key << " = \"" << value << "\" was accepted");
      BOOST_TEST(j.err().kind() == error_kind::corruption);
      BOOST_TEST(j.err().message().find("restore the journal from a backup") != std::string::npos,
                 j.err().message());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_queued_snapshot_is_checked_at_once_and_durable_when_its_callback_runs) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  for (int i = 0; i < 3; ++i) append_commit(*j, "nina", "/f" + std::to_string(i));
  const auto events = all_events(*j, "nina");
  std::promise<status> done;
  journal::snapshot snap{3, events[2].hash, 0, 1, "state"};
  j->write_snapshot("nina", snap, [&](status s) { done.set_value(std::move(s)); });
  BOOST_REQUIRE(done.get_future().get());
  BOOST_TEST(j->snapshot_seqs("nina")->size() == 1u);

  std::promise<status> refused;
  journal::snapshot off_chain{2, events[0].hash, 0, 1, "wrong"};
  j->write_snapshot("nina", off_chain, [&](status s) { refused.set_value(std::move(s)); });
  auto s = refused.get_future().get();
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::invalid);
}
