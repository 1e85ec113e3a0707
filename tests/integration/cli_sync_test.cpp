// The `autosync` CLI against a real autosyncd: two local folders ("devices") kept in sync
// through the server, conflicts, the deletion limit, exit codes and error advice.
#define BOOST_TEST_MODULE cli_sync
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <functional>
#include <csignal>

#include "server_process.hpp"
#include "temp_dir.hpp"
#include "test_data.hpp"

using namespace autosync;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// The files below `root` (not the engine's folder) with their content, by relative path.
std::map<std::string, std::string> files_of(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->path().filename() == ".autosync") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) out[fs::relative(it->path(), root).string()] = read_file(it->path());
  }
  return out;
}

struct fixture {
  test::temp_dir dir;
  test::server_process server{AUTOSYNCD_BIN, dir / "server"};
  std::string token;

  fixture() {
    const auto issued = test::run_process(
        AUTOSYNC_ADMIN_BIN,
        "token issue --secret-file " + server.secret_file().string() + " --user alice --ttl 1h");
    BOOST_REQUIRE_EQUAL(issued.exit_code, 0);
    token = issued.output.substr(0, issued.output.find_last_not_of("\n") + 1);
  }

  // Runs the CLI as `device` with `args` after the global options.
  test::process_result cli(const std::string& args, const std::string& device = "one") {
    return test::run_process(AUTOSYNC_CLI_BIN, "--server " + server.address() + " --token " +
                                                   token + " --device " + device + " " + args);
  }

  // One sync pass of the local folder `name` (under the test's folder) with /sync.
  test::process_result sync(const std::string& name, const std::string& extra = "") {
    auto r = cli("sync " + (dir / name).string() + " /sync " + extra, name);
    BOOST_TEST_MESSAGE("sync " << name << ": " << r.output);
    return r;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(two_folders_converge_through_the_server, fixture) {
  write_file(dir / "one" / "a.txt", "alpha");
  write_file(dir / "one" / "sub" / "b.bin", test::random_bytes(3 << 20, 1));
  fs::create_directories(dir / "one" / "empty");
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_TEST((files_of(dir / "one") == files_of(dir / "two")));
  BOOST_TEST(fs::is_directory(dir / "two" / "empty"));

  // An edit there, a rename and a delete here: each reaches the other side.
  write_file(dir / "two" / "a.txt", "alpha, edited");
  fs::rename(dir / "one" / "sub" / "b.bin", dir / "one" / "sub" / "renamed.bin");
  fs::remove(dir / "one" / "empty");
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  const auto moved = sync("one");
  BOOST_REQUIRE_EQUAL(moved.exit_code, 0);
  BOOST_TEST(moved.output.find("moved on the server") != std::string::npos, moved.output);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_TEST((files_of(dir / "one") == files_of(dir / "two")));
  BOOST_TEST(read_file(dir / "one" / "a.txt") == "alpha, edited");
  BOOST_TEST(!fs::exists(dir / "two" / "empty"));
  BOOST_TEST(sync("one").output.find("up to date") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_folder_replaced_by_a_file_or_back_on_one_side_converges, fixture) {
  write_file(dir / "one" / "d" / "x.txt", "inside");
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_REQUIRE(read_file(dir / "two" / "d" / "x.txt") == "inside");

  fs::remove_all(dir / "one" / "d");
  write_file(dir / "one" / "d", "a file now");
  auto replaced = sync("one");
  BOOST_TEST(replaced.exit_code == 0, replaced.output);
  BOOST_TEST(replaced.output.find("skipped") == std::string::npos, replaced.output);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_TEST((files_of(dir / "two") == std::map<std::string, std::string>{{"d", "a file now"}}));

  fs::remove(dir / "two" / "d");
  write_file(dir / "two" / "d" / "y.txt", "a folder again");
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_TEST((files_of(dir / "one") ==
              std::map<std::string, std::string>{{"d/y.txt", "a folder again"}}));
  BOOST_TEST((files_of(dir / "one") == files_of(dir / "two")));
}

BOOST_FIXTURE_TEST_CASE(edits_on_both_sides_keep_both_versions, fixture) {
  write_file(dir / "one" / "notes.txt", "v1");
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  write_file(dir / "one" / "notes.txt", "from one");
  write_file(dir / "two" / "notes.txt", "from two");
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  const auto files = files_of(dir / "one");
  BOOST_TEST((files == files_of(dir / "two")));
  BOOST_REQUIRE_EQUAL(files.size(), 2u);
  BOOST_TEST(files.at("notes.txt") == "from one");  // the server's version keeps the name
  const auto copy = files.begin();                  // "notes (" sorts before "notes."
  BOOST_TEST(copy->first.find("notes (conflicted copy two ") == 0, copy->first);
  BOOST_TEST(copy->second == "from two");
}

BOOST_FIXTURE_TEST_CASE(a_mass_delete_stops_until_max_delete_allows_it, fixture) {
  for (int i = 0; i < 20; ++i) write_file(dir / "one" / ("f" + std::to_string(i)), "x");
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  for (int i = 0; i < 20; ++i) fs::remove(dir / "one" / ("f" + std::to_string(i)));
  const auto refused = sync("one");
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.output.find("--max-delete 20") != std::string::npos, refused.output);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_TEST(files_of(dir / "two").size() == 20u);  // nothing was deleted anywhere
  BOOST_REQUIRE_EQUAL(sync("one", "--max-delete 20").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two", "--max-delete 20").exit_code, 0);
  BOOST_TEST(files_of(dir / "two").empty());
}

BOOST_FIXTURE_TEST_CASE(exit_codes_tell_usage_errors_from_failures_and_errors_say_what_to_do,
                        fixture) {
  write_file(dir / "f.txt", "x");
  BOOST_TEST(cli("put " + (dir / "f.txt").string() + " docs/f.txt").exit_code == 2);
  BOOST_TEST(cli("no-such-command").exit_code == 2);
  const auto missing = cli("stat /nothing/here");
  BOOST_TEST(missing.exit_code == 1);
  BOOST_TEST(missing.output.find("what to do") != std::string::npos, missing.output);
  const auto refused = test::run_process(
      AUTOSYNC_CLI_BIN, "--server " + server.address() + " --token not-a-token ls /");
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.output.find("autosync-admin token issue") != std::string::npos,
             refused.output);
  const auto stale = cli("changes --since 1000000");
  BOOST_TEST(stale.exit_code == 1);
  BOOST_TEST(stale.output.find("stale_cursor") != std::string::npos, stale.output);
  BOOST_TEST(stale.output.find("autosync changes (no --since)") != std::string::npos, stale.output);
  // A local folder the sync cannot keep its state in is about the local disk, not the
  // server. (Things stand where its files go: root is refused nothing otherwise.)
  fs::create_directories(dir / "blocked");
  write_file(dir / "blocked" / ".autosync", "in the way");
  const auto blocked = sync("blocked");
  BOOST_TEST(blocked.exit_code == 1);
  BOOST_TEST(blocked.output.find("check the disk") != std::string::npos, blocked.output);
  BOOST_TEST(blocked.output.find("autosyncd is running") == std::string::npos, blocked.output);
  fs::create_directories(dir / "unsaved" / ".autosync" / "state.json.new");
  const auto unsaved = sync("unsaved");
  BOOST_TEST(unsaved.exit_code == 1);
  BOOST_TEST(unsaved.output.find("local_io:") != std::string::npos, unsaved.output);
  BOOST_TEST(unsaved.output.find("local disk or folder") != std::string::npos, unsaved.output);
  BOOST_TEST(unsaved.output.find("autosyncd is running") == std::string::npos, unsaved.output);
}

BOOST_FIXTURE_TEST_CASE(json_output_is_one_object_per_line, fixture) {
  write_file(dir / "f.txt", "x");
  BOOST_REQUIRE_EQUAL(cli("put " + (dir / "f.txt").string() + " /d/f.txt").exit_code, 0);
  BOOST_REQUIRE_EQUAL(cli("put " + (dir / "f.txt").string() + " /d/g.txt").exit_code, 0);
  const auto listed = cli("--json ls /d");
  BOOST_REQUIRE_EQUAL(listed.exit_code, 0);
  std::set<std::string> lines;
  std::istringstream in(listed.output);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  BOOST_TEST(lines.size() == 2u);
  for (const auto& line : lines) BOOST_TEST((line.front() == '{' && line.back() == '}'), line);
}

BOOST_FIXTURE_TEST_CASE(a_conflict_inside_a_batch_of_small_files_concerns_that_file_alone,
                        fixture) {
  // More files than one batch holds (256), so commits and downloads go in several batches.
  const int files = 600;
  auto name = [](int i) { return "d" + std::to_string(i % 7) + "/f" + std::to_string(i); };
  for (int i = 0; i < files; ++i) write_file(dir / "one" / name(i), "v1 " + std::to_string(i));
  BOOST_REQUIRE_EQUAL(sync("one").exit_code, 0);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  BOOST_REQUIRE((files_of(dir / "one") == files_of(dir / "two")));
  write_file(dir / "two" / name(300), "from two");
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  for (int i = 0; i < files; ++i) write_file(dir / "one" / name(i), "v2 " + std::to_string(i));
  const auto both = sync("one");
  BOOST_REQUIRE_EQUAL(both.exit_code, 0);
  BOOST_TEST(both.output.find("conflict") != std::string::npos, both.output);
  BOOST_REQUIRE_EQUAL(sync("two").exit_code, 0);
  const auto synced = files_of(dir / "one");
  BOOST_TEST((synced == files_of(dir / "two")));
  BOOST_REQUIRE_EQUAL(synced.size(), static_cast<std::size_t>(files + 1));
  BOOST_TEST(synced.at(name(300)) == "from two");  // the server's version keeps the name
  for (int i = 0; i < files; ++i) {
    if (i != 300) BOOST_TEST(synced.at(name(i)) == "v2 " + std::to_string(i));
  }
}

namespace {

// `autosync sync DIR /sync --watch` running in the background until stopped with SIGINT.
class watcher {
public:
  watcher(const fixture& f, const std::string& name) {
    const auto log = f.dir / (name + "-watch.log");
    std::vector<std::string> args{AUTOSYNC_CLI_BIN, "--server", f.server.address(), "--token",
                                  f.token, "--device", name, "sync", (f.dir / name).string(),
                                  "/sync", "--watch"};
    pid_ = test::spawn_process(std::move(args), log.string());
  }
  ~watcher() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // SIGINT, as Ctrl-C: the exit code.
  int stop() {
    ::kill(pid_, SIGINT);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

private:
  pid_t pid_ = -1;
};

// Waits up to 15 s for `done`.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 300; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(two_watching_folders_follow_each_other_until_interrupted, fixture) {
  fs::create_directories(dir / "one");
  fs::create_directories(dir / "two");
  watcher one(*this, "one");
  watcher two(*this, "two");
  write_file(dir / "one" / "hello.txt", "from one");
  BOOST_TEST(eventually([&] { return read_file(dir / "two" / "hello.txt") == "from one"; }));
  write_file(dir / "two" / "docs" / "reply.txt", "from two");
  BOOST_TEST(eventually([&] { return read_file(dir / "one" / "docs" / "reply.txt") == "from two"; }));
  fs::remove(dir / "one" / "hello.txt");
  BOOST_TEST(eventually([&] { return !fs::exists(dir / "two" / "hello.txt"); }));
  BOOST_TEST(one.stop() == 0);
  BOOST_TEST(two.stop() == 0);
  BOOST_TEST((files_of(dir / "one") == files_of(dir / "two")));
}

// A server restart ends the watcher's subscription; it subscribes again within seconds
// (not at the next idle pass, ten minutes away), so remote changes keep arriving.
BOOST_FIXTURE_TEST_CASE(a_watching_folder_follows_the_server_again_after_it_restarts, fixture) {
  fs::create_directories(dir / "one");
  watcher one(*this, "one");
  write_file(dir / "first.txt", "before the restart");
  BOOST_REQUIRE(cli("put " + (dir / "first.txt").string() + " /sync/first.txt", "two").exit_code == 0);
  BOOST_REQUIRE(eventually([&] { return fs::exists(dir / "one" / "first.txt"); }));
  // Settled: waiting on its subscription (the pass its own download set off is over).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto address = server.address();
  server.kill9();
  // Down long enough for the client's own reconnect retries to give up.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  server.start(address);
  write_file(dir / "second.txt", "after the restart");
  BOOST_REQUIRE(cli("put " + (dir / "second.txt").string() + " /sync/second.txt", "two").exit_code == 0);
  BOOST_TEST(eventually([&] { return read_file(dir / "one" / "second.txt") == "after the restart"; }));
  BOOST_TEST(one.stop() == 0);
}
