// autosync-replay end to end: a journal written through the domain and the real journal,
// read by the real tool in its own process.
#define BOOST_TEST_MODULE replay_tool
#include <boost/test/unit_test.hpp>


#include <fstream>
#include <iterator>

#include "../unit/actors/journaled_user.hpp"
#include "../unit/actors/namespace_fixture.hpp"
#include "../unit/journal/journal_fixture.hpp"
#include "raw_database.hpp"
#include "test_data.hpp"

using namespace autosync;
using autosync::test::content_of;

namespace {

test::process_result run_tool(const std::string& args) {
  return test::run_process(AUTOSYNC_REPLAY_BIN, args);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A data folder as a node keeps it: the journal and its master key file.
struct node_data {
  test::temp_dir dir;
  journal::master_key key;
  node_data() {
    auto created = journal::create_master_key_file(dir / "master.key");
    BOOST_REQUIRE(created);
    key = *created;
  }
  std::unique_ptr<journal::journal> open() const {
    journal::options o;
    o.dir = dir.path();
    o.master_key = key;
    return test::open_journal(o);
  }
  std::string args(const std::string& command) const {
    return "--data-dir " + dir.path().string() + " " + command;
  }
};

// Writes alice's files: report.txt in two versions, a photo moved into a folder, a file
// deleted. Returns the seq after the first version of report.txt.
std::uint64_t write_history(journal::journal& j) {
  test::journaled_user alice(j, "alice");
  auto put = [&](const std::string& content) {
    BOOST_REQUIRE(j.put_chunk_and_wait("alice", sha256(content), content));
  };
  put("report v1");
  put("report ");
  put("version two");
  put("a photo");
  put("scratch");
  BOOST_REQUIRE(alice.run(actors::commit_file{"/docs/report.txt", 0, content_of({"report v1"})}));
  const auto first = alice.state.last_seq();
  BOOST_REQUIRE(alice.run(actors::commit_file{"/docs/report.txt", first,
                                              content_of({"report ", "version two"})}));
  BOOST_REQUIRE(alice.run(actors::commit_file{"/img.jpg", 0, content_of({"a photo"})}));
  BOOST_REQUIRE(alice.run(actors::move_entry{"/img.jpg", "/photos/img.jpg"}));
  BOOST_REQUIRE(alice.run(actors::commit_file{"/tmp.txt", 0, content_of({"scratch"})}));
  BOOST_REQUIRE(alice.run(actors::delete_entry{"/tmp.txt", 0}));
  journal::snapshot snap{alice.state.last_seq(), alice.state.last_hash(), 0,
                         schema::NAMESPACE_STATE_FORMAT, alice.state.encode()};
  BOOST_REQUIRE(j.write_snapshot("alice", snap));
  return first;
}

}  // namespace

BOOST_AUTO_TEST_CASE(verify_passes_on_a_journal_the_domain_wrote) {
  node_data node;
  { write_history(*node.open()); }
  auto r = run_tool(node.args("verify"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("OK: 1 users") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("1 snapshots") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(a_snapshot_of_an_older_state_format_is_neither_loaded_nor_flagged) {
  node_data node;
  {
    auto j = node.open();
    write_history(*j);
    std::uint64_t seq = 0;
    sha256_digest hash;
    BOOST_REQUIRE(j->read_events("alice", 2, 2, [&](journal::stored_event&& e) {
      seq = e.seq();
      hash = e.hash();
      return true;
    }));
    // As an older build wrote it: format 1, here an empty tree, so loading it would show.
    journal::snapshot old{seq, hash, 0, 1, actors::namespace_state().encode()};
    BOOST_REQUIRE(j->write_snapshot("alice", old));
  }
  auto verified = run_tool(node.args("verify"));
  BOOST_TEST(verified.exit_code == 0, verified.output);
  auto state = run_tool(node.args("state alice --at-seq 2"));
  BOOST_TEST(state.exit_code == 0, state.output);
  BOOST_TEST(state.output.find("/docs/report.txt") != std::string::npos, state.output);
}

BOOST_AUTO_TEST_CASE(verify_names_user_and_seq_of_a_tampered_or_missing_event) {
  node_data node;
  { write_history(*node.open()); }
  // Remove event 3 behind the journal's back (the raw database, with RocksDB itself).
  test::raw_database(node.dir.path()).delete_event("alice", 3);
  auto r = run_tool(node.args("verify"));
  BOOST_TEST(r.exit_code != 0, r.output);
  BOOST_TEST(r.output.find("user alice seq 3") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("FAILED") != std::string::npos, r.output);
}

// The newest event is the user's head: damaged, it is still a finding of verify's report,
// for one user or for all, not an error that stops the tool before it looks.
BOOST_AUTO_TEST_CASE(verify_reports_a_damaged_newest_event) {
  node_data node;
  std::uint64_t last = 0;
  {
    auto j = node.open();
    write_history(*j);
    last = j->head("alice")->last_seq;
  }
  {
    test::raw_database raw(node.dir.path());
    const auto key = test::raw_database::event_key("alice", last);
    std::string value;
    BOOST_REQUIRE(raw.db->Get(rocksdb::ReadOptions(), raw.handles[1], key, &value).ok());
    value[value.size() / 2] ^= 1;
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[1], key, value).ok());
  }
  for (const char* command : {"verify alice", "verify"}) {
    auto r = run_tool(node.args(command));
    BOOST_TEST(r.exit_code == 1, command << ": " << r.output);
    BOOST_TEST(r.output.find("user alice seq " + std::to_string(last)) != std::string::npos,
               command << ": " << r.output);
    BOOST_TEST(r.output.find("FAILED") != std::string::npos, command << ": " << r.output);
  }
}

BOOST_AUTO_TEST_CASE(export_reproduces_the_files_byte_for_byte_now_and_in_the_past) {
  node_data node;
  std::uint64_t first = 0;
  { first = write_history(*node.open()); }
  const auto now = node.dir / "export-now";
  auto r = run_tool(node.args("export alice " + now.string()));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(read_file(now / "docs" / "report.txt") == "report version two");
  BOOST_TEST(read_file(now / "photos" / "img.jpg") == "a photo");
  BOOST_TEST(!std::filesystem::exists(now / "tmp.txt"));

  const auto past = node.dir / "export-past";
  r = run_tool(node.args("export alice " + past.string() + " --at-seq " + std::to_string(first)));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(read_file(past / "docs" / "report.txt") == "report v1");
  BOOST_TEST(!std::filesystem::exists(past / "photos"));

  r = run_tool(node.args("export alice " + now.string()));
  BOOST_TEST(r.exit_code != 0);  // never over existing files
  BOOST_TEST(r.output.find("not empty") != std::string::npos, r.output);
}

// The temporary name a file is written under is never one of the user's own files.
BOOST_AUTO_TEST_CASE(export_keeps_files_whose_names_look_like_its_temporary_ones) {
  node_data node;
  {
    auto j = node.open();
    test::journaled_user bob(*j, "bob");
    for (const std::string content : {"plain", "lookalike"}) {
      BOOST_REQUIRE(j->put_chunk_and_wait("bob", sha256(content), content));
    }
    BOOST_REQUIRE(bob.run(actors::commit_file{"/x.autosync-export", 0, content_of({"lookalike"})}));
    BOOST_REQUIRE(bob.run(actors::commit_file{"/x", 0, content_of({"plain"})}));
  }
  const auto into = node.dir / "export";
  auto r = run_tool(node.args("export bob " + into.string()));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(read_file(into / "x") == "plain");
  BOOST_TEST(read_file(into / "x.autosync-export") == "lookalike");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(into)) ++files;
  BOOST_TEST(files == 2u);
}

BOOST_AUTO_TEST_CASE(a_file_that_cannot_be_exported_whole_is_not_written_at_all) {
  node_data node;
  {
    auto j = node.open();
    write_history(*j);
    // The photo's content is gone from the store (as retention would reclaim it).
    BOOST_REQUIRE(j->reclaim_chunks_and_wait("alice", {sha256("a photo")}, INT64_MAX));
  }
  const auto into = node.dir / "export";
  auto r = run_tool(node.args("export alice " + into.string()));
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("PROBLEM /photos/img.jpg") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("export a later point") != std::string::npos, r.output);
  BOOST_TEST(!std::filesystem::exists(into / "photos" / "img.jpg"));
  BOOST_TEST(std::filesystem::is_empty(into / "photos"));  // no half-written file either
  BOOST_TEST(read_file(into / "docs" / "report.txt") == "report version two");
}

BOOST_AUTO_TEST_CASE(events_as_json_survive_a_device_id_that_is_not_utf8) {
  node_data node;
  {
    auto j = node.open();
    test::journaled_user bob(*j, "bob");
    bob.device_id = "dev\xff";  // as an older server accepted it
    BOOST_REQUIRE(bob.run(actors::create_folder{"/a"}));
    BOOST_REQUIRE(bob.run(actors::create_folder{"/b"}));
  }
  auto events = run_tool(node.args("events bob --json"));
  BOOST_TEST(events.exit_code == 0, events.output);
  BOOST_TEST(events.output.find("\"device\":\"dev\xef\xbf\xbd\"") != std::string::npos,
             events.output);
  BOOST_TEST(events.output.find("\"seq\":2") != std::string::npos, events.output);
}

BOOST_AUTO_TEST_CASE(users_events_and_state_answer_from_a_read_only_journal) {
  node_data node;
  std::uint64_t first = 0;
  {
    auto j = node.open();
    first = write_history(*j);
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256("uncommitted"), "uncommitted"));
  }
  auto users = run_tool(node.args("users --json"));
  BOOST_TEST(users.exit_code == 0, users.output);
  BOOST_TEST(users.output.find("\"user\":\"alice\"") != std::string::npos, users.output);
  BOOST_TEST(users.output.find("\"live_files\":2") != std::string::npos, users.output);
  // Six chunks of 52 bytes; only the one no commit used (11 bytes) is unreferenced: the
  // first report and the deleted file's are still held for restore and undelete.
  BOOST_TEST(users.output.find("\"chunks\":6") != std::string::npos, users.output);
  BOOST_TEST(users.output.find("\"stored_bytes\":52") != std::string::npos, users.output);
  BOOST_TEST(users.output.find("\"unreferenced_bytes\":11") != std::string::npos, users.output);

  auto events = run_tool(node.args("events alice --json --from 2 --to 2"));
  BOOST_TEST(events.exit_code == 0, events.output);
  BOOST_TEST(events.output.find("\"seq\":2") != std::string::npos, events.output);
  BOOST_TEST(events.output.find("\"kind\":\"fileCommitted\"") != std::string::npos, events.output);

  auto state = run_tool(node.args("state alice --at-seq " + std::to_string(first)));
  BOOST_TEST(state.exit_code == 0, state.output);
  BOOST_TEST(state.output.find("/docs/report.txt  9 bytes") != std::string::npos, state.output);
  BOOST_TEST(state.output.find("/photos") == std::string::npos, state.output);

  auto bad_time = run_tool(node.args("state alice --at-time yesterday"));
  BOOST_TEST(bad_time.exit_code != 0);
  BOOST_TEST(bad_time.output.find("UTC like") != std::string::npos, bad_time.output);

  for (const char* command : {"events nobody", "state nobody", "verify nobody", "export nobody x"}) {
    auto unknown = run_tool(node.args(command));
    BOOST_TEST(unknown.exit_code == 1, command);
    BOOST_TEST(unknown.output.find("has no events in this journal") != std::string::npos,
               unknown.output);
  }
  auto bad_user = run_tool(node.args("events 'bad user!'"));
  BOOST_TEST(bad_user.exit_code != 0, bad_user.output);

  auto no_journal = run_tool("--data-dir " + (node.dir / "nothing").string() +
                             " --master-key-file " + (node.dir / "master.key").string() + " users");
  BOOST_TEST(no_journal.exit_code != 0);
  BOOST_TEST(no_journal.output.find("no journal in") != std::string::npos, no_journal.output);
}
