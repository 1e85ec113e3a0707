// export: the user's files as of a point, written from the chunk store and checked
// against each file's hash: disaster recovery without a running cluster.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "replay.hpp"

namespace autosync::replay {

namespace fs = std::filesystem;

namespace {

// Writes one file from its chunks; returns a problem description or nothing. The content
// goes to a temporary name first: a file that cannot be exported whole is not left under
// its real name, where it would pass for the user's file. The name is made unique when
// created (mkstemp), so it can never be one of the user's files exported before.
std::optional<std::string> write_file(journal::journal& j, const std::string& user,
                                      const actors::node& n, const fs::path& target) {
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return "cannot create " + target.parent_path().string() + ": " + ec.message();
  std::string name = target.string() + ".autosync-export-XXXXXX";
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return "cannot create a file beside " + target.string() + ": " + std::strerror(errno);
  // mkstemp makes it private; the exported file gets the usual permissions.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  ::close(fd);
  const fs::path partial = name;
  auto fail = [&](std::string why) {
    fs::remove(partial, ec);
    return std::optional<std::string>(std::move(why));
  };
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) return fail("cannot write " + partial.string());
  sha256_hasher whole;
  for (const auto& c : n.content.chunks) {
    auto data = j.get_chunk(user, c.hash);
    if (!data) {
      if (data.err().kind() == error_kind::not_found) {
        return fail(data.err().message() +
                    "; a point older than the retention period can refer to content that "
                    "was reclaimed: export a later point");
      }
      return fail(data.err().to_string());
    }
    whole.update(*data);
    out.write(data->data(), static_cast<std::streamsize>(data->size()));
  }
  out.close();
  if (!out) return fail("writing " + partial.string() + " failed (disk full?)");
  if (whole.finish() != n.content.hash) return fail("content does not match the file's hash");
  fs::rename(partial, target, ec);
  if (ec) return fail("cannot rename " + partial.string() + ": " + ec.message());
  // The device's modification time, as sync tools compare it (best effort).
  const timespec times[2] = {{0, UTIME_OMIT},
                             {static_cast<time_t>(n.content.mtime_us / 1000000),
                              static_cast<long>(n.content.mtime_us % 1000000) * 1000}};
  ::utimensat(AT_FDCWD, target.c_str(), times, 0);
  return std::nullopt;
}

}  // namespace

int export_files(journal::journal& j, const std::string& user, const std::string& dest,
                 const point& at, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (fs::exists(dest, ec) && !fs::is_empty(dest, ec)) {
    err << "autosync-replay: " << dest << " is not empty: export into a new or empty folder\n";
    return 1;
  }
  auto state = state_at(j, user, at);
  if (!state) {
    err << "autosync-replay: " << state.err().to_string() << "\n";
    return 1;
  }
  fs::create_directories(dest, ec);
  const bool show_progress = ::isatty(STDERR_FILENO) != 0;
  std::size_t files = 0, problems = 0;
  std::uint64_t bytes = 0;
  std::vector<actors::node_id> stack = {actors::root_id};
  while (!stack.empty()) {
    const auto id = stack.back();
    stack.pop_back();
    for (const auto* child : state->children(id)) stack.push_back(child->id);
    if (id == actors::root_id) continue;
    const actors::node& n = *state->get(id);
    const fs::path target = fs::path(dest) / state->path_of(id).substr(1);
    if (n.folder) {
      fs::create_directories(target, ec);
      continue;
    }
    if (auto problem = write_file(j, user, n, target)) {
      ++problems;
      err << "PROBLEM " << state->path_of(id) << ": " << *problem << "\n";
      continue;
    }
    ++files;
    bytes += n.content.size;
    if (show_progress) {
      err << "\rexported " << files << "/" << state->live_files() << " files, " << bytes
          << " bytes\x1b[K" << std::flush;
    }
  }
  if (show_progress) err << "\n";
  out << "exported " << files << " files (" << bytes << " bytes) of " << user << " as of seq "
      << state->last_seq() << " into " << dest << "\n";
  if (problems != 0) {
    err << problems << " files could not be exported (each named above, none written); "
        << "for damage, run `autosync-replay verify " << user << "`\n";
    return 1;
  }
  return 0;
}

}  // namespace autosync::replay
