#define BOOST_TEST_MODULE journal_crash
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "journal_fixture.hpp"

using namespace autosync;
using namespace autosync::test;

namespace {

struct child_output {
  std::string text;
};

// Starts the writer on `dir`, lets it run for `run_for`, kills it with SIGKILL and returns
// everything it printed (each line an acknowledged write).
std::string run_and_kill(const std::filesystem::path& dir, unsigned seed,
                         std::chrono::milliseconds run_for) {
  int pipe_fds[2];
  BOOST_REQUIRE(::pipe(pipe_fds) == 0);
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    std::string seed_text = std::to_string(seed);
    ::execl(AUTOSYNC_CRASH_WRITER, AUTOSYNC_CRASH_WRITER, dir.c_str(), seed_text.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string output;
  std::thread reader([&] {
    char buffer[65536];
    for (;;) {
      ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
      if (n <= 0) break;
      output.append(buffer, static_cast<std::size_t>(n));
    }
  });
  std::this_thread::sleep_for(run_for);
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  reader.join();  // EOF once the child is gone
  ::close(pipe_fds[0]);
  BOOST_TEST_REQUIRE(WIFSIGNALED(wstatus), "the writer exited by itself: " << output);
  return output;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_acknowledged_write_survives_sigkill_at_random_moments) {
  temp_dir dir;
  // user -> seq -> hash, accumulated over every run: each crash must keep all of them.
  std::map<std::string, std::map<std::uint64_t, std::string>> acked_events;
  std::map<std::string, std::vector<std::string>> acked_chunks;
  std::size_t total_events = 0;
  for (unsigned seed = 1; seed <= 6; ++seed) {
    std::mt19937 rng(seed);
    const auto run_for = std::chrono::milliseconds(150 + rng() % 500);
    std::istringstream lines(run_and_kill(dir.path(), seed, run_for));
    std::string kind, user, hash;
    std::uint64_t seq = 0;
    std::size_t this_run = 0;
    while (lines >> kind) {
      if (kind == "E") {
        lines >> user >> seq >> hash;
        if (!lines) break;  // a line cut short by the kill
        acked_events[user][seq] = hash;
        ++this_run;
      } else {
        lines >> user >> hash;
        if (!lines) break;
        acked_chunks[user].push_back(hash);
      }
    }
    total_events += this_run;
    BOOST_TEST_MESSAGE("seed " << seed << ": killed after " << run_for.count() << " ms, "
                               << this_run << " events acknowledged");

    auto j = open_journal(journal_options(dir.path()));
    for (const auto& [name, events] : acked_events) {
      std::map<std::uint64_t, std::string> found;
      auto s = j->read_events(name, 1, UINT64_MAX, [&](journal::stored_event&& e) {
        found[e.seq()] = e.hash().hex();
        return true;
      });
      BOOST_REQUIRE_MESSAGE(s, "seed " << seed << ": " << s.to_string());
      for (const auto& [acked_seq, acked_hash] : events) {
        auto it = found.find(acked_seq);
        BOOST_REQUIRE_MESSAGE(it != found.end(), "seed " << seed << ": user " << name << " seq "
                                                         << acked_seq << " was acknowledged but is lost");
        BOOST_TEST(it->second == acked_hash);
      }
    }
    for (const auto& [name, hashes] : acked_chunks) {
      for (const auto& h : hashes) {
        auto got = j->get_chunk(name, *sha256_digest::from_hex(h));
        BOOST_REQUIRE_MESSAGE(got, "seed " << seed << ": " << describe(got));
      }
    }
  }
  BOOST_TEST(total_events > 100u, "the writer should get real work done before each kill");
}
