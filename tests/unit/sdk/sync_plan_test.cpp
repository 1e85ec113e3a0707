// The folder sync decisions (sync_plan.hpp): three trees in, actions out, no server.
#define BOOST_TEST_MODULE sdk_sync_plan
#include "autosync/sdk/sync_plan.hpp"

#include <algorithm>
#include <boost/test/unit_test.hpp>

#include "autosync/sdk/client.hpp"
#include "printers.hpp"

using namespace autosync;
using namespace autosync::sdk;

namespace autosync::sdk {

std::ostream& boost_test_print_type(std::ostream& out, feed_outcome::kind k) {
  return out << static_cast<int>(k);
}

}  // namespace autosync::sdk

namespace {

sha256_digest content(int n) {
  return sha256("content " + std::to_string(n));
}

remote_item remote_file(int c, std::uint64_t revision, std::uint64_t id) {
  remote_item r;
  r.id = id;
  r.revision = revision;
  r.size = 100;
  r.hash = content(c);
  return r;
}

remote_item remote_folder(std::uint64_t id = 0) {
  remote_item r;
  r.folder = true;
  r.id = id;
  return r;
}

local_item local_file(int c, std::uint64_t inode) {
  local_item l;
  l.size = 100;
  l.hash = content(c);
  l.inode = inode;
  l.mtime_ns = 1;
  return l;
}

local_item local_folder(std::uint64_t inode) {
  local_item l;
  l.folder = true;
  l.inode = inode;
  return l;
}

// A path synced with content `c` at `revision`, the same on both sides.
void synced_file(sync_trees& t, const std::string& path, int c, std::uint64_t revision,
                 std::uint64_t id, std::uint64_t inode) {
  t.local[path] = local_file(c, inode);
  t.remote[path] = remote_file(c, revision, id);
  t.synced[path] = remote_file(c, revision, id);
  t.last_inodes[path] = inode;
}

void synced_folder(sync_trees& t, const std::string& path, std::uint64_t id, std::uint64_t inode) {
  t.local[path] = local_folder(inode);
  t.remote[path] = remote_folder(id);
  t.synced[path] = remote_folder(id);
  t.last_inodes[path] = inode;
}

const plan_options options{"laptop", "2026-11-21"};

sync_plan plan(const sync_trees& t) {
  return plan_sync(t, options);
}

std::vector<std::string> described(const sync_plan& p) {
  std::vector<std::string> out;
  for (const auto& a : p.actions) {
    out.push_back(std::string(to_string(a.what)) + " " + a.path + (a.to.empty() ? "" : " " + a.to));
  }
  return out;
}

std::vector<std::string> expect(std::initializer_list<const char*> actions) {
  return {actions.begin(), actions.end()};
}

// No UTF-8 sequence cut short (a lead byte's continuation bytes all follow it).
bool whole_characters(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

sync_action only_action(const sync_plan& p) {
  BOOST_REQUIRE_EQUAL(p.actions.size(), 1u);
  return p.actions.front();
}

}  // namespace

BOOST_AUTO_TEST_CASE(unchanged_folder_plans_nothing) {
  sync_trees t;
  synced_folder(t, "docs", 1, 10);
  synced_file(t, "docs/a.txt", 1, 5, 2, 11);
  BOOST_TEST(plan(t).actions.empty());
}

BOOST_AUTO_TEST_CASE(remote_entries_with_names_the_sync_keeps_for_itself_are_left_alone) {
  sync_trees t;
  t.remote[".autosync"] = remote_folder(1);
  t.remote[".autosync/mine.txt"] = remote_file(1, 3, 2);
  t.remote["notes.autosync-part"] = remote_file(2, 4, 3);
  t.remote["keep.txt"] = remote_file(3, 5, 4);
  // What an older build fetched and recorded as synced, and the scan never saw here.
  t.synced["old.autosync-part"] = remote_file(4, 6, 5);
  t.remote["old.autosync-part"] = remote_file(4, 6, 5);
  const auto p = plan(t);
  BOOST_TEST(described(p) == expect({"download keep.txt"}), boost::test_tools::per_element());
  std::vector<std::string> skipped;
  for (const auto& s : p.skipped) skipped.push_back(s.path);
  BOOST_TEST(skipped == (std::vector<std::string>{".autosync", "notes.autosync-part",
                                                  "old.autosync-part"}),
             boost::test_tools::per_element());
  BOOST_TEST(p.skipped.front().reason.find("rename it on the server") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_type_changed_on_one_side_wins_over_two_passes) {
  auto plan_of = [](sync_trees t) {
    auto p = plan(t);
    BOOST_TEST(p.skipped.empty());
    BOOST_TEST(p.another_pass);
    return described(p);
  };
  {  // here, a folder became a file: the server's folder goes (after what was in it)
    sync_trees t;
    synced_folder(t, "d", 1, 10);
    synced_file(t, "d/x", 1, 5, 2, 11);
    t.local.erase("d/x");
    t.local["d"] = local_file(2, 12);
    BOOST_TEST(plan_of(t) == expect({"delete_remote_folder d"}), boost::test_tools::per_element());
  }
  {  // here, a file became a folder: the server's file goes; what is inside waits
    sync_trees t;
    synced_file(t, "d", 1, 5, 2, 11);
    t.local["d"] = local_folder(12);
    t.local["d/x"] = local_file(3, 13);
    BOOST_TEST(plan_of(t) == expect({"delete_remote d"}), boost::test_tools::per_element());
  }
  {  // on the server, a folder became a file: the folder here goes, emptied first
    sync_trees t;
    synced_folder(t, "d", 1, 10);
    synced_file(t, "d/x", 1, 5, 2, 11);
    t.remote.erase("d/x");
    t.remote["d"] = remote_file(2, 7, 3);
    BOOST_TEST(plan_of(t) == expect({"delete_local d/x", "delete_local_folder d"}),
               boost::test_tools::per_element());
  }
  {  // here, a folder became a file, but the server got a new file inside it meanwhile:
     // nothing is touched, and the clash is reported
    sync_trees t;
    synced_folder(t, "d", 1, 10);
    synced_file(t, "d/x", 1, 5, 2, 11);
    t.local.erase("d/x");
    t.local["d"] = local_file(2, 12);
    synced_folder(t, "d/sub", 6, 14);  // a folder below that would go whole
    for (int i = 0; i < 12; ++i) {
      synced_file(t, "d/sub/f" + std::to_string(i), 1, 5, 20 + i, 30 + i);
      t.local.erase("d/sub/f" + std::to_string(i));
    }
    t.local.erase("d/sub");
    t.remote["d/new"] = remote_file(3, 9, 5);
    const auto p = plan(t);
    BOOST_TEST(p.actions.empty(), described(p).size());
    BOOST_TEST(!p.another_pass);
    BOOST_TEST(p.remote_files_deleted == 0u);
    BOOST_REQUIRE_EQUAL(p.skipped.size(), 1u);
    BOOST_TEST(p.skipped[0].path == "d");
    BOOST_TEST(p.skipped[0].reason.find("added entries inside the folder") != std::string::npos);
  }
  {  // on the server, a file became a folder: the file here goes; what is inside waits
    sync_trees t;
    synced_file(t, "d", 1, 5, 2, 11);
    t.remote["d"] = remote_folder(3);
    t.remote["d/x"] = remote_file(3, 8, 4);
    BOOST_TEST(plan_of(t) == expect({"delete_local d"}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(local_edit_is_uploaded_based_on_the_synced_revision) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local["a.txt"] = local_file(2, 11);
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "upload");
  BOOST_TEST(a.base_revision == 5u);
  BOOST_TEST(a.local.hash == content(2));
}

BOOST_AUTO_TEST_CASE(new_local_file_is_uploaded_as_a_creation) {
  sync_trees t;
  t.local["new.txt"] = local_file(1, 11);
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "upload");
  BOOST_TEST(a.base_revision == 0u);  // a concurrent remote creation becomes a conflict
}

BOOST_AUTO_TEST_CASE(remote_edit_is_downloaded) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.remote["a.txt"] = remote_file(2, 9, 2);
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "download");
  BOOST_TEST(a.item.revision == 9u);
  BOOST_TEST(a.local.inode == 11u);  // replaced only if still as scanned
}

BOOST_AUTO_TEST_CASE(local_delete_of_an_unchanged_file_deletes_it_remotely_at_its_revision) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local.erase("a.txt");
  const auto p = plan(t);
  const auto& a = only_action(p);
  BOOST_TEST(to_string(a.what) == "delete_remote");
  BOOST_TEST(a.base_revision == 5u);
  BOOST_TEST(p.remote_files_deleted == 1u);
}

BOOST_AUTO_TEST_CASE(remote_delete_of_an_unchanged_file_deletes_it_locally) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.remote.erase("a.txt");
  const auto p = plan(t);
  BOOST_TEST(to_string(only_action(p).what) == "delete_local");
  BOOST_TEST(p.local_files_deleted == 1u);
}

BOOST_AUTO_TEST_CASE(local_edit_and_remote_edit_make_a_conflicted_copy) {
  sync_trees t;
  synced_file(t, "docs/report.pdf", 1, 5, 2, 11);
  t.local["docs/report.pdf"] = local_file(2, 11);
  t.remote["docs/report.pdf"] = remote_file(3, 9, 2);
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "conflict");
  // The server's version keeps the name; the local one becomes the copy.
  BOOST_TEST(a.to == "docs/report (conflicted copy laptop 2026-11-21).pdf");
  BOOST_TEST(a.item.hash == content(3));
  BOOST_TEST(a.local.hash == content(2));
}

BOOST_AUTO_TEST_CASE(a_second_conflicted_copy_of_the_day_gets_a_number) {
  sync_trees t;
  t.local["a.txt"] = local_file(1, 11);
  t.remote["a.txt"] = remote_file(2, 9, 2);
  t.remote["a (conflicted copy laptop 2026-11-21).txt"] = remote_file(3, 7, 3);
  t.synced["a (conflicted copy laptop 2026-11-21).txt"] = remote_file(3, 7, 3);
  t.local["a (conflicted copy laptop 2026-11-21).txt"] = local_file(3, 12);
  BOOST_TEST(only_action(plan(t)).to == "a (conflicted copy laptop 2026-11-21 2).txt");
}

BOOST_AUTO_TEST_CASE(the_same_edit_on_both_sides_is_only_recorded) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local["a.txt"] = local_file(2, 11);
  t.remote["a.txt"] = remote_file(2, 9, 2);
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "record");
  BOOST_TEST(a.item.revision == 9u);
}

BOOST_AUTO_TEST_CASE(a_local_edit_beats_a_remote_delete) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local["a.txt"] = local_file(2, 11);
  t.remote.erase("a.txt");
  const auto& a = only_action(plan(t));
  BOOST_TEST(to_string(a.what) == "upload");
  BOOST_TEST(a.base_revision == 0u);
}

BOOST_AUTO_TEST_CASE(a_remote_edit_beats_a_local_delete) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local.erase("a.txt");
  t.remote["a.txt"] = remote_file(2, 9, 2);
  BOOST_TEST(to_string(only_action(plan(t)).what) == "download");
}

BOOST_AUTO_TEST_CASE(a_file_deleted_on_both_sides_is_forgotten) {
  sync_trees t;
  t.synced["a.txt"] = remote_file(1, 5, 2);
  const auto p = plan(t);
  BOOST_TEST(to_string(only_action(p).what) == "forget");
  BOOST_TEST(p.local_files_deleted + p.remote_files_deleted == 0u);
}

BOOST_AUTO_TEST_CASE(a_first_sync_merges_both_sides_and_keeps_both_versions_of_a_difference) {
  sync_trees t;
  t.local["only-here.txt"] = local_file(1, 11);
  t.remote["only-there.txt"] = remote_file(2, 5, 2);
  t.local["same.txt"] = local_file(3, 12);
  t.remote["same.txt"] = remote_file(3, 6, 3);
  t.local["differs.txt"] = local_file(4, 13);
  t.remote["differs.txt"] = remote_file(5, 7, 4);
  BOOST_TEST(described(plan(t)) ==
                 expect({"conflict differs.txt differs (conflicted copy laptop 2026-11-21).txt",
                         "upload only-here.txt", "download only-there.txt", "record same.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_local_rename_is_a_remote_move) {
  sync_trees t;
  synced_file(t, "old.txt", 1, 5, 2, 11);
  t.local.erase("old.txt");
  t.local["new.txt"] = local_file(1, 11);
  const auto p = plan(t);
  BOOST_TEST(described(p) == expect({"move_remote old.txt new.txt"}),
             boost::test_tools::per_element());
  BOOST_TEST(p.remote_files_deleted == 0u);
}

BOOST_AUTO_TEST_CASE(a_local_rename_into_a_new_folder_creates_the_folder_first) {
  sync_trees t;
  synced_file(t, "a.txt", 1, 5, 2, 11);
  t.local.erase("a.txt");
  t.local["new"] = local_folder(20);
  t.local["new/a.txt"] = local_file(1, 11);
  BOOST_TEST(described(plan(t)) ==
                 expect({"make_remote_folder new", "move_remote a.txt new/a.txt", "record new"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_rename_picks_the_copy_with_the_old_inode) {
  sync_trees t;
  synced_file(t, "old.txt", 1, 5, 2, 11);
  t.local.erase("old.txt");
  t.local["a-copy.txt"] = local_file(1, 30);
  t.local["renamed.txt"] = local_file(1, 11);
  BOOST_TEST(described(plan(t)) == expect({"move_remote old.txt renamed.txt", "upload a-copy.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(empty_files_are_not_taken_for_renames_without_the_inode) {
  sync_trees t;
  synced_file(t, "empty.txt", 1, 5, 2, 11);
  t.synced["empty.txt"].size = 0;
  t.local.erase("empty.txt");
  t.local["other-empty.txt"] = local_file(1, 40);
  BOOST_TEST(described(plan(t)) == expect({"upload other-empty.txt", "delete_remote empty.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_remote_move_is_a_local_rename_then_an_edit_a_download) {
  sync_trees t;
  synced_file(t, "old.txt", 1, 5, 2, 11);
  t.remote.erase("old.txt");
  t.remote["new.txt"] = remote_file(2, 9, 2);  // same id, moved and edited
  BOOST_TEST(described(plan(t)) == expect({"move_local old.txt new.txt", "download new.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_remote_folder_move_takes_its_contents_in_one_rename) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_file(t, "a/x.txt", 1, 5, 2, 11);
  synced_file(t, "a/y.txt", 2, 6, 3, 12);
  move_subtree(t.remote, "a", "b");
  BOOST_TEST(described(plan(t)) == expect({"move_local a b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_local_folder_rename_is_one_remote_move) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_file(t, "a/x.txt", 1, 5, 2, 11);
  move_subtree(t.local, "a", "b");
  BOOST_TEST(described(plan(t)) == expect({"move_remote a b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_local_folder_delete_is_one_remote_delete_but_counts_its_files) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_folder(t, "a/sub", 3, 12);
  synced_file(t, "a/x.txt", 1, 5, 2, 11);
  synced_file(t, "a/sub/y.txt", 2, 6, 4, 13);
  for (const auto* p : {"a", "a/sub", "a/x.txt", "a/sub/y.txt"}) t.local.erase(p);
  const auto p = plan(t);
  BOOST_TEST(described(p) == expect({"delete_remote_folder a"}), boost::test_tools::per_element());
  BOOST_TEST(p.remote_files_deleted == 2u);
}

BOOST_AUTO_TEST_CASE(a_remote_folder_delete_deletes_files_then_folders_deepest_first) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_folder(t, "a/sub", 3, 12);
  synced_file(t, "a/sub/y.txt", 2, 6, 4, 13);
  for (const auto* p : {"a", "a/sub", "a/sub/y.txt"}) t.remote.erase(p);
  BOOST_TEST(described(plan(t)) == expect({"delete_local a/sub/y.txt", "delete_local_folder a/sub",
                                           "delete_local_folder a"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_remote_folder_delete_keeps_the_folder_of_a_local_edit) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_file(t, "a/x.txt", 1, 5, 2, 11);
  synced_file(t, "a/y.txt", 2, 6, 3, 12);
  for (const auto* p : {"a", "a/x.txt", "a/y.txt"}) t.remote.erase(p);
  t.local["a/y.txt"] = local_file(9, 12);
  BOOST_TEST(described(plan(t)) == expect({"upload a/y.txt", "delete_local a/x.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_local_folder_delete_spares_the_folder_of_a_remote_edit) {
  sync_trees t;
  synced_folder(t, "a", 1, 10);
  synced_file(t, "a/x.txt", 1, 5, 2, 11);
  synced_file(t, "a/y.txt", 2, 6, 3, 12);
  for (const auto* p : {"a", "a/x.txt", "a/y.txt"}) t.local.erase(p);
  t.remote["a/y.txt"] = remote_file(9, 20, 3);
  BOOST_TEST(described(plan(t)) == expect({"download a/y.txt", "delete_remote a/x.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unreadable_paths_are_never_taken_for_deletions) {
  sync_trees t;
  synced_folder(t, "private", 1, 10);
  synced_file(t, "private/a.txt", 1, 5, 2, 11);
  synced_file(t, "locked.txt", 2, 6, 3, 12);
  t.local.erase("private/a.txt");
  t.local.erase("locked.txt");
  t.frozen = {"private", "locked.txt"};
  BOOST_TEST(plan(t).actions.empty());
}

BOOST_AUTO_TEST_CASE(empty_folders_are_created_and_deleted_as_folders) {
  sync_trees t;
  t.local["made-here"] = local_folder(10);
  t.remote["made-there"] = remote_folder(5);
  synced_folder(t, "gone-here", 6, 11);
  t.local.erase("gone-here");
  synced_folder(t, "gone-there", 7, 12);
  t.remote.erase("gone-there");
  BOOST_TEST(described(plan(t)) ==
                 expect({"make_remote_folder made-here", "make_local_folder made-there",
                         "delete_local_folder gone-there", "delete_remote_folder gone-here"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(names_differing_only_in_letter_case_are_skipped_not_failed) {
  sync_trees t;
  synced_file(t, "Report.txt", 1, 5, 2, 11);
  t.local["report.txt"] = local_file(2, 12);
  t.local["new.txt"] = local_file(3, 13);
  t.local["NEW.txt"] = local_file(4, 14);
  const auto p = plan(t);
  BOOST_TEST(described(p) == expect({"upload NEW.txt"}), boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(p.skipped.size(), 2u);
  BOOST_TEST(p.skipped[0].path == "new.txt");
  BOOST_TEST(p.skipped[1].path == "report.txt");
  BOOST_TEST(p.skipped[1].reason.find("Report.txt") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_file_against_a_folder_is_skipped_with_a_reason) {
  sync_trees t;
  t.local["x"] = local_file(1, 11);
  t.remote["x"] = remote_folder(3);
  const auto p = plan(t);
  BOOST_TEST(p.actions.empty());
  BOOST_REQUIRE_EQUAL(p.skipped.size(), 1u);
  BOOST_TEST(p.skipped[0].reason.find("rename one of them") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(moves_run_first_and_deletes_last) {
  sync_trees t;
  synced_file(t, "z-old.txt", 1, 5, 2, 11);
  t.local.erase("z-old.txt");
  t.local["z-new.txt"] = local_file(1, 11);
  synced_file(t, "a-gone.txt", 2, 6, 3, 12);
  t.local.erase("a-gone.txt");
  t.local["m-new.txt"] = local_file(3, 13);
  BOOST_TEST(described(plan(t)) == expect({"move_remote z-old.txt z-new.txt", "upload m-new.txt",
                                           "delete_remote a-gone.txt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(conflicted_copy_names_of_long_names_fit_in_255_bytes) {
  const std::string device(64, 'd');
  std::string long_stem = "n";  // then 120 "é": two bytes each, so a cut may fall inside one
  for (int i = 0; i < 120; ++i) long_stem += "\xc3\xa9";
  for (const std::string& name : {long_stem + ".txt", long_stem, "x." + std::string(250, 'e')}) {
    const auto copy = conflicted_copy_name("folder/" + name, device, "2026-01-02", 3);
    BOOST_TEST(copy.rfind("folder/", 0) == 0u);
    const auto copy_name = copy.substr(7);
    BOOST_TEST(copy_name.size() <= 255u, copy_name.size());
    BOOST_TEST(copy_name.find(" (conflicted copy " + device + " 2026-01-02 3)") != std::string::npos);
    BOOST_TEST(whole_characters(copy_name), copy_name);
  }
  BOOST_TEST(conflicted_copy_name(long_stem + ".txt", "pc", "2026-01-02").size() <= 255u);
  const auto kept = conflicted_copy_name(long_stem + ".txt", device, "2026-01-02");
  BOOST_TEST(kept.substr(kept.size() - 4) == ".txt");
}

BOOST_AUTO_TEST_CASE(conflicted_copy_names_keep_the_extension_and_the_folder) {
  BOOST_TEST(conflicted_copy_name("a/b/report.pdf", "pc", "2026-01-02") ==
             "a/b/report (conflicted copy pc 2026-01-02).pdf");
  BOOST_TEST(conflicted_copy_name("Makefile", "pc", "2026-01-02") ==
             "Makefile (conflicted copy pc 2026-01-02)");
  BOOST_TEST(conflicted_copy_name("d/.bashrc", "pc", "2026-01-02") ==
             "d/.bashrc (conflicted copy pc 2026-01-02)");
  BOOST_TEST(conflicted_copy_name("x.tar.gz", "pc", "2026-01-02", 3) ==
             "x.tar (conflicted copy pc 2026-01-02 3).gz");
  BOOST_TEST(conflicted_copy_name("x.txt", "home/pc", "2026-01-02") ==
             "x (conflicted copy home-pc 2026-01-02).txt");
}

BOOST_AUTO_TEST_CASE(the_deletion_limit_stops_a_mass_delete_and_says_how_to_proceed) {
  sync_plan p;
  p.local_files_deleted = 6;
  const auto refused = check_deletions(p, 11, std::nullopt);  // more than half of 11
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST(refused.err().kind() == error_kind::invalid);
  BOOST_TEST(refused.err().message().find("--max-delete 6") != std::string::npos);
  BOOST_TEST(check_deletions(p, 11, std::size_t{6}).is_ok());
  BOOST_TEST(check_deletions(p, 10, std::nullopt).is_ok());  // few files: no half rule
  p.local_files_deleted = 1001;
  BOOST_TEST(!check_deletions(p, 100000, std::nullopt).is_ok());
  BOOST_TEST(check_deletions(p, 100000, std::size_t{1001}).is_ok());
}

// --- the remote tree from the feed ---------------------------------------------------------

namespace {

change committed(const std::string& path, int c, std::uint64_t seq, std::uint64_t id) {
  change ch;
  ch.what = change::kind::committed;
  ch.seq = seq;
  ch.path = path;
  entry e;
  e.id = id;
  e.path = path;
  e.revision = seq;
  e.hash = content(c);
  ch.file = e;
  return ch;
}

change moved(const std::string& from, const std::string& to, std::uint64_t seq) {
  change ch;
  ch.what = change::kind::moved;
  ch.seq = seq;
  ch.from_path = from;
  ch.path = to;
  return ch;
}

change deleted(const std::string& path, std::uint64_t seq) {
  change ch;
  ch.what = change::kind::deleted;
  ch.seq = seq;
  ch.path = path;
  return ch;
}

std::vector<std::string> paths_of(const remote_tree& tree) {
  std::vector<std::string> out;
  for (const auto& [path, item] : tree) out.push_back(path);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(relative_paths_are_taken_under_the_root_only) {
  BOOST_TEST(*relative_to("/docs", "/docs/a/b.txt") == "a/b.txt");
  BOOST_TEST(*relative_to("/docs", "/docs") == "");
  BOOST_TEST(!relative_to("/docs", "/docsx/a.txt"));
  BOOST_TEST(*relative_to("/", "/a.txt") == "a.txt");
  BOOST_TEST(remote_path("/", "a.txt") == "/a.txt");
  BOOST_TEST(remote_path("/docs", "a.txt") == "/docs/a.txt");
}

BOOST_AUTO_TEST_CASE(the_feed_builds_the_tree_with_parent_folders) {
  remote_tree tree;
  BOOST_TEST(apply_change(tree, "/docs", committed("/docs/a/b.txt", 1, 5, 7)).what ==
             feed_outcome::kind::applied);
  BOOST_TEST(apply_change(tree, "/docs", committed("/other/c.txt", 1, 6, 8)).what ==
             feed_outcome::kind::ignored);
  BOOST_TEST(paths_of(tree) == expect({"a", "a/b.txt"}), boost::test_tools::per_element());
  BOOST_TEST(tree["a/b.txt"].revision == 5u);
  BOOST_TEST(tree["a"].folder);
}

BOOST_AUTO_TEST_CASE(a_folder_moved_in_the_feed_keeps_ids_below_it) {
  remote_tree tree;
  apply_change(tree, "/docs", committed("/docs/a/x.txt", 1, 5, 7));
  apply_change(tree, "/docs", committed("/docs/a b.txt", 1, 6, 8));
  BOOST_TEST(apply_change(tree, "/docs", moved("/docs/a", "/docs/z/a2", 9)).what ==
             feed_outcome::kind::applied);
  BOOST_TEST(paths_of(tree) == expect({"a b.txt", "z", "z/a2", "z/a2/x.txt"}),
             boost::test_tools::per_element());
  BOOST_TEST(tree["z/a2/x.txt"].id == 7u);
}

BOOST_AUTO_TEST_CASE(moves_across_the_root_are_deletes_or_fetches) {
  remote_tree tree;
  apply_change(tree, "/docs", committed("/docs/a.txt", 1, 5, 7));
  BOOST_TEST(apply_change(tree, "/docs", moved("/docs/a.txt", "/elsewhere/a.txt", 6)).what ==
             feed_outcome::kind::applied);
  BOOST_TEST(tree.empty());
  const auto in = apply_change(tree, "/docs", moved("/elsewhere/b", "/docs/b", 7));
  BOOST_TEST(in.what == feed_outcome::kind::fetch_needed);
  BOOST_TEST(in.path == "/docs/b");
}

BOOST_AUTO_TEST_CASE(deleting_or_moving_the_root_is_reported_not_applied) {
  remote_tree tree;
  apply_change(tree, "/docs/sub", committed("/docs/sub/a.txt", 1, 5, 7));
  BOOST_TEST(apply_change(tree, "/docs/sub", deleted("/docs", 6)).what ==
             feed_outcome::kind::root_gone);
  const auto moved_away = apply_change(tree, "/docs/sub", moved("/docs", "/x", 7));
  BOOST_TEST(moved_away.what == feed_outcome::kind::root_gone);
  BOOST_TEST(moved_away.path == "/x/sub");
  BOOST_TEST(tree.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_deleted_folder_takes_everything_below_it_and_nothing_beside) {
  remote_tree tree;
  apply_change(tree, "/", committed("/a/x.txt", 1, 5, 7));
  apply_change(tree, "/", committed("/a.txt", 1, 6, 8));
  apply_change(tree, "/", deleted("/a", 9));
  BOOST_TEST(paths_of(tree) == expect({"a.txt"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_folder_created_in_the_feed_matches_one_made_here) {
  remote_tree tree;
  change c;
  c.what = change::kind::folder_created;
  c.seq = 42;
  c.path = "/docs/new";
  c.folder = true;
  apply_change(tree, "/docs", c);
  BOOST_TEST(tree["new"].folder);
  BOOST_TEST(tree["new"].id == feed_folder_id(42));
}
