#define BOOST_TEST_MODULE actors_namespace
#include <boost/test/unit_test.hpp>

#include <deque>
#include <map>
#include <random>

#include "autosync/actors/operation_window.hpp"
#include "autosync/actors/path.hpp"
#include "namespace_fixture.hpp"

using namespace autosync;
using namespace autosync::actors;
using autosync::test::content_of;
using autosync::test::namespace_driver;

BOOST_AUTO_TEST_CASE(good_paths_pass_and_bad_paths_say_what_is_wrong) {
  for (const char* good : {"/a", "/docs/report.pdf", "/Ünïcödé/日本語.txt", "/a b/c-d_e.f"}) {
    BOOST_TEST(validate_path(good).is_ok(), good);
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"docs/a", "start with"},
      {"/", "root"},
      {"/docs/", "ends with"},
      {"/docs//a", "empty name"},
      {"/docs/./a", "\".\""},
      {"/docs/../a", "\"..\""},
      {std::string("/a\0b", 4), "control"},
      {"/a\x01", "control"},
      {"/a\x7f", "control"},
      {"/a\xff", "UTF-8"},
      {"/a\xc0\xaf", "UTF-8"},           // overlong "/"
      {"/a\xed\xa0\x80", "UTF-8"},       // a surrogate
      {"/" + std::string(256, 'n'), "longer than 255"},
      {[] {
         std::string p;
         for (int i = 0; i < 20; ++i) p += "/" + std::string(250, 'n');
         return p;
       }(),
       "longer than 4096"},
  };
  for (const auto& [path, why] : bad) {
    auto s = validate_path(path);
    BOOST_REQUIRE_MESSAGE(!s, "accepted: " << path.substr(0, 40));
    BOOST_TEST(s.err().kind() == error_kind::invalid);
    BOOST_TEST(s.err().message().find(why) != std::string::npos, s.err().message());
  }
}

BOOST_AUTO_TEST_CASE(a_commit_creates_the_file_and_its_missing_folders) {
  namespace_driver d;
  const auto seq = d.ok(commit_file{"/docs/2024/report.pdf", 0, content_of({"abc", "def"})});
  BOOST_TEST(seq == 3u);  // two folders, then the file
  const node* file = d.state.lookup("/docs/2024/report.pdf");
  BOOST_REQUIRE(file != nullptr);
  BOOST_TEST(!file->folder);
  BOOST_TEST(file->revision == 3u);  // a revision is the seq that produced it
  BOOST_TEST(file->content.size == 6u);
  BOOST_TEST(d.state.lookup("/docs")->folder);
  BOOST_TEST(d.state.path_of(file->id) == "/docs/2024/report.pdf");
  BOOST_TEST(d.state.used_bytes() == 6u);
  BOOST_TEST(d.state.live_files() == 1u);
}

BOOST_AUTO_TEST_CASE(an_event_that_names_another_previous_hash_is_refused_and_changes_nothing) {
  namespace_driver d;
  d.ok(create_folder{"/a"});
  d.ok(create_folder{"/b"});
  BOOST_REQUIRE(d.log.size() == 2u);
  // A state whose event 1 hashes differently (another history's event 1): event 2 of this
  // log does not follow it, though its seq does.
  namespace_state other;
  BOOST_REQUIRE(other.apply(1, sha256("another event 1"), d.log[0].reader()));
  auto s = other.apply(2, d.log[1].hash, d.log[1].reader());
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("the chain is broken") != std::string::npos, s.err().message());
  BOOST_TEST(other.last_seq() == 1u);
  BOOST_TEST(other.lookup("/b") == nullptr);
  // On the state it names, it applies.
  namespace_state same;
  BOOST_REQUIRE(same.apply(1, d.log[0].hash, d.log[0].reader()));
  BOOST_REQUIRE(same.apply(2, d.log[1].hash, d.log[1].reader()));
  BOOST_TEST(same.lookup("/b") != nullptr);
}

BOOST_AUTO_TEST_CASE(a_commit_with_a_stale_base_is_a_conflict_reporting_the_current_entry) {
  namespace_driver d;
  d.ok(commit_file{"/a.txt", 0, content_of({"v1"})});
  const auto rev2 = d.ok(commit_file{"/a.txt", 1, content_of({"v2"})});
  const auto before = d.state.last_seq();
  auto r = d.refused(commit_file{"/a.txt", 1, content_of({"v3 from an old base"})});
  BOOST_TEST(r.reason.kind() == error_kind::conflict);
  BOOST_REQUIRE(r.current.has_value());
  BOOST_TEST(r.current->revision == rev2);
  BOOST_TEST(r.current->path == "/a.txt");
  BOOST_TEST(d.state.last_seq() == before);  // nothing changed
  BOOST_TEST(d.state.lookup("/a.txt")->content.size == 2u);
}

BOOST_AUTO_TEST_CASE(create_on_an_existing_path_is_a_conflict) {
  namespace_driver d;
  d.ok(commit_file{"/a.txt", 0, content_of({"x"})});
  auto r = d.refused(commit_file{"/a.txt", 0, content_of({"y"})});
  BOOST_TEST(r.reason.kind() == error_kind::conflict);
  BOOST_TEST(r.reason.message().find("already exists") != std::string::npos);
  d.ok(create_folder{"/f"});
  auto folder = d.refused(create_folder{"/f"});
  BOOST_TEST(folder.reason.kind() == error_kind::conflict);
  auto onto_folder = d.refused(commit_file{"/f", 0, content_of({"z"})});
  BOOST_TEST(onto_folder.reason.kind() == error_kind::conflict);
}

BOOST_AUTO_TEST_CASE(names_differing_only_in_letter_case_conflict) {
  namespace_driver d;
  d.ok(commit_file{"/Docs/Report.pdf", 0, content_of({"x"})});
  auto file = d.refused(commit_file{"/docs/report.PDF", 0, content_of({"y"})});
  BOOST_TEST(file.reason.kind() == error_kind::conflict);
  BOOST_REQUIRE(file.current.has_value());
  BOOST_TEST(file.current->path == "/Docs/Report.pdf");
  auto folder = d.refused(create_folder{"/DOCS"});
  BOOST_TEST(folder.reason.kind() == error_kind::conflict);
  // A new file under the differently-cased folder name lands in the existing folder.
  d.ok(commit_file{"/DOCS/other.txt", 0, content_of({"z"})});
  BOOST_TEST(d.state.path_of(d.state.lookup("/docs/other.txt")->id) == "/Docs/other.txt");
  // Any script's letters, and the two ways of writing an accented letter, are one name.
  d.ok(commit_file{"/\xc3\x89t\xc3\xa9.txt", 0, content_of({"summer"})});  // Été.txt
  for (const char* same : {"/\xc3\xa9t\xc3\xa9.txt", "/e\xcc\x81te\xcc\x81.txt"}) {
    auto r = d.refused(commit_file{same, 0, content_of({"other"})});
    BOOST_TEST(r.reason.kind() == error_kind::conflict);
    BOOST_REQUIRE(r.current.has_value());
    BOOST_TEST(r.current->path == "/\xc3\x89t\xc3\xa9.txt");
  }
  BOOST_TEST(d.state.lookup("/e\xcc\x81te\xcc\x81.TXT") != nullptr);
}

BOOST_AUTO_TEST_CASE(a_commit_naming_chunks_the_store_lacks_lists_them_and_changes_nothing) {
  namespace_driver d;
  d.all_chunks_present = false;
  d.uploaded[sha256("have")] = 4;
  auto r = d.refused(commit_file{"/a.bin", 0, content_of({"have", "lack1", "lack2", "lack1"})});
  BOOST_TEST(r.reason.kind() == error_kind::not_found);
  BOOST_TEST((r.missing_chunks == std::vector<sha256_digest>{sha256("lack1"), sha256("lack2")}));
  BOOST_TEST(d.state.last_seq() == 0u);
  BOOST_TEST(d.state.lookup("/a.bin") == nullptr);
}

// A reclaim keeps every chunk a revision in the state refers to: an edit asks the store only
// about the chunks its file's current version lacks, and a restore about none.
BOOST_AUTO_TEST_CASE(an_edit_asks_the_store_only_for_chunks_the_current_version_lacks) {
  namespace_driver d;
  const std::uint64_t first = d.ok(commit_file{"/big.bin", 0, content_of({"one", "two", "three"})});
  d.asked.clear();
  const std::uint64_t second =
      d.ok(commit_file{"/big.bin", first, content_of({"one", "two", "four"})});
  BOOST_TEST((d.asked == std::vector<sha256_digest>{sha256("four")}));
  // A chunk the current version holds, claimed with another size, is refused as before.
  file_content lie = content_of({"one"});
  lie.chunks[0].size = 2;
  lie.size = 2;
  auto r = d.refused(commit_file{"/big.bin", second, lie});
  BOOST_TEST(r.reason.kind() == error_kind::invalid);
  BOOST_TEST(r.reason.message().find("is 3 bytes, not 2") != std::string::npos, r.reason.message());
  d.asked.clear();
  d.ok(restore_revision{"/big.bin", first});
  BOOST_TEST(d.asked.empty());
  BOOST_TEST(d.state.lookup("/big.bin")->content.chunks.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_commit_claiming_other_sizes_than_the_stored_chunks_is_refused) {
  namespace_driver d;
  d.all_chunks_present = false;
  d.uploaded[sha256("seventeen bytes!!")] = 17;
  d.ok(set_quota{10});
  // A file of one byte made of a 17-byte chunk would dodge the quota and never download.
  file_content lie = content_of({"seventeen bytes!!"});
  lie.chunks[0].size = 1;
  lie.size = 1;
  auto r = d.refused(commit_file{"/lie", 0, lie});
  BOOST_TEST(r.reason.kind() == error_kind::invalid);
  BOOST_TEST(r.reason.message().find("is 17 bytes, not 1") != std::string::npos, r.reason.message());
  file_content twice = content_of({"seventeen bytes!!", "seventeen bytes!!"});
  twice.chunks[0].size = 1;
  twice.chunks[1].size = 2;
  twice.size = 3;
  auto r2 = d.refused(commit_file{"/twice", 0, twice});
  BOOST_TEST(r2.reason.kind() == error_kind::invalid);
  BOOST_TEST(r2.reason.message().find("two sizes") != std::string::npos, r2.reason.message());
  BOOST_TEST(d.state.lookup("/lie") == nullptr);
  BOOST_TEST(d.state.used_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(a_commit_beyond_the_quota_fails_and_changes_nothing) {
  namespace_driver d;
  d.ok(set_quota{10});
  d.ok(commit_file{"/a", 0, content_of({"123456"})});
  auto r = d.refused(commit_file{"/b", 0, content_of({"12345"})});
  BOOST_TEST(r.reason.kind() == error_kind::quota_exceeded);
  BOOST_TEST(d.state.lookup("/b") == nullptr);
  // Replacing a file counts only the difference.
  d.ok(commit_file{"/a", 2, content_of({"1234567890"})});
  BOOST_TEST(d.state.used_bytes() == 10u);
  d.ok(delete_entry{"/a", 0});
  BOOST_TEST(d.state.used_bytes() == 0u);
  d.ok(commit_file{"/b", 0, content_of({"12345"})});
}

BOOST_AUTO_TEST_CASE(a_retried_operation_returns_the_original_result_and_appends_nothing) {
  namespace_driver d;
  d.ok(commit_file{"/a/b.txt", 0, content_of({"x"})}, "op-retry");
  const auto seq = d.state.last_seq();
  auto again = d.run(commit_file{"/a/b.txt", 0, content_of({"x"})}, "op-retry");
  auto* decision = std::get_if<actors::decision>(&again);
  BOOST_REQUIRE(decision != nullptr);
  BOOST_TEST(decision->events.empty());
  BOOST_REQUIRE(decision->already_applied.has_value());
  BOOST_TEST(decision->already_applied->first_seq == 1u);
  BOOST_TEST(decision->already_applied->last_seq == seq);
  BOOST_TEST(d.state.last_seq() == seq);
}

BOOST_AUTO_TEST_CASE(an_operation_id_reused_for_another_change_is_refused_not_reported_done) {
  namespace_driver d;
  d.ok(commit_file{"/keep", 0, content_of({"k"})}, "op-x");
  const auto seq = d.state.last_seq();
  for (command_body body : {command_body{delete_entry{"/keep", 0}},
                            command_body{create_folder{"/newdir"}},
                            command_body{commit_file{"/keep", 0, content_of({"other"})}}}) {
    auto r = d.run(std::move(body), "op-x");
    auto* refused = std::get_if<refusal>(&r);
    BOOST_REQUIRE(refused != nullptr);
    BOOST_TEST(refused->reason.kind() == error_kind::invalid);
    BOOST_TEST(refused->reason.message().find("was used for another change") != std::string::npos);
  }
  BOOST_TEST(d.state.last_seq() == seq);
  BOOST_TEST(d.state.lookup("/keep") != nullptr);
  // The digest survives a snapshot: still refused after one.
  auto restored = namespace_state::decode(d.state.encode(), d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(restored);
  BOOST_TEST(restored->find_operation("op-x")->command_digest ==
             d.state.find_operation("op-x")->command_digest);
  BOOST_TEST(d.state.find_operation("op-x")->command_digest != 0u);
}

// The encoding's first segment is sized from the entry count; a file with a long history
// outgrows it, and the rest goes on in further segments, framed the standard way.
BOOST_AUTO_TEST_CASE(a_state_larger_than_the_first_segment_encodes_and_decodes_whole) {
  namespace_driver d;
  std::uint64_t revision = d.ok(commit_file{"/long history.txt", 0, content_of({"v0"})});
  for (int i = 1; i < 400; ++i) {
    revision = d.ok(commit_file{"/long history.txt", revision, content_of({"v" + std::to_string(i)})});
  }
  const std::string bytes = d.state.encode();
  BOOST_TEST(bytes.size() > 48u * 8 * d.state.entry_count() + 1024 * 8);  // past the first segment
  BOOST_TEST(static_cast<unsigned char>(bytes[0]) > 0u);  // more than one segment
  BOOST_TEST((d.state.encode() == bytes));  // equal states, equal bytes
  auto restored = namespace_state::decode(bytes, d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(restored);
  BOOST_TEST((*restored == d.state));
  BOOST_TEST(restored->lookup("/long history.txt")->history.size() == 400u);
}

BOOST_AUTO_TEST_CASE(the_remembered_operation_window_is_bounded_and_survives_replay) {
  namespace_driver d;
  d.ok(create_folder{"/first"}, "op-first");
  for (std::size_t i = 0; i < namespace_state::operations_remembered; ++i) {
    d.ok(set_quota{i + 1}, "op-" + std::to_string(i));
  }
  BOOST_TEST(d.state.find_operation("op-first") == nullptr);  // fell out of the window
  BOOST_TEST(d.state.find_operation("op-0") != nullptr);
  BOOST_TEST((d.replay() == d.state));
}

BOOST_AUTO_TEST_CASE(moving_a_folder_moves_everything_below_it_and_keeps_ids) {
  namespace_driver d;
  d.ok(commit_file{"/photos/2023/a.jpg", 0, content_of({"a"})});
  d.ok(commit_file{"/photos/2023/b.jpg", 0, content_of({"b"})});
  const node_id folder = d.state.lookup("/photos/2023")->id;
  const node_id a = d.state.lookup("/photos/2023/a.jpg")->id;
  d.ok(move_entry{"/photos/2023", "/archive/old/2023"});
  BOOST_TEST(d.state.lookup("/photos/2023") == nullptr);
  BOOST_TEST(d.state.lookup("/archive/old/2023")->id == folder);
  BOOST_TEST(d.state.lookup("/archive/old/2023/a.jpg")->id == a);
  BOOST_TEST(d.state.path_of(a) == "/archive/old/2023/a.jpg");
  BOOST_TEST(d.state.live_files() == 2u);
}

BOOST_AUTO_TEST_CASE(moves_refuse_a_taken_target_and_a_folder_into_itself) {
  namespace_driver d;
  d.ok(commit_file{"/a/x", 0, content_of({"1"})});
  d.ok(commit_file{"/b", 0, content_of({"2"})});
  auto taken = d.refused(move_entry{"/b", "/a/X"});
  BOOST_TEST(taken.reason.kind() == error_kind::conflict);
  auto into_itself = d.refused(move_entry{"/a", "/a/inner/a"});
  BOOST_TEST(into_itself.reason.kind() == error_kind::invalid);
  auto missing = d.refused(move_entry{"/nope", "/c"});
  BOOST_TEST(missing.reason.kind() == error_kind::not_found);
  // Changing only the letter case of a name is a rename.
  d.ok(move_entry{"/a/x", "/a/X"});
  BOOST_TEST(d.state.lookup("/a/x")->name == "X");
  // A target whose folders are the source's in another case moves nothing: refused, and
  // nothing is written.
  const auto before = d.state.last_seq();
  auto same = d.refused(move_entry{"/a/X", "/A/X"});
  BOOST_TEST(same.reason.kind() == error_kind::invalid);
  BOOST_TEST(same.reason.message().find("onto itself") != std::string::npos);
  BOOST_TEST(d.state.last_seq() == before);
}

BOOST_AUTO_TEST_CASE(a_move_that_would_push_a_path_below_past_the_limit_is_refused) {
  namespace_driver d;
  const std::string deep = "/s/" + std::string(250, 'a') + "/" + std::string(250, 'b') + "/" +
                           std::string(250, 'c') + "/f.txt";
  d.ok(commit_file{deep, 0, content_of({"x"})});
  std::string target;
  while (target.size() + deep.size() - 2 <= path_limits::path_bytes_max) {
    target += "/" + std::string(250, 't');
  }
  const auto before = d.state.last_seq();
  auto r = d.refused(move_entry{"/s", target});
  BOOST_TEST(r.reason.kind() == error_kind::invalid);
  BOOST_TEST(r.reason.message().find("over the limit") != std::string::npos, r.reason.message());
  BOOST_TEST(d.state.last_seq() == before);
  BOOST_TEST(d.state.lookup(deep) != nullptr);
  d.ok(move_entry{"/s", "/short"});  // a target that keeps every path in bounds moves
  BOOST_TEST(d.state.lookup("/short" + deep.substr(2)) != nullptr);
}

BOOST_AUTO_TEST_CASE(deleting_a_folder_deletes_what_is_below_and_keeps_it_recoverable) {
  namespace_driver d;
  d.ok(commit_file{"/p/q/r.txt", 0, content_of({"12345"})});
  const node_id file = d.state.lookup("/p/q/r.txt")->id;
  d.ok(delete_entry{"/p", 0});
  BOOST_TEST(d.state.lookup("/p") == nullptr);
  BOOST_TEST(d.state.lookup("/p/q/r.txt") == nullptr);
  BOOST_TEST(d.state.used_bytes() == 0u);
  const node* tombstone = d.state.get(file);
  BOOST_REQUIRE(tombstone != nullptr);
  BOOST_TEST(tombstone->deleted);
  BOOST_REQUIRE_EQUAL(tombstone->history.size(), 2u);
  BOOST_TEST(tombstone->history.back().deletion);
  BOOST_TEST(tombstone->history.back().path == "/p/q/r.txt");
  // The name is free again.
  d.ok(commit_file{"/p/q/r.txt", 0, content_of({"new"})});
  BOOST_TEST(d.state.lookup("/p/q/r.txt")->id != file);
  auto stale = d.refused(delete_entry{"/p/q/r.txt", 1});
  BOOST_TEST(stale.reason.kind() == error_kind::conflict);
}

BOOST_AUTO_TEST_CASE(a_folder_delete_as_of_a_view_refuses_what_arrived_below_since) {
  namespace_driver d;
  d.ok(commit_file{"/d/old.txt", 0, content_of({"o"})});
  d.ok(commit_file{"/elsewhere/f.txt", 0, content_of({"f"})});
  d.ok(create_folder{"/d/sub"});
  const std::uint64_t seen = d.state.last_seq();  // the caller's view
  // Written, created and moved in since: each keeps the folder.
  d.ok(commit_file{"/d/sub/new.txt", 0, content_of({"n"})});
  auto written = d.refused(delete_entry{"/d", seen});
  BOOST_TEST(written.reason.kind() == error_kind::conflict);
  BOOST_REQUIRE(written.current.has_value());
  BOOST_TEST(written.current->path == "/d/sub/new.txt");
  d.ok(delete_entry{"/d/sub/new.txt", 0});
  const std::uint64_t seen_again = d.state.last_seq();
  d.ok(move_entry{"/elsewhere", "/d/sub/moved"});
  auto moved = d.refused(delete_entry{"/d", seen_again});
  BOOST_TEST(moved.reason.kind() == error_kind::conflict);
  BOOST_TEST(moved.current->path == "/d/sub/moved");
  BOOST_TEST(d.state.lookup("/d/old.txt") != nullptr);  // nothing was deleted
  // A view past the newest change names nothing this state held: invalid, nothing goes.
  auto future = d.refused(delete_entry{"/d", d.state.last_seq() + 1});
  BOOST_TEST(future.reason.kind() == error_kind::invalid);
  BOOST_TEST(future.reason.message().find("past the newest change") != std::string::npos,
             future.reason.message());
  BOOST_TEST(d.state.lookup("/d/old.txt") != nullptr);
  // As of a view that has seen everything, and unconditionally, it goes.
  d.ok(delete_entry{"/d", d.state.last_seq()});
  BOOST_TEST(d.state.lookup("/d") == nullptr);
  auto restored = namespace_state::decode(d.state.encode(), d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(restored);
  BOOST_TEST((*restored == d.state));  // the move seqs survive a snapshot
}

BOOST_AUTO_TEST_CASE(event_timestamps_never_go_back_even_when_the_clock_does) {
  namespace_driver d;
  d.ok(commit_file{"/a", 0, content_of({"a"})});
  const auto newest = d.state.last_timestamp_us();
  command cmd;
  cmd.device_id = "laptop";
  cmd.operation_id = "after-a-clock-step";
  cmd.timestamp_us = newest - 3600'000'000;  // the clock went back an hour
  cmd.body = commit_file{"/b", 0, content_of({"b"})};
  auto decided = decide(d.state, cmd, [](const std::vector<sha256_digest>& ids) {
    return std::vector<std::optional<std::uint64_t>>(ids.size(), 1);
  });
  auto* made = std::get_if<decision>(&decided);
  BOOST_REQUIRE(made != nullptr);
  for (auto& message : made->events) d.persist_and_apply(*message);
  BOOST_TEST(d.log.back().reader().getTimestampUs() == newest);
  BOOST_TEST(d.state.last_timestamp_us() == newest);
  auto restored = namespace_state::decode(d.state.encode(), d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(restored);
  BOOST_TEST(restored->last_timestamp_us() == newest);
  BOOST_TEST((d.replay() == d.state));
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_before_anything_else) {
  namespace_driver d;
  auto r = d.refused(commit_file{"relative/path", 0, content_of({"x"})});
  BOOST_TEST(r.reason.kind() == error_kind::invalid);
  file_content wrong = content_of({"abc"});
  wrong.size = 99;
  auto sizes = d.refused(commit_file{"/a", 0, wrong});
  BOOST_TEST(sizes.reason.kind() == error_kind::invalid);
  BOOST_TEST(d.state.last_seq() == 0u);
}

BOOST_AUTO_TEST_CASE(restoring_an_older_revision_makes_it_the_newest) {
  namespace_driver d;
  const auto v1 = d.ok(commit_file{"/a.txt", 0, content_of({"first"})});
  const auto v2 = d.ok(commit_file{"/a.txt", v1, content_of({"second!"})});
  const auto v3 = d.ok(restore_revision{"/a.txt", v1});
  const node* file = d.state.lookup("/a.txt");
  BOOST_TEST(file->revision == v3);
  BOOST_TEST((file->content == content_of({"first"})));
  BOOST_TEST(d.state.used_bytes() == 5u);
  BOOST_REQUIRE_EQUAL(file->history.size(), 3u);
  BOOST_TEST(file->history[1].revision == v2);
  auto missing = d.refused(restore_revision{"/a.txt", 999});
  BOOST_TEST(missing.reason.kind() == error_kind::not_found);
}

BOOST_AUTO_TEST_CASE(restoring_a_deleted_files_revision_where_another_file_now_is_is_a_conflict) {
  namespace_driver d;
  const auto old = d.ok(commit_file{"/Readme.txt", 0, content_of({"old"})});
  d.ok(delete_entry{"/Readme.txt", 0});
  d.ok(commit_file{"/readme.TXT", 0, content_of({"new"})});
  auto r = d.refused(restore_revision{"/Readme.txt", old});
  BOOST_TEST(r.reason.kind() == error_kind::conflict, r.reason.message());
  BOOST_TEST(r.reason.message().find("is another file now (/readme.TXT)") != std::string::npos,
             r.reason.message());
  BOOST_REQUIRE(r.current.has_value());
  BOOST_TEST(r.current->path == "/readme.TXT");
  auto never = d.refused(restore_revision{"/nothing.txt", 1});
  BOOST_TEST(never.reason.message().find("retention period") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(undelete_brings_a_file_back_with_its_folders_and_last_content) {
  namespace_driver d;
  d.ok(commit_file{"/p/q/r.txt", 0, content_of({"v1"})});
  const auto last = d.ok(commit_file{"/p/q/r.txt", 3, content_of({"v2"})});
  const node_id id = d.state.lookup("/p/q/r.txt")->id;
  d.ok(delete_entry{"/p", 0});
  d.ok(undelete_file{"/p/q/r.txt"});
  const node* back = d.state.lookup("/p/q/r.txt");
  BOOST_REQUIRE(back != nullptr);
  BOOST_TEST(back->id == id);  // the same file, not a copy
  BOOST_TEST((back->content == content_of({"v2"})));
  BOOST_TEST(back->history.back().revision == d.state.last_seq());
  BOOST_TEST(d.state.live_files() == 1u);
  BOOST_TEST(d.state.used_bytes() == 2u);
  (void)last;
  auto again = d.refused(undelete_file{"/p/q/r.txt"});
  BOOST_TEST(again.reason.kind() == error_kind::conflict);
  auto never = d.refused(undelete_file{"/never/was"});
  BOOST_TEST(never.reason.kind() == error_kind::not_found);
}

BOOST_AUTO_TEST_CASE(history_follows_a_file_across_renames_and_deletion) {
  namespace_driver d;
  const auto v1 = d.ok(commit_file{"/draft.txt", 0, content_of({"a"})});
  d.ok(move_entry{"/draft.txt", "/final/report.txt"});
  const auto v2 = d.ok(commit_file{"/final/report.txt", v1, content_of({"b"})});
  auto history = d.state.history("/final/report.txt");
  BOOST_REQUIRE_EQUAL(history.size(), 2u);
  BOOST_TEST(history[0].revision == v1);
  BOOST_TEST(history[0].path == "/draft.txt");
  BOOST_TEST(history[1].revision == v2);
  BOOST_TEST(history[1].path == "/final/report.txt");
  d.ok(delete_entry{"/final/report.txt", 0});
  auto after = d.state.history("/final/report.txt");
  BOOST_REQUIRE_EQUAL(after.size(), 3u);
  BOOST_TEST(after.back().deletion);
  BOOST_TEST(d.state.history("/nothing").empty());
}

BOOST_AUTO_TEST_CASE(a_snapshot_plus_the_tail_equals_the_live_state_at_every_interval) {
  std::mt19937 rng(7);
  namespace_driver d;
  const std::vector<std::string> names = {"a", "B", "docs", "x.txt"};
  for (int i = 0; i < 300; ++i) {
    std::string path;
    for (int k = 0, depth = 1 + static_cast<int>(rng() % 3); k < depth; ++k) {
      path += "/" + names[rng() % names.size()];
    }
    const node* at = d.state.lookup(path);
    switch (rng() % 6) {
      case 0:
      case 1:
        d.run(commit_file{path, at != nullptr ? at->revision : 0, content_of({std::to_string(i)})});
        break;
      case 2: d.run(delete_entry{path, 0}); break;
      case 3: d.run(move_entry{path, "/m" + path}); break;
      case 4: d.run(undelete_file{path}); break;
      default:
        d.run(restore_revision{path, at != nullptr && !at->history.empty() ? at->history.front().revision : 1});
    }
  }
  BOOST_REQUIRE(d.log.size() > 100u);
  for (std::uint64_t interval : {1u, 7u, 50u}) {
    namespace_state prefix;
    for (const auto& e : d.log) {
      BOOST_REQUIRE(prefix.apply(e.seq, e.hash, e.reader()));
      if (e.seq % interval != 0) continue;
      // Snapshot here, then replay the rest of the log on top of it.
      auto restored = namespace_state::decode(prefix.encode(), prefix.last_seq(), prefix.last_hash());
      BOOST_REQUIRE_MESSAGE(restored, test::describe(restored));
      BOOST_TEST((*restored == prefix));
      for (const auto& tail : d.log) {
        if (tail.seq > e.seq) BOOST_REQUIRE(restored->apply(tail.seq, tail.hash, tail.reader()));
      }
      BOOST_REQUIRE_MESSAGE((*restored == d.state), "snapshot at seq " << e.seq);
    }
  }
  BOOST_TEST(d.state.encode() == d.replay().encode());  // equal states encode alike
}

BOOST_AUTO_TEST_CASE(retention_reclaims_old_tombstones_and_revisions_and_keeps_the_newest) {
  namespace_driver d;
  const auto v1 = d.ok(commit_file{"/keep.txt", 0, content_of({"old"})});
  d.ok(commit_file{"/keep.txt", v1, content_of({"new"})});
  d.ok(commit_file{"/gone/a.txt", 0, content_of({"a"})});
  const node_id folder = d.state.lookup("/gone")->id;
  const node_id file = d.state.lookup("/gone/a.txt")->id;
  d.ok(delete_entry{"/gone", 0});
  const std::int64_t cutoff = 1700000000000000 + 100;  // after everything so far
  d.ok(commit_file{"/later.txt", 0, content_of({"l"})});
  const auto nodes_before = d.state.all_nodes().size();
  d.ok(apply_retention{cutoff});

  BOOST_TEST(d.state.get(file) == nullptr);    // the tombstone is gone
  BOOST_TEST(d.state.get(folder) == nullptr);  // and the deleted folder with it
  BOOST_TEST(d.state.all_nodes().size() == nodes_before - 2);
  const node* keep = d.state.lookup("/keep.txt");
  BOOST_REQUIRE_EQUAL(keep->history.size(), 1u);  // only the newest revision stays
  BOOST_TEST((keep->content == content_of({"new"})));
  BOOST_TEST(d.state.history("/gone/a.txt").empty());
  auto undelete = d.refused(undelete_file{"/gone/a.txt"});
  BOOST_TEST(undelete.reason.kind() == error_kind::not_found);
  BOOST_TEST((d.replay() == d.state));
  auto restored = namespace_state::decode(d.state.encode(), d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(restored);
  BOOST_TEST((*restored == d.state));
}

BOOST_AUTO_TEST_CASE(retention_keeps_what_is_newer_than_the_cutoff) {
  namespace_driver d;
  d.ok(commit_file{"/x", 0, content_of({"1"})});
  d.ok(delete_entry{"/x", 0});
  const auto before = d.state.last_seq();
  d.ok(apply_retention{1700000000000000});  // before everything
  BOOST_TEST(d.state.last_seq() == before);  // nothing to reclaim: nothing written
  BOOST_TEST(!d.state.history("/x").empty());
  d.ok(undelete_file{"/x"});
  BOOST_TEST(d.state.lookup("/x") != nullptr);
}

BOOST_AUTO_TEST_CASE(retention_that_would_change_nothing_writes_nothing_and_never_repeats) {
  namespace_driver d;
  d.ok(commit_file{"/j.txt", 0, content_of({"j"})});  // stamped +1
  const auto v1 = d.ok(commit_file{"/k.txt", 0, content_of({"k1"})});
  d.ok(commit_file{"/k.txt", v1, content_of({"k2"})});
  d.ok(delete_entry{"/j.txt", 0});  // stamped +4
  // /j.txt's content is older than the cutoff but is the content an undelete brings back,
  // and its deletion is not older: retention has nothing to take from it.
  const std::int64_t cutoff = 1700000000000000 + 4;
  const auto before = d.state.last_seq();
  d.ok(apply_retention{cutoff});
  BOOST_TEST(d.state.last_seq() == before + 1);  // /k.txt's first revision goes
  BOOST_TEST(d.state.history("/k.txt").size() == 1u);
  BOOST_TEST(d.state.history("/j.txt").size() == 2u);
  d.ok(apply_retention{cutoff});
  BOOST_TEST(d.state.last_seq() == before + 1);  // the same check again writes nothing
  d.ok(undelete_file{"/j.txt"});
  BOOST_TEST((d.state.lookup("/j.txt")->content == content_of({"j"})));
}

BOOST_AUTO_TEST_CASE(random_command_sequences_replay_to_the_same_state) {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::mt19937 rng(seed);
    namespace_driver d;
    const std::vector<std::string> names = {"a", "B", "c", "docs", "Docs", "x.txt"};
    auto random_path = [&] {
      std::string p;
      const int depth = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < depth; ++i) p += "/" + names[rng() % names.size()];
      return p;
    };
    int accepted = 0;
    for (int i = 0; i < 400; ++i) {
      const auto path = random_path();
      const node* at = d.state.lookup(path);
      actors::command_body body;
      switch (rng() % 6) {
        default:
        case 0:
        case 1:
          body = commit_file{path, at != nullptr && rng() % 4 != 0 ? at->revision : 0,
                             content_of({std::to_string(rng())})};
          break;
        case 2: body = delete_entry{path, 0}; break;
        case 3: body = move_entry{path, random_path()}; break;
        case 4: body = create_folder{path}; break;
        case 5:
          body = rng() % 4 == 0 ? command_body{apply_retention{1700000000000000 + i - 50}}
                                : command_body{set_quota{rng() % 3 == 0 ? 0u : 1000u}};
          break;
      }
      if (std::holds_alternative<actors::decision>(d.run(std::move(body)))) ++accepted;
    }
    BOOST_TEST(accepted > 100, "seed " << seed);
    BOOST_TEST((d.replay() == d.state), "seed " << seed);
    // And the comparison has teeth: one event short is a different state.
    namespace_state partial;
    for (std::size_t i = 0; i + 1 < d.log.size(); ++i) {
      BOOST_REQUIRE(partial.apply(d.log[i].seq, d.log[i].hash, d.log[i].reader()));
    }
    BOOST_TEST(!(partial == d.state), "seed " << seed);
  }
}

// The window against a plain model (a deque in arrival order and a map), with a capacity
// small enough that ids fall out all the time and probe runs wrap around the index.
BOOST_AUTO_TEST_CASE(the_operation_window_agrees_with_a_plain_model) {
  for (unsigned seed : {1u, 2u, 3u}) {
    std::mt19937 rng(seed);
    constexpr std::size_t capacity = 37;
    operation_window window(capacity);
    std::deque<std::string> order;
    std::map<std::string, applied_operation> model;
    for (std::uint64_t seq = 1; seq <= 20000; ++seq) {
      // Ids from a universe a few times the capacity: repeats both inside and outside.
      const std::string id = "op-" + std::to_string(rng() % 150);
      window.remember(id, seq);
      if (auto it = model.find(id); it != model.end()) {
        it->second.last_seq = seq;
      } else {
        order.push_back(id);
        model[id] = {seq, seq};
        if (order.size() > capacity) {
          model.erase(order.front());
          order.pop_front();
        }
      }
      if (seq % 97 != 0) continue;
      BOOST_REQUIRE_EQUAL(window.size(), order.size());
      for (int u = 0; u < 150; ++u) {
        const std::string probe = "op-" + std::to_string(u);
        const auto* found = window.find(probe);
        const auto expected = model.find(probe);
        BOOST_REQUIRE_EQUAL(found != nullptr, expected != model.end());
        if (found == nullptr) continue;
        BOOST_REQUIRE_EQUAL(found->first_seq, expected->second.first_seq);
        BOOST_REQUIRE_EQUAL(found->last_seq, expected->second.last_seq);
      }
      std::vector<std::string> seen;
      window.for_each([&](std::string_view id, const applied_operation&) { seen.emplace_back(id); });
      BOOST_REQUIRE((seen == std::vector<std::string>(order.begin(), order.end())));
    }
    // Rebuilt oldest first (as a snapshot is loaded), it is the same window.
    operation_window rebuilt(capacity);
    window.for_each([&](std::string_view id, const applied_operation& a) { rebuilt.restore(id, a); });
    BOOST_TEST((rebuilt == window));
    rebuilt.remember("op-new", 999999);
    BOOST_TEST(!(rebuilt == window));
  }
  operation_window empty(5);
  empty.remember("", 1);  // commands without an id are not remembered
  BOOST_TEST(empty.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_snapshot_decodes_in_place_and_from_bytes_that_are_not_word_aligned) {
  namespace_driver d;
  d.ok(commit_file{"/docs/a.txt", 0, content_of({"a", "b"})}, "op-a");
  d.ok(create_folder{"/empty"}, "op-e");
  const std::string bytes = d.state.encode();
  auto aligned = namespace_state::decode(bytes, d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(aligned);
  BOOST_TEST((*aligned == d.state));
  std::string shifted = " " + bytes;  // one byte in: the decoder must copy, not misread
  auto unaligned = namespace_state::decode(std::string_view(shifted).substr(1),
                                           d.state.last_seq(), d.state.last_hash());
  BOOST_REQUIRE(unaligned);
  BOOST_TEST((*unaligned == d.state));
}
