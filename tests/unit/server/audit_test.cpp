#define BOOST_TEST_MODULE server_audit
#include "autosync/server/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "printers.hpp"
#include "small_tmpfs.hpp"
#include "temp_dir.hpp"

using namespace autosync;
using namespace autosync::server;

namespace {

std::vector<nlohmann::json> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(records_are_json_lines_written_in_order) {
  test::temp_dir dir;
  auto log = audit_log::open(dir / "audit.jsonl");
  BOOST_REQUIRE_MESSAGE(log, test::describe(log));
  (*log)->write({1800000000123456, "login_failed", "", "127.0.0.1:5555", "", "token expired"});
  (*log)->write({1800000001000000, "delete", "alice", "10.0.0.2:1", "/docs/a.txt", ""});
  (*log)->flush();  // readable while the log is still open
  auto lines = lines_of(dir / "audit.jsonl");
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);
  BOOST_TEST(lines[0]["action"] == "login_failed");
  BOOST_TEST(lines[0]["time"] == "2027-01-15T08:00:00.123456Z");
  BOOST_TEST(lines[0]["detail"] == "token expired");
  BOOST_TEST(!lines[0].contains("user"));
  BOOST_TEST(lines[1]["user"] == "alice");
  BOOST_TEST(lines[1]["target"] == "/docs/a.txt");
}

BOOST_AUTO_TEST_CASE(client_text_cannot_forge_a_line) {
  test::temp_dir dir;
  auto log = audit_log::open(dir / "audit.jsonl");
  BOOST_REQUIRE(log);
  (*log)->write({0, "delete", "mallory", "", "/x\n{\"action\":\"admin\"}", "bad \xff utf8"});
  (*log)->flush();
  auto lines = lines_of(dir / "audit.jsonl");
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_TEST(lines[0]["action"] == "delete");
  BOOST_TEST(lines[0]["target"].get<std::string>().find('\n') != std::string::npos);
}

BOOST_AUTO_TEST_CASE(many_threads_write_whole_lines) {
  test::temp_dir dir;
  {
    auto log = audit_log::open(dir / "audit.jsonl");
    BOOST_REQUIRE(log);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) (*log)->write({i, "login", "user" + std::to_string(t), "", "", ""});
      });
    }
    for (auto& w : writers) w.join();
  }
  BOOST_TEST(lines_of(dir / "audit.jsonl").size() == 1000u);  // every line parses
}

BOOST_AUTO_TEST_CASE(a_missing_folder_is_created) {
  test::temp_dir dir;
  auto log = audit_log::open(dir / "logs" / "autosync" / "audit.jsonl");
  BOOST_REQUIRE_MESSAGE(log, test::describe(log));
  (*log)->write({0, "login", "alice", "", "", ""});
  (*log)->flush();
  BOOST_TEST(lines_of(dir / "logs" / "autosync" / "audit.jsonl").size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_unwritable_path_is_a_clear_error) {
  auto log = audit_log::open("/proc/definitely/not/here/audit.jsonl");
  BOOST_REQUIRE(!log);
  BOOST_TEST(log.err().message().find("audit log") != std::string::npos);
}

// A log that takes nothing (a pipe nobody reads, a stuck file system) holds up no writer:
// the RPC loop and the user actors write audit lines and must never wait on a disk.
BOOST_AUTO_TEST_CASE(a_log_that_takes_nothing_holds_up_no_writer) {
  // Should lines go missing, closing the pipe below fails the writer's write instead of
  // killing the test.
  ::signal(SIGPIPE, SIG_IGN);
  test::temp_dir dir;
  const auto fifo = dir / "audit.fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opened for reading first, so the log's open does not wait; nothing is read yet.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  BOOST_REQUIRE(reader >= 0);
  auto log = audit_log::open(fifo);
  BOOST_REQUIRE_MESSAGE(log, test::describe(log));
  constexpr int count = 3000;  // some 300 KB: a pipe holds 64 KiB
  auto writing = std::async(std::launch::async, [&] {
    for (int i = 0; i < count; ++i) {
      (*log)->write({i, "delete", "alice", "10.0.0.2:1", "/docs/file-" + std::to_string(i), ""});
    }
  });
  const bool returned = writing.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  // Read everything (this also frees a writer stuck in the old design, so the test ends).
  std::string got;
  std::size_t lines = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buffer[65536];
  while (lines < count && std::chrono::steady_clock::now() < until) {
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n > 0) {
      got.append(buffer, static_cast<std::size_t>(n));
      lines = static_cast<std::size_t>(std::count(got.begin(), got.end(), '\n'));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  writing.wait();
  ::close(reader);
  BOOST_TEST(returned);
  BOOST_REQUIRE_EQUAL(lines, static_cast<std::size_t>(count));
  // Whole lines, in order.
  std::istringstream in(got);
  int i = 0;
  for (std::string line; std::getline(in, line); ++i) {
    BOOST_TEST(nlohmann::json::parse(line)["target"] == "/docs/file-" + std::to_string(i));
  }
}

// A full disk cuts a write short, maybe inside a line, and fails the next ones. Once space
// is back, the log goes on with whole lines: the cut one ends where it was cut, and the
// next starts on a line of its own.
BOOST_AUTO_TEST_CASE(after_a_full_disk_the_log_goes_on_with_whole_lines,
                     *boost::unit_test::precondition(test::can_mount_tmpfs)) {
  test::small_tmpfs disk("8k");
  BOOST_REQUIRE(disk.mounted);
  auto log = audit_log::open(disk.dir / "audit.jsonl");
  BOOST_REQUIRE_MESSAGE(log, test::describe(log));
  for (int i = 0; i < 200; ++i) {
    (*log)->write({i, "delete", "alice", "", "/docs/file-" + std::to_string(i), std::string(50, 'x')});
  }
  (*log)->flush();
  BOOST_REQUIRE(std::filesystem::file_size(disk.dir / "audit.jsonl") <= 8192u);
  BOOST_REQUIRE(disk.resize("1m"));
  for (int i = 0; i < 10; ++i) {
    (*log)->write({i, "restore", "alice", "", "/after-" + std::to_string(i), ""});
  }
  (*log)->flush();
  std::ifstream in(disk.dir / "audit.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  BOOST_REQUIRE(lines.size() >= 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& line = lines[lines.size() - 10 + static_cast<std::size_t>(i)];
    BOOST_REQUIRE_NO_THROW(nlohmann::json::parse(line));
    BOOST_TEST(nlohmann::json::parse(line)["target"] == "/after-" + std::to_string(i));
  }
}
