#define BOOST_TEST_MODULE journal_backup
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "journal_fixture.hpp"

using namespace autosync;
using namespace autosync::test;

namespace {

const std::vector<std::string> users = {"alice", "bob", "carol"};

std::vector<std::string> chunk_contents() {
  std::vector<std::string> out;
  for (int i = 0; i < 8; ++i) out.push_back(std::string(50000 + i, static_cast<char>('a' + i)));
  return out;
}

void fill(journal::journal& j) {
  for (const auto& user : users) {
    for (int i = 0; i < 40; ++i) append_commit(j, user, "/" + user + "/" + std::to_string(i));
    auto events = all_events(j, user);
    journal::snapshot snap;
    snap.seq = 20;
    snap.head_hash = events[19].hash;
    snap.state = "snapshot of " + user;
    BOOST_REQUIRE(j.write_snapshot(user, snap));
    for (const auto& c : chunk_contents()) BOOST_REQUIRE(j.put_chunk_and_wait(user, sha256(c), c));
  }
}

// Everything observable through the journal, as one string.
std::string dump(const journal::journal& j) {
  std::string out;
  auto s = j.list_users([&](std::string_view user, const result<journal::user_head>& head) {
    BOOST_REQUIRE(head);
    out += std::string(user) + " head " + std::to_string(head->last_seq) + " " +
           head->last_hash.hex() + "\n";
    for (const auto& e : all_events(j, std::string(user))) {
      out += std::to_string(e.seq) + " " + e.hash.hex() + " " + to_hex(e.canonical) + "\n";
    }
    auto seqs = j.snapshot_seqs(user);
    BOOST_REQUIRE(seqs);
    for (auto seq : *seqs) {
      auto snap = j.read_snapshot(user, seq);
      BOOST_REQUIRE(snap && snap->has_value());
      out += "snapshot " + std::to_string(seq) + " " + (*snap)->state + "\n";
    }
    for (const auto& c : chunk_contents()) {
      auto got = j.get_chunk(user, sha256(c));
      BOOST_REQUIRE(got);
      out += "chunk " + sha256(*got).hex() + "\n";
    }
    return true;
  });
  BOOST_REQUIRE(s);
  return out;
}

// A filled journal in dir/data with one backup in dir/backups; returns the backup's id.
std::uint32_t filled_and_backed_up(const temp_dir& dir) {
  auto j = open_journal(journal_options(dir / "data"));
  fill(*j);
  auto backup = j->create_backup(dir / "backups");
  if (!backup) throw std::runtime_error(backup.err().to_string());
  return *backup;
}

}  // namespace

BOOST_AUTO_TEST_CASE(backup_wipe_restore_gives_an_identical_journal) {
  temp_dir dir;
  const auto data = dir / "data";
  const auto backups = dir / "backups";
  std::string before;
  std::uint32_t id = 0;
  {
    auto j = open_journal(journal_options(data));
    fill(*j);
    before = dump(*j);
    auto backup = j->create_backup(backups);
    BOOST_REQUIRE_MESSAGE(backup, describe(backup));
    id = *backup;
  }
  BOOST_REQUIRE(journal::verify_backup(backups, id));
  auto listed = journal::list_backups(backups);
  BOOST_REQUIRE(listed);
  BOOST_TEST(*listed == std::vector<std::uint32_t>{id});

  std::filesystem::remove_all(data);
  auto restored = journal::restore_backup(backups, id, data);
  BOOST_REQUIRE_MESSAGE(restored, restored.to_string());
  auto j = open_journal(journal_options(data));
  BOOST_TEST(dump(*j) == before);
  BOOST_TEST(before.find("alice head 40") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(restore_refuses_to_overwrite_a_journal) {
  temp_dir dir;
  const auto data = dir / "data";
  std::uint32_t id = 0;
  auto j = open_journal(journal_options(data));
  fill(*j);
  auto backup = j->create_backup(dir / "backups");
  BOOST_REQUIRE(backup);
  id = *backup;
  auto s = journal::restore_backup(dir / "backups", id, data);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::conflict);
}

BOOST_AUTO_TEST_CASE(verify_detects_a_damaged_backup_file) {
  temp_dir dir;
  const std::uint32_t id = filled_and_backed_up(dir);
  bool damaged = false;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "backups")) {
    if (entry.path().extension() == ".sst" || entry.path().extension() == ".blob") {
      std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(100);
      f.put('\xff');
      f.seekp(101);
      f.put('\x00');
      damaged = true;
      break;
    }
  }
  BOOST_REQUIRE(damaged);
  auto s = journal::verify_backup(dir / "backups", id);
  BOOST_REQUIRE(!s);
  BOOST_TEST_MESSAGE("verify said: " << s.to_string());
}

BOOST_AUTO_TEST_CASE(verify_detects_a_damaged_chunk_pack_in_a_backup) {
  temp_dir dir;
  const std::uint32_t id = filled_and_backed_up(dir);
  BOOST_REQUIRE(journal::verify_backup(dir / "backups", id));
  bool damaged = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "backups" / "chunks")) {
    if (entry.path().extension() == ".pack" && entry.file_size() > 5000) {
      std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(4000);
      char c = 0;
      f.get(c);
      f.seekp(4000);
      f.put(static_cast<char>(c ^ 0x10));
      damaged = true;
    }
  }
  BOOST_REQUIRE(damaged);
  auto s = journal::verify_backup(dir / "backups", id);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("CRC") != std::string::npos, s.err().message());
}

BOOST_AUTO_TEST_CASE(a_second_backup_copies_only_new_chunks_and_restores_everything) {
  temp_dir dir;
  std::string before;
  std::uint32_t second = 0;
  {
    auto j = open_journal(journal_options(dir / "data"));
    fill(*j);
    BOOST_REQUIRE(j->create_backup(dir / "backups"));
    const std::string more(70000, 'z');
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(more), more));
    append_commit(*j, "alice", "/after-first-backup");
    auto backup = j->create_backup(dir / "backups");
    BOOST_REQUIRE(backup);
    second = *backup;
    before = dump(*j);
    BOOST_TEST(j->get_chunk("alice", sha256(more)).has_value());
  }
  BOOST_REQUIRE(journal::verify_backup(dir / "backups", second));
  BOOST_REQUIRE(journal::restore_backup(dir / "backups", second, dir / "restored"));
  auto j = open_journal(journal_options(dir / "restored"));
  BOOST_TEST(dump(*j) == before);
  BOOST_TEST(j->get_chunk("alice", sha256(std::string(70000, 'z'))).has_value());
}

BOOST_AUTO_TEST_CASE(a_checkpoint_opens_as_a_journal_with_the_same_contents) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir / "data"));
  fill(*j);
  BOOST_REQUIRE(j->create_checkpoint(dir / "checkpoint"));
  auto copy = open_journal(journal_options(dir / "checkpoint"));
  BOOST_TEST(dump(*copy) == dump(*j));
}

// A checkpoint of a node that has put no chunk since it started links its empty current
// pack. Opened as a journal of its own, the checkpoint must not append into that file,
// which the node appends to as well: each would overwrite what the other acknowledged.
BOOST_AUTO_TEST_CASE(a_checkpoint_opened_for_writing_never_appends_to_the_nodes_pack) {
  temp_dir dir;
  {
    auto j = open_journal(journal_options(dir / "data"));
    fill(*j);
  }
  auto j = open_journal(journal_options(dir / "data"));  // its current pack is empty
  BOOST_REQUIRE(j->create_checkpoint(dir / "checkpoint"));
  auto copy = open_journal(journal_options(dir / "checkpoint"));
  const std::string in_copy(60000, 'x'), in_node(60000, 'y');
  BOOST_REQUIRE(copy->put_chunk_and_wait("alice", sha256(in_copy), in_copy));
  BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(in_node), in_node));
  auto from_copy = copy->get_chunk("alice", sha256(in_copy));
  BOOST_REQUIRE_MESSAGE(from_copy, describe(from_copy));
  BOOST_TEST((*from_copy == in_copy));
  auto from_node = j->get_chunk("alice", sha256(in_node));
  BOOST_REQUIRE_MESSAGE(from_node, describe(from_node));
  BOOST_TEST((*from_node == in_node));
}

// A backup counts once its chunk copies are done: one whose copying did not finish (the
// process died, the disk filled) names chunks its copies may lack, so it is neither listed,
// verified nor restored.
BOOST_AUTO_TEST_CASE(a_backup_whose_chunk_copies_did_not_finish_is_not_used) {
  temp_dir dir;
  const auto backups = dir / "backups";
  auto j = open_journal(journal_options(dir / "data"));
  fill(*j);
  auto first = j->create_backup(backups);
  BOOST_REQUIRE_MESSAGE(first, describe(first));
  auto second = j->create_backup(backups);
  BOOST_REQUIRE_MESSAGE(second, describe(second));
  auto both = journal::list_backups(backups);
  BOOST_REQUIRE(both);
  BOOST_TEST((*both == std::vector<std::uint32_t>{*first, *second}));

  // As if the process had died after the index was backed up, before the copies ended.
  std::filesystem::remove(backups / "complete" / std::to_string(*second));
  auto listed = journal::list_backups(backups);
  BOOST_REQUIRE(listed);
  BOOST_TEST((*listed == std::vector<std::uint32_t>{*first}));
  auto verified = journal::verify_backup(backups, *second);
  BOOST_REQUIRE(!verified);
  BOOST_TEST(verified.err().message().find("incomplete") != std::string::npos, verified.to_string());
  auto restored = journal::restore_backup(backups, *second, dir / "restored");
  BOOST_REQUIRE(!restored);
  BOOST_TEST(restored.err().kind() == error_kind::not_found);
  BOOST_REQUIRE(journal::restore_backup(backups, *first, dir / "restored"));
}
