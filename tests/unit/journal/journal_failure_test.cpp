#define BOOST_TEST_MODULE journal_failure
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <random>
#include <thread>

#include "journal_fixture.hpp"
#include "small_tmpfs.hpp"
#include "test_data.hpp"

using namespace autosync;
using namespace autosync::test;
using rocksdb::IOStatus;

namespace {

// A file system that fails every write and sync while `failing` is set: a disk that
// went bad, or filled up, under a running journal.
class failing_file_system : public rocksdb::FileSystemWrapper {
public:
  explicit failing_file_system(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "failing_file_system"; }

  std::atomic<bool> failing{false};
  // A full disk (ENOSPC) or a failing one (EIO): RocksDB treats them differently.
  std::atomic<bool> no_space{true};

  IOStatus injected(const std::string& what) const {
    return no_space ? IOStatus::NoSpace("injected: " + what) : IOStatus::IOError("injected: " + what);
  }

  IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                           std::unique_ptr<rocksdb::FSWritableFile>* file,
                           rocksdb::IODebugContext* dbg) override {
    if (failing) return injected("cannot create " + name);
    auto s = target()->NewWritableFile(name, options, file, dbg);
    if (s.ok()) *file = std::make_unique<failing_file>(std::move(*file), this);
    return s;
  }

private:
  class failing_file : public rocksdb::FSWritableFileOwnerWrapper {
  public:
    failing_file(std::unique_ptr<rocksdb::FSWritableFile>&& file, failing_file_system* fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                    rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return fs_->injected("write failed");
      return target()->Append(data, options, dbg);
    }
    IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                    const rocksdb::DataVerificationInfo& info,
                    rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return fs_->injected("write failed");
      return target()->Append(data, options, info, dbg);
    }
    IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return IOStatus::IOError("injected: sync failed");
      return target()->Sync(options, dbg);
    }
    IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return IOStatus::IOError("injected: fsync failed");
      return target()->Fsync(options, dbg);
    }

  private:
    failing_file_system* fs_;
  };
};

struct acknowledged_log {
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, sha256_digest>> events;
  std::vector<error_kind> failures;
};

}  // namespace

BOOST_AUTO_TEST_CASE(injected_write_failure_fails_every_waiting_append_and_loses_nothing) {
  temp_dir dir;
  auto fs = std::make_shared<failing_file_system>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  std::vector<seen_event> durable;
  {
    auto options = journal_options(dir.path());
    options.env = env.get();
    auto j = open_journal(options);
    for (int i = 0; i < 10; ++i) append_commit(*j, "alice", "/before" + std::to_string(i));

    fs->failing = true;
    acknowledged_log log;
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          auto r = j->append_and_wait(request_for("alice", commit_event("/during" + std::to_string(t))));
          std::lock_guard lock(log.mutex);
          if (r) {
            log.events.emplace_back(r->last_seq, r->last_hash);
          } else {
            log.failures.push_back(r.err().kind());
          }
        }
      });
    }
    for (auto& w : writers) w.join();
    BOOST_TEST(log.events.empty());  // nothing is acknowledged that was not synced
    BOOST_TEST(log.failures.size() == 100u);
    for (auto kind : log.failures) BOOST_TEST(to_string(kind) == to_string(error_kind::unavailable));

    // The journal stays consistent while the disk is bad: reads still see the 10 events.
    BOOST_TEST(all_events(*j, "alice").size() == 10u);
    durable = all_events(*j, "alice");
    fs->failing = false;
  }
  // Reopened on a healthy disk: every acknowledged event intact, none of the failed ones,
  // and the chain continues where it durably ended.
  auto j = open_journal(journal_options(dir.path()));
  auto after = all_events(*j, "alice");
  BOOST_REQUIRE_EQUAL(after.size(), durable.size());
  for (std::size_t i = 0; i < after.size(); ++i) BOOST_TEST(after[i].hash == durable[i].hash);
  BOOST_TEST(append_commit(*j, "alice", "/after") == 11u);
}

// After a failed WAL write RocksDB refuses writes until it is resumed, and after an I/O
// error it cannot always be resumed: then appends keep failing with `unavailable` (never a
// false success) until the journal is reopened, which restores service with no gap.
BOOST_AUTO_TEST_CASE(after_an_io_error_appends_fail_cleanly_until_reopen_restores_service) {
  temp_dir dir;
  auto fs = std::make_shared<failing_file_system>(rocksdb::FileSystem::Default());
  fs->no_space = false;
  auto env = rocksdb::NewCompositeEnv(fs);
  auto options = journal_options(dir.path());
  options.env = env.get();
  {
    auto j = open_journal(options);
    append_commit(*j, "bob", "/a");
    fs->failing = true;
    auto failed = j->append_and_wait(request_for("bob", commit_event("/b")));
    BOOST_REQUIRE(!failed);
    BOOST_TEST(failed.err().kind() == error_kind::unavailable);
    BOOST_TEST(failed.err().message().find("check the disk") != std::string::npos,
               failed.err().message());
    fs->failing = false;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto r = j->append_and_wait(request_for("bob", commit_event("/c")));
      if (r) {
        BOOST_TEST(r->last_seq == 2u);  // resumed: the failed append left no gap
        break;
      }
      BOOST_TEST(r.err().kind() == error_kind::unavailable);
    }
    BOOST_TEST(all_events(*j, "bob").size() <= 2u);
  }
  auto j = open_journal(journal_options(dir.path()));
  const auto before = all_events(*j, "bob").size();
  BOOST_TEST(append_commit(*j, "bob", "/d") == before + 1);
}

BOOST_AUTO_TEST_CASE(a_full_disk_reports_errors_keeps_acknowledged_data_and_reopens,
                     *boost::unit_test::precondition(can_mount_tmpfs)) {
  small_tmpfs disk("24m");
  BOOST_REQUIRE(disk.mounted);
  const auto path = disk.dir / "journal";
  std::vector<sha256_digest> stored_chunks;
  std::vector<journal::appended> acknowledged;
  std::optional<error> first_failure;
  {
    auto j = open_journal(journal_options(path));
    std::mt19937 rng(7);
    for (int i = 0; i < 200 && !first_failure; ++i) {
      std::string chunk(256 << 10, '\0');
      for (auto& c : chunk) c = static_cast<char>(rng());
      auto id = sha256(chunk);
      auto r = j->put_chunk_and_wait("alice", id, std::move(chunk));
      if (!r) {
        first_failure = r.err();
        break;
      }
      stored_chunks.push_back(id);
      auto e = j->append_and_wait(request_for("alice", commit_event("/f" + std::to_string(i))));
      if (e) {
        acknowledged.push_back(*e);
      } else {
        first_failure = e.err();
      }
    }
    BOOST_REQUIRE_MESSAGE(first_failure.has_value(), "24 MiB should fill before 50 MiB is stored");
    BOOST_TEST(first_failure->kind() == error_kind::unavailable);
    BOOST_TEST_MESSAGE("full disk reported as: " << first_failure->to_string());
  }
  BOOST_TEST(!stored_chunks.empty());
  // The operator frees space; the journal reopens with everything it acknowledged.
  BOOST_REQUIRE(disk.resize("128m"));
  auto j = open_journal(journal_options(path));
  auto after = all_events(*j, "alice");
  BOOST_REQUIRE_EQUAL(after.size(), acknowledged.size());
  for (const auto& a : acknowledged) BOOST_TEST(after[a.last_seq - 1].hash == a.last_hash);
  for (std::size_t i = 0; i < stored_chunks.size(); ++i) {
    auto got = j->get_chunk("alice", stored_chunks[i]);
    BOOST_REQUIRE_MESSAGE(got, "chunk " << i << " of " << stored_chunks.size() << ": " << describe(got));
  }
  BOOST_TEST(append_commit(*j, "alice", "/after") == acknowledged.size() + 1);
}

// A reclaim whose batch cannot be written forgets nothing and frees nothing: the chunk
// stays indexed and readable, its bytes untouched.
BOOST_AUTO_TEST_CASE(a_reclaim_that_cannot_be_written_changes_nothing) {
  temp_dir dir;
  auto fs = std::make_shared<failing_file_system>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  const std::string content = random_bytes(1 << 20, 77);
  {
    auto options = journal_options(dir.path());
    options.env = env.get();
    auto j = open_journal(options);
    BOOST_REQUIRE(j->put_chunk_and_wait("alice", sha256(content), content));
    fs->failing = true;
    auto r = j->reclaim_chunks_and_wait("alice", {sha256(content)}, test::an_hour_from_now_us());
    BOOST_REQUIRE(!r);
    BOOST_TEST(to_string(r.err().kind()) == to_string(error_kind::unavailable));
    fs->failing = false;
  }
  auto j = open_journal(journal_options(dir.path()));
  auto got = j->get_chunk("alice", sha256(content));
  BOOST_REQUIRE_MESSAGE(got, describe(got));
  BOOST_TEST((*got == content));
}
