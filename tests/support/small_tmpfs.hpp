// A small tmpfs mounted for one test, so that "disk full" is the real ENOSPC. Mounting
// needs root (CAP_SYS_ADMIN): tests that use it carry the can_mount_tmpfs precondition and
// are skipped, saying why, elsewhere.
#pragma once

#include <sys/mount.h>

#include <boost/test/unit_test.hpp>
#include <string>

#include "temp_dir.hpp"

namespace autosync::test {

struct small_tmpfs {
  temp_dir dir;
  bool mounted = false;
  explicit small_tmpfs(const char* size) {
    std::string opts = std::string("size=") + size;
    mounted = ::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  // The operator frees space: the same files, more room.
  bool resize(const char* size) {
    std::string opts = std::string("size=") + size;
    return ::mount("tmpfs", dir.path().c_str(), "tmpfs", MS_REMOUNT, opts.c_str()) == 0;
  }
  ~small_tmpfs() {
    if (mounted) ::umount2(dir.path().c_str(), MNT_DETACH);
  }
};

inline boost::test_tools::assertion_result can_mount_tmpfs(boost::unit_test::test_unit_id) {
  small_tmpfs probe("1m");
  boost::test_tools::assertion_result r(probe.mounted);
  if (!probe.mounted) r.message() << "mounting a tmpfs needs root (CAP_SYS_ADMIN)";
  return r;
}

}  // namespace autosync::test
