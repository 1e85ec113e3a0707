#define BOOST_TEST_MODULE journal_chunks
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "journal_fixture.hpp"
#include "test_data.hpp"

using namespace autosync;
using namespace autosync::test;

namespace {

// Every byte of every file under dir, concatenated.
std::string raw_contents(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chunks_round_trip_and_dedupe_per_user) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const std::string content = random_bytes(1 << 20, 1);
  const auto id = sha256(content);
  auto first = j->put_chunk_and_wait("alice", id, content);
  BOOST_REQUIRE_MESSAGE(first, describe(first));
  BOOST_TEST(*first);  // newly stored
  auto again = j->put_chunk_and_wait("alice", id, content);
  BOOST_REQUIRE(again);
  BOOST_TEST(!*again);  // already there
  auto got = j->get_chunk("alice", id);
  BOOST_REQUIRE(got);
  BOOST_TEST((*got == content));

  const auto other = sha256("never stored");
  auto has = j->has_chunks("alice", {id, other});
  BOOST_REQUIRE(has);
  BOOST_TEST((*has == std::vector<bool>{true, false}));
  // Chunks are per user: bob does not see alice's.
  auto bob_has = j->has_chunks("bob", {id});
  BOOST_REQUIRE(bob_has);
  BOOST_TEST(!(*bob_has)[0]);
  auto bob_get = j->get_chunk("bob", id);
  BOOST_REQUIRE(!bob_get);
  BOOST_TEST(bob_get.err().kind() == error_kind::not_found);
}

BOOST_AUTO_TEST_CASE(a_chunk_that_does_not_hash_to_its_id_is_refused_and_not_stored) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const auto claimed = sha256("the real content");
  auto r = j->put_chunk_and_wait("alice", claimed, "something else");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::invalid);
  auto has = j->has_chunks("alice", {claimed});
  BOOST_REQUIRE(has);
  BOOST_TEST(!(*has)[0]);

  std::string huge(journal::limits::chunk_bytes_max + 1, 'x');
  auto too_large = j->put_chunk_and_wait("alice", sha256(huge), huge);
  BOOST_REQUIRE(!too_large);
  BOOST_TEST(too_large.err().kind() == error_kind::too_large);
}

BOOST_AUTO_TEST_CASE(chunks_survive_reopen) {
  temp_dir dir;
  std::vector<std::string> contents;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (unsigned i = 0; i < 20; ++i) {
      contents.push_back(random_bytes(10000 + i * 1000, i));
      BOOST_REQUIRE(j->put_chunk_and_wait("carol", sha256(contents.back()), contents.back()));
    }
  }
  auto j = open_journal(journal_options(dir.path()));
  for (const auto& c : contents) {
    auto got = j->get_chunk("carol", sha256(c));
    BOOST_REQUIRE(got);
    BOOST_TEST((*got == c));
  }
}

BOOST_AUTO_TEST_CASE(no_plaintext_of_an_event_or_chunk_reaches_the_disk) {
  temp_dir dir;
  const std::string marker = "PLAINTEXT-MARKER-7f3a9c";
  std::string chunk;
  for (int i = 0; i < 2000; ++i) chunk += marker;
  {
    auto j = open_journal(journal_options(dir.path()));
    append_commit(*j, "alice", "/" + marker + ".txt");
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(chunk), chunk));
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(marker), marker));
  }
  {
    // Reopening replays the WAL into tables: check both the log and the table files.
    auto j = open_journal(journal_options(dir.path()));
    BOOST_REQUIRE(j->create_checkpoint(dir / "checkpoint"));
  }
  const std::string raw = raw_contents(dir.path());
  BOOST_TEST(raw.find(marker) == std::string::npos);
  BOOST_TEST(raw.find(".txt") == std::string::npos);
  // The scan does see what is stored in the clear (user ids are key material).
  BOOST_TEST(raw.find("alice") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_wrong_master_key_is_a_typed_corruption_error_naming_user_and_seq) {
  temp_dir dir;
  const std::string content = "chunk under the right key";
  {
    auto j = open_journal(journal_options(dir.path(), 0x42));
    append_commit(*j, "alice", "/a");
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
  }
  auto j = open_journal(journal_options(dir.path(), 0x43));
  auto s = j->read_events("alice", 1, 10, [](journal::stored_event&&) { return true; });
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.err().kind() == error_kind::corruption);
  BOOST_TEST(s.err().message().find("user alice seq 1") != std::string::npos, s.err().message());
  BOOST_TEST(s.err().message().find("wrong master key") != std::string::npos);
  auto chunk = j->get_chunk("alice", sha256(content));
  BOOST_REQUIRE(!chunk);
  BOOST_TEST(chunk.err().kind() == error_kind::corruption);
  BOOST_TEST(chunk.err().message().find("user alice chunk") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(master_key_files_are_created_private_and_load_back) {
  temp_dir dir;
  auto created = journal::create_master_key_file(dir / "master.key");
  BOOST_REQUIRE(created);
  auto loaded = journal::load_master_key(dir / "master.key");
  BOOST_REQUIRE(loaded);
  BOOST_TEST((loaded->bytes == created->bytes));
  const auto perms = std::filesystem::status(dir / "master.key").permissions();
  BOOST_TEST(((perms & std::filesystem::perms::others_read) == std::filesystem::perms::none));

  auto again = journal::create_master_key_file(dir / "master.key");
  BOOST_REQUIRE(!again);  // never overwrite a key
  BOOST_TEST(again.err().kind() == error_kind::conflict);

  std::filesystem::permissions(dir / "master.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto exposed = journal::load_master_key(dir / "master.key");
  BOOST_REQUIRE(!exposed);
  BOOST_TEST(exposed.err().message().find("chmod 600") != std::string::npos);

  auto missing = journal::load_master_key(dir / "absent.key");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.err().kind() == error_kind::not_found);
}

namespace {

std::filesystem::path only_pack(const std::filesystem::path& dir) {
  std::filesystem::path found;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "chunks")) {
    if (entry.file_size() > 0) found = entry.path();
  }
  return found;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_damaged_pack_record_is_corruption_naming_user_and_chunk) {
  temp_dir dir;
  const std::string content = random_bytes(20000, 9);
  {
    auto j = open_journal(journal_options(dir.path()));
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
  }
  const auto pack = only_pack(dir.path());
  BOOST_REQUIRE(!pack.empty());
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x5a');
  }
  auto j = open_journal(journal_options(dir.path()));
  auto got = j->get_chunk("alice", sha256(content));
  BOOST_REQUIRE(!got);
  BOOST_TEST(got.err().kind() == error_kind::corruption);
  BOOST_TEST(got.err().message().find("user alice chunk " + sha256(content).hex()) !=
                 std::string::npos,
             got.err().message());
}

BOOST_AUTO_TEST_CASE(a_missing_pack_is_corruption_that_says_to_restore) {
  temp_dir dir;
  const std::string content = random_bytes(5000, 10);
  {
    auto j = open_journal(journal_options(dir.path()));
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
  }
  std::filesystem::remove(only_pack(dir.path()));
  auto j = open_journal(journal_options(dir.path()));
  auto got = j->get_chunk("alice", sha256(content));
  BOOST_REQUIRE(!got);
  BOOST_TEST(got.err().kind() == error_kind::corruption);
  BOOST_TEST(got.err().message().find("restore it from a backup") != std::string::npos,
             got.err().message());
}

BOOST_AUTO_TEST_CASE(users_with_only_chunks_are_listed_with_no_events) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  BOOST_REQUIRE(j->put_chunk_and_wait("zoe", sha256("x"), "x"));
  std::vector<std::pair<std::string, std::uint64_t>> users;
  auto s = j->list_users([&](std::string_view u, const result<journal::user_head>& h) {
    BOOST_REQUIRE(h);
    users.emplace_back(std::string(u), h->last_seq);
    return true;
  });
  BOOST_REQUIRE(s);
  BOOST_REQUIRE_EQUAL(users.size(), 1u);
  BOOST_TEST(users[0].first == "zoe");
  BOOST_TEST(users[0].second == 0u);
}

BOOST_AUTO_TEST_CASE(reopening_without_writing_chunks_leaves_no_pile_of_empty_packs) {
  temp_dir dir;
  for (int i = 0; i < 5; ++i) open_journal(journal_options(dir.path()));
  std::size_t packs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "chunks")) {
    (void)entry;
    ++packs;
  }
  BOOST_TEST(packs == 1u);
}

namespace {

// Pages of `file` in the page cache, and pages in all.
std::pair<std::size_t, std::size_t> cached_pages(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  const auto size = static_cast<std::size_t>(std::filesystem::file_size(file));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  BOOST_REQUIRE(map != MAP_FAILED);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  BOOST_REQUIRE(::mincore(map, size, resident.data()) == 0);
  ::munmap(map, size);
  std::size_t cached = 0;
  for (auto r : resident) cached += r & 1;
  return {cached, resident.size()};
}

// Whether `dir`'s file system takes a direct (O_DIRECT) write of one aligned page.
bool takes_direct_writes(const std::filesystem::path& dir) {
  const auto probe = dir / "direct-probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* memory = nullptr;
  BOOST_REQUIRE(::posix_memalign(&memory, page, page) == 0);
  std::memset(memory, 'p', page);
  const bool ok = ::pwrite(fd, memory, page, 0) == static_cast<ssize_t>(page);
  std::free(memory);
  ::close(fd);
  std::filesystem::remove(probe);
  return ok;
}

}  // namespace

// Bulk appends go past the page cache where the file system allows it, and through the
// cache where it does not; either way every byte reads back.
BOOST_AUTO_TEST_CASE(bulk_appends_write_directly_where_the_file_system_allows) {
  temp_dir dir;
  const bool direct = takes_direct_writes(dir.path());
  BOOST_TEST_MESSAGE("direct writes " << (direct ? "supported" : "not supported") << " here");
  auto j = open_journal(journal_options(dir.path()));
  std::vector<std::string> contents;
  for (int i = 0; i < 4; ++i) {
    contents.push_back(random_bytes((1 << 20) + 4096 * i + 13, 70 + i));
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(contents.back()), contents.back()));
  }
  const auto written = j->stats().direct_bytes;
  if (direct) {
    // All but the partial pages at either end of each append.
    BOOST_TEST(written > 4u * ((1u << 20) - 2 * 4096));
  } else {
    BOOST_TEST(written == 0u);
  }
  // Small chunks never go direct: they stay cached for the devices that fetch them next.
  const std::string small = random_bytes(3000, 99);
  BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(small), small));
  BOOST_TEST(j->stats().direct_bytes == written);
  contents.push_back(small);
  j.reset();
  auto reopened = open_journal(journal_options(dir.path()));
  for (const auto& content : contents) {
    auto got = reopened->get_chunk("alice", sha256(content));
    BOOST_REQUIRE(got);
    BOOST_TEST((*got == content));
  }
}

BOOST_AUTO_TEST_CASE(chunk_bytes_leave_the_page_cache_once_synced) {
  temp_dir dir;
  struct statfs fs {};
  BOOST_REQUIRE(::statfs(dir.path().c_str(), &fs) == 0);
  if (fs.f_type == TMPFS_MAGIC) {
    // tmpfs keeps files only in the page cache: there is nothing to drop.
    BOOST_TEST_MESSAGE("skipped: the temporary folder is on tmpfs");
    return;
  }
  auto j = open_journal(journal_options(dir.path()));
  // Odd sizes, so appends end inside pages.
  for (int i = 0; i < 8; ++i) {
    const std::string content = random_bytes((1 << 20) + 1000 * i + 7, 40 + i);
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
  }
  const auto [cached, pages] = cached_pages(only_pack(dir.path()));
  BOOST_TEST(pages > 2048u);
  // At most the page the last append ended in, which the next one will fill.
  BOOST_TEST(cached <= 1u, cached << " of " << pages << " pages are still cached");
  // And what left the cache reads back from the disk intact: each append's whole pages
  // went straight to the disk (O_DIRECT) and the pages at its ends through the cache.
  for (int i = 0; i < 8; ++i) {
    const std::string content = random_bytes((1 << 20) + 1000 * i + 7, 40 + i);
    auto got = j->get_chunk("alice", sha256(content));
    BOOST_REQUIRE(got);
    BOOST_TEST((*got == content), "chunk " << i);
  }
}

// Small files' chunks stay cached: little memory, and other devices fetch them next.
BOOST_AUTO_TEST_CASE(small_chunks_stay_in_the_page_cache) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  for (int i = 0; i < 40; ++i) {
    const std::string content = random_bytes(5000 + static_cast<std::size_t>(i), 70 + i);
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
  }
  const auto [cached, pages] = cached_pages(only_pack(dir.path()));
  BOOST_TEST(pages >= 49u);
  BOOST_TEST(cached == pages, cached << " of " << pages << " pages are cached");
}

// The record's checksum is the CRC-32 of zlib and gzip: packs written by any build verify
// with any other, and with standard tools.
BOOST_AUTO_TEST_CASE(pack_records_carry_the_standard_crc32_of_their_sealed_bytes) {
  temp_dir dir;
  {
    auto j = open_journal(journal_options(dir.path()));
    for (int i = 0; i < 3; ++i) {
      const std::string content = random_bytes(70000 + 13 * i, 60 + i);
      BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
    }
  }
  std::ifstream in(only_pack(dir.path()), std::ios::binary);
  const std::string pack((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(pack[at + static_cast<std::size_t>(i)]);
    return v;
  };
  std::size_t records = 0;
  for (std::size_t at = 0; at + 16 <= pack.size(); ++records) {
    BOOST_REQUIRE(pack.compare(at, 4, "ASPK") == 0);
    const std::uint32_t length = u32(at + 4);
    BOOST_REQUIRE(at + 16 + length <= pack.size());
    boost::crc_32_type crc;
    crc.process_bytes(pack.data() + at + 16, length);
    BOOST_TEST(u32(at + 8) == crc.checksum());
    at += 16 + length;
  }
  BOOST_TEST(records == 3u);
}

// --- reclaiming the space of chunks no revision refers to ---------------------------------

namespace {

// Bytes the file system has allocated to `file`.
std::uint64_t allocated_bytes(const std::filesystem::path& file) {
  struct stat st {};
  BOOST_REQUIRE(::stat(file.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Reclaimed ranges listed beside a pack.
std::size_t pack_listed(const std::filesystem::path& pack) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(std::filesystem::path(pack).replace_extension(".reclaimed"), ec);
  return ec ? 0 : static_cast<std::size_t>(size / 16);
}

// Waits (up to 10 s) until `file` has at most `at_most` bytes allocated: the space of a
// reclaim goes back on the journal's release thread, after the reclaim is acknowledged.
std::uint64_t allocated_within(const std::filesystem::path& file, std::uint64_t at_most) {
  for (int i = 0; i < 1000 && allocated_bytes(file) > at_most; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return allocated_bytes(file);
}

// Stores `count` chunks of `bytes` for alice; returns them in the order stored.
std::vector<std::string> store_chunks(journal::journal& j, int count, std::size_t bytes, unsigned seed) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(random_bytes(bytes + static_cast<std::size_t>(i), seed + static_cast<unsigned>(i)));
    BOOST_REQUIRE(j.put_chunk_and_wait("alice", sha256(out.back()), out.back()));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reclaimed_chunks_are_forgotten_and_their_space_goes_back) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const auto chunks = store_chunks(*j, 8, 1 << 20, 100);
  const auto pack = only_pack(dir.path());
  const auto before = allocated_bytes(pack);
  std::vector<sha256_digest> gone;
  for (int i = 1; i < 7; ++i) gone.push_back(sha256(chunks[static_cast<std::size_t>(i)]));
  auto r = j->reclaim_chunks_and_wait("alice", gone, an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(r, describe(r));
  BOOST_TEST(r->chunks == 6u);
  BOOST_TEST(r->bytes == 6u * (1 << 20) + 1 + 2 + 3 + 4 + 5 + 6);
  // Six adjacent MiB released as one range: all but a page at each end is given back.
  const auto after = allocated_within(pack, before - (6u * (1 << 20) - 2 * 4096));
  BOOST_TEST(before - after >= 6u * (1 << 20) - 2 * 4096, before << " -> " << after << " bytes allocated");
  for (const auto& id : gone) {
    auto got = j->get_chunk("alice", id);
    BOOST_REQUIRE(!got);
    BOOST_TEST(got.err().kind() == error_kind::not_found);
  }
  for (std::size_t i : {0u, 7u}) {
    auto got = j->get_chunk("alice", sha256(chunks[i]));
    BOOST_REQUIRE_MESSAGE(got, describe(got));
    BOOST_TEST((*got == chunks[i]));
  }
  std::vector<sha256_digest> listed;
  BOOST_REQUIRE(j->list_chunks("alice", [&](const journal::stored_chunk& c) {
    listed.push_back(c.id);
    BOOST_TEST(c.stored_at_us > 0);
    return true;
  }));
  BOOST_TEST(listed.size() == 2u);
  // The pack still walks record by record: a backup of it verifies.
  auto id = j->create_backup(dir / "backups");
  BOOST_REQUIRE_MESSAGE(id, describe(id));
  auto verified = journal::verify_backup(dir / "backups", *id);
  BOOST_TEST(static_cast<bool>(verified), describe(verified));
}

BOOST_AUTO_TEST_CASE(a_reclaim_for_a_malformed_user_is_refused) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  auto r = j->reclaim_chunks_and_wait(std::string("bad\0user", 8), {sha256("x")}, test::an_hour_from_now_us());
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().kind() == error_kind::invalid);
  auto listed = j->list_chunks("", [](const journal::stored_chunk&) { return true; });
  BOOST_REQUIRE(!listed);
  BOOST_TEST(listed.err().kind() == error_kind::invalid);
}

BOOST_AUTO_TEST_CASE(chunks_stored_after_the_cutoff_are_kept) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const auto chunks = store_chunks(*j, 3, 5000, 200);
  std::vector<sha256_digest> ids;
  for (const auto& c : chunks) ids.push_back(sha256(c));
  ids.push_back(sha256("a chunk alice never had"));
  // An upload whose commit is still to come is younger than any cutoff the server uses.
  auto r = j->reclaim_chunks_and_wait("alice", ids, /*stored_before_us=*/1);
  BOOST_REQUIRE_MESSAGE(r, describe(r));
  BOOST_TEST(r->chunks == 0u);
  for (const auto& c : chunks) BOOST_TEST(static_cast<bool>(j->get_chunk("alice", sha256(c))));
}

BOOST_AUTO_TEST_CASE(many_small_adjacent_chunks_give_back_their_pages) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const auto chunks = store_chunks(*j, 300, 4000, 300);
  const auto pack = only_pack(dir.path());
  const auto before = allocated_bytes(pack);
  std::vector<sha256_digest> ids;
  for (std::size_t i = 0; i < 299; ++i) ids.push_back(sha256(chunks[i]));
  auto r = j->reclaim_chunks_and_wait("alice", ids, an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(r, describe(r));
  BOOST_TEST(r->chunks == 299u);
  const auto after = allocated_within(pack, before - (299u * 4000 - 3 * 4096));
  BOOST_TEST(before - after >= 299u * 4000 - 3 * 4096);
  auto last = j->get_chunk("alice", sha256(chunks[299]));
  BOOST_REQUIRE_MESSAGE(last, describe(last));
  BOOST_TEST((*last == chunks[299]));
}

BOOST_AUTO_TEST_CASE(a_checkpoint_keeps_its_bytes_and_the_space_goes_once_it_is_removed) {
  temp_dir dir;
  std::vector<std::string> chunks;
  {
    auto j = open_journal(journal_options(dir.path() / "live"));
    chunks = store_chunks(*j, 4, 1 << 20, 400);
    BOOST_REQUIRE(j->create_checkpoint(dir / "checkpoint"));
    auto r = j->reclaim_chunks_and_wait("alice", {sha256(chunks[1]), sha256(chunks[2])},
                                        an_hour_from_now_us());
    BOOST_REQUIRE_MESSAGE(r, describe(r));
    BOOST_TEST(r->chunks == 2u);
    BOOST_TEST(!j->get_chunk("alice", sha256(chunks[1])));
  }
  const auto pack = only_pack(dir.path() / "live");
  const auto linked = allocated_bytes(pack);
  BOOST_TEST(linked >= 4u << 20);  // the checkpoint's link kept every byte
  {
    auto cp = open_journal(journal_options(dir.path() / "checkpoint"));
    auto got = cp->get_chunk("alice", sha256(chunks[2]));
    BOOST_REQUIRE_MESSAGE(got, describe(got));
    BOOST_TEST((*got == chunks[2]));
  }
  std::filesystem::remove_all(dir.path() / "checkpoint");
  // The release waited; the next open does it.
  auto j = open_journal(journal_options(dir.path() / "live"));
  BOOST_TEST(linked - allocated_within(pack, linked - ((2u << 20) - 2 * 4096)) >= (2u << 20) - 2 * 4096);
  auto kept = j->get_chunk("alice", sha256(chunks[3]));
  BOOST_REQUIRE_MESSAGE(kept, describe(kept));
  BOOST_TEST((*kept == chunks[3]));
}

// A backup taken before a reclaim and extended after it still verifies, even when the
// reclaimed range starts in what the first backup copied and ends in what the second one
// did; and a restore of it reads what is kept.
BOOST_AUTO_TEST_CASE(backups_spanning_a_reclaim_verify_and_restore) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path() / "live"));
  auto early = store_chunks(*j, 3, 300000, 500);
  auto first = j->create_backup(dir / "backups");
  BOOST_REQUIRE_MESSAGE(first, describe(first));
  std::vector<std::string> late;
  for (int i = 0; i < 3; ++i) {
    late.push_back(random_bytes(300000 + static_cast<std::size_t>(i), 600 + static_cast<unsigned>(i)));
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(late.back()), late.back()));
  }
  // The last early chunk and the first late one: adjacent, on both sides of the first copy.
  auto r = j->reclaim_chunks_and_wait("alice", {sha256(early[2]), sha256(late[0])}, an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(r, describe(r));
  BOOST_TEST(r->chunks == 2u);
  const auto pack = only_pack(dir.path() / "live");
  BOOST_REQUIRE(!pack.empty());
  for (int i = 0; i < 1000 && pack_listed(pack) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto second = j->create_backup(dir / "backups");
  BOOST_REQUIRE_MESSAGE(second, describe(second));
  for (auto id : {*first, *second}) {
    auto verified = journal::verify_backup(dir / "backups", id);
    BOOST_TEST(static_cast<bool>(verified), describe(verified));
  }
  BOOST_REQUIRE(journal::restore_backup(dir / "backups", *second, dir / "restored"));
  auto restored = open_journal(journal_options(dir.path() / "restored"));
  for (const auto* kept : {&early[0], &early[1], &late[1], &late[2]}) {
    auto got = restored->get_chunk("alice", sha256(*kept));
    BOOST_REQUIRE_MESSAGE(got, describe(got));
    BOOST_TEST((*got == *kept));
  }
  BOOST_TEST(!restored->get_chunk("alice", sha256(late[0])));
}

// A read-only view (a tool beside a live node) whose index still names a chunk the node
// has since reclaimed finds it gone, not damaged.
BOOST_AUTO_TEST_CASE(a_read_only_view_finds_a_chunk_reclaimed_after_it_opened_gone_not_corrupt) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  auto chunks = store_chunks(*j, 3, 1 << 20, 700);
  auto options = journal_options(dir.path());
  options.read_only = true;
  auto view = open_journal(options);
  const auto pack = only_pack(dir.path());
  const auto before = allocated_bytes(pack);
  auto r = j->reclaim_chunks_and_wait("alice", {sha256(chunks[1])}, an_hour_from_now_us());
  BOOST_REQUIRE_MESSAGE(r, describe(r));
  // Listed and punched (the release runs after the acknowledgment).
  BOOST_REQUIRE(allocated_within(pack, before - (1u << 20) + 2 * 4096) <= before - (1u << 20) + 2 * 4096);
  auto got = view->get_chunk("alice", sha256(chunks[1]));
  BOOST_REQUIRE(!got);
  BOOST_TEST(got.err().kind() == error_kind::not_found, got.err().to_string());
  auto other = view->get_chunk("alice", sha256(chunks[2]));
  BOOST_REQUIRE_MESSAGE(other, describe(other));
}

// A crash in the middle of appending to a pack's list of reclaimed ranges leaves a torn
// entry at its end; the next entry goes where the torn one began, so the list stays whole.
BOOST_AUTO_TEST_CASE(a_torn_entry_in_a_reclaimed_list_is_overwritten_by_the_next) {
  temp_dir dir;
  auto j = open_journal(journal_options(dir.path()));
  const auto chunks = store_chunks(*j, 4, 1 << 20, 800);
  const auto pack = only_pack(dir.path());
  const auto initial = allocated_bytes(pack);
  BOOST_REQUIRE(j->reclaim_chunks_and_wait("alice", {sha256(chunks[0])}, test::an_hour_from_now_us()));
  // Listed and punched: the first release is over.
  allocated_within(pack, initial - (1u << 20) + 2 * 4096);
  const auto list = std::filesystem::path(pack).replace_extension(".reclaimed");
  BOOST_REQUIRE_EQUAL(std::filesystem::file_size(list), 16u);
  {
    std::ofstream torn(list, std::ios::binary | std::ios::app);
    torn.write("\x01\x02\x03\x04\x05\x06\x07", 7);
  }
  const auto before = allocated_bytes(pack);
  BOOST_REQUIRE(j->reclaim_chunks_and_wait("alice", {sha256(chunks[2])}, test::an_hour_from_now_us()));
  allocated_within(pack, before - (1u << 20) + 2 * 4096);
  BOOST_TEST(std::filesystem::file_size(list) == 32u);
  auto id = j->create_backup(dir / "backups");
  BOOST_REQUIRE_MESSAGE(id, describe(id));
  auto verified = journal::verify_backup(dir / "backups", *id);
  BOOST_TEST(static_cast<bool>(verified), describe(verified));
  for (std::size_t i : {1u, 3u}) {
    auto got = j->get_chunk("alice", sha256(chunks[i]));
    BOOST_REQUIRE_MESSAGE(got, describe(got));
  }
}
