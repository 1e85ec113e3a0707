// The inotify watch behind `sync --watch` (an SDK internal): what it notices.
#define BOOST_TEST_MODULE sdk_local_watch
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "local_watch.hpp"
#include "temp_dir.hpp"

using namespace autosync;
using autosync::sdk::internal::local_watch;

namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(a_write_inside_a_folder_made_since_the_last_pass_is_noticed) {
  test::temp_dir dir;
  auto watch = local_watch::open(dir.path());
  BOOST_REQUIRE(watch);
  BOOST_REQUIRE((*watch)->watch_tree());
  fs::create_directories(dir / "new" / "deeper");
  BOOST_REQUIRE((*watch)->wait(std::chrono::seconds(5)));  // the folder itself
  // No pass ran (no watch_tree() since): the new folders are watched all the same.
  std::ofstream(dir / "new" / "deeper" / "file.txt") << "written";
  BOOST_TEST((*watch)->wait(std::chrono::seconds(5)));
  std::ofstream(dir / "new" / "file.txt") << "written";
  BOOST_TEST((*watch)->wait(std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(the_engines_own_folder_is_not_a_change) {
  test::temp_dir dir;
  auto watch = local_watch::open(dir.path());
  BOOST_REQUIRE(watch);
  BOOST_REQUIRE((*watch)->watch_tree());
  fs::create_directories(dir / ".autosync");
  std::ofstream(dir / ".autosync" / "state.json") << "{}";
  BOOST_TEST(!(*watch)->wait(std::chrono::milliseconds(300)));
}
