// The scan behind `sync` (an SDK internal): what it does when the disk or a permission
// refuses it. A path it cannot see must be left alone, never taken for deleted: the plan
// would delete it on the server, and on every other device.
#define BOOST_TEST_MODULE sdk_local_scan
#include "local_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "temp_dir.hpp"

using namespace autosync;
using namespace autosync::sdk::internal;

namespace fs = std::filesystem;

namespace {

bool has(const std::vector<std::string>& paths, const std::string& path) {
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

scan_io system_io() {
  return {[](int dir_fd, const char* name, struct stat* out) {
            return ::fstatat(dir_fd, name, out, AT_SYMLINK_NOFOLLOW);
          },
          [](DIR* dir) { return ::readdir(dir); }};
}

void write(const fs::path& file) {
  std::ofstream(file) << "content of " << file.filename().string();
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_entry_that_cannot_be_looked_at_is_frozen_and_one_that_is_gone_is_not) {
  test::temp_dir dir;
  fs::create_directories(dir / "sub");
  write(dir / "sub" / "refused.txt");
  write(dir / "sub" / "vanished.txt");
  write(dir / "sub" / "fine.txt");
  auto io = system_io();
  const auto real_stat = io.stat_at;
  io.stat_at = [&](int dir_fd, const char* name, struct stat* out) {
    // What a folder readable but not searchable (mode 0644) does for a user other than
    // root, and a file deleted between the listing and the look.
    if (std::strcmp(name, "refused.txt") == 0) return errno = EACCES, -1;
    if (std::strcmp(name, "vanished.txt") == 0) return errno = ENOENT, -1;
    return real_stat(dir_fd, name, out);
  };
  auto scan = scan_folder(dir.path(), {}, 0, nullptr, io);
  BOOST_REQUIRE(scan);
  BOOST_TEST(has(scan->frozen, "sub/refused.txt"));
  BOOST_TEST(!has(scan->frozen, "sub/vanished.txt"));
  BOOST_TEST(scan->tree.count("sub/vanished.txt") == 0u);
  BOOST_TEST(scan->tree.count("sub/fine.txt") == 1u);
  const auto reason = std::find_if(scan->skipped.begin(), scan->skipped.end(),
                                   [](const auto& s) { return s.path == "sub/refused.txt"; });
  BOOST_REQUIRE(reason != scan->skipped.end());
  BOOST_TEST(reason->reason.find("Permission denied") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_folder_whose_listing_fails_part_way_is_frozen_whole) {
  test::temp_dir dir;
  fs::create_directories(dir / "sub");
  for (int i = 0; i < 8; ++i) write(dir / "sub" / ("f" + std::to_string(i) + ".txt"));
  write(dir / "top.txt");
  auto io = system_io();
  const auto real_read = io.read_dir;
  const std::string sub = (dir / "sub").string();
  int listed_in_sub = 0;
  io.read_dir = [&](DIR * d) -> struct dirent* {
    // The sub folder's listing ends with an I/O error after three entries.
    char link[64], target[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", ::dirfd(d));
    const auto n = ::readlink(link, target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<std::size_t>(n)) == sub && ++listed_in_sub > 3) {
      errno = EIO;
      return nullptr;
    }
    return real_read(d);
  };
  auto scan = scan_folder(dir.path(), {}, 0, nullptr, io);
  BOOST_REQUIRE(scan);
  BOOST_TEST(has(scan->frozen, "sub"));
  BOOST_TEST(scan->tree.count("top.txt") == 1u);

  // The top folder's listing failing fails the scan: nothing may be planned from it.
  io.read_dir = [](DIR*) -> struct dirent* {
    errno = EIO;
    return nullptr;
  };
  auto failed = scan_folder(dir.path(), {}, 0, nullptr, io);
  BOOST_REQUIRE(!failed);
  BOOST_TEST(failed.err().message().find("cannot list the folder") != std::string::npos);
}
