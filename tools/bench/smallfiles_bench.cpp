// Many small files through the folder sync engine (sdk/folder_sync.hpp, the code path of
// `autosync sync`), against a running autosyncd:
//   server.smallfiles.up    a folder of 10,000 files of 4 KiB (random content, in 100
//                           subfolders) synced to a fresh, empty user: one first pass
//   server.smallfiles.down  the same user synced into a second, empty folder
// ops_per_s is files per second; p50_ms and p99_ms are the pass's time. Each pass is timed
// from opening the folder to the end of the pass (scan, hashing, plan, transfers, state
// saved), without connecting. The files are written just before, so they are in the page
// cache, as a folder someone just worked in is.
#include "smallfiles_bench.hpp"

#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>

#include "autosync/sdk/client.hpp"
#include "autosync/sdk/folder_sync.hpp"

namespace autosync::bench {

namespace {

namespace fs = std::filesystem;

constexpr int folders = 100;
constexpr int files_per_folder = 100;
constexpr int files_total = folders * files_per_folder;
constexpr std::size_t file_bytes = 4096;

std::string file_name(int folder, int file) {
  char name[32];
  std::snprintf(name, sizeof name, "d%02d/f%04d.bin", folder, file);
  return name;
}

void write_tree(const fs::path& root, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> block(file_bytes / 8);
  for (int d = 0; d < folders; ++d) {
    fs::create_directories((root / file_name(d, 0)).parent_path());
    for (int f = 0; f < files_per_folder; ++f) {
      for (auto& w : block) w = rng();
      std::ofstream out(root / file_name(d, f), std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(block.data()), file_bytes);
      if (!out) throw std::runtime_error("cannot write " + (root / file_name(d, f)).string());
    }
  }
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every file arrived with its content.
void check_same(const fs::path& up, const fs::path& down) {
  for (int d = 0; d < folders; ++d) {
    for (int f = 0; f < files_per_folder; ++f) {
      if (read_all(down / file_name(d, f)) != read_all(up / file_name(d, f))) {
        throw std::runtime_error((down / file_name(d, f)).string() + " differs from the original");
      }
    }
  }
}

// One pass of the folder sync of `local` with the user's whole space, timed (seconds).
// Throws unless the pass moved every file the expected way.
double sync_pass(sdk::client& c, const fs::path& local, bool up) {
  sdk::folder_sync_options o;
  o.local = local;
  o.remote = "/";
  const auto began = clock_type::now();
  auto sync = sdk::folder_sync::open(c, o);
  if (!sync) throw std::runtime_error(sync.err().to_string());
  auto pass = (*sync)->run_once();
  const double secs = std::chrono::duration<double>(clock_type::now() - began).count();
  if (!pass) throw std::runtime_error("sync " + local.string() + ": " + pass.err().to_string());
  if (!pass->failed.empty()) {
    throw std::runtime_error("sync " + local.string() + ": " + std::to_string(pass->failed.size()) +
                             " failed, the first " + pass->failed.front().path + ": " +
                             pass->failed.front().err.to_string());
  }
  const auto moved = up ? pass->uploaded : pass->downloaded;
  if (moved != static_cast<std::size_t>(files_total)) {
    throw std::runtime_error("sync " + local.string() + " moved " + std::to_string(moved) +
                             " files, not " + std::to_string(files_total));
  }
  return secs;
}

}  // namespace

int run_smallfiles_bench(const settings& s, const server_target& t) {
  scenario_result up{"server.smallfiles.up", {}, {}, {}, {}};
  scenario_result down{"server.smallfiles.down", {}, {}, {}, {}};
  const auto root = t.work_dir / ("smallfiles-" + sdk::client::new_operation_id().substr(0, 8));
  for (int run = 0; run < s.runs; ++run) {
    const auto here = root / std::to_string(run);
    write_tree(here / "up", 3000 + static_cast<unsigned>(run));
    // A fresh user per run: the upload finds an empty space and nothing to deduplicate.
    const auto user =
        "bench-smallfiles-" + root.filename().string().substr(11) + "-" + std::to_string(run);
    const double up_s = sync_pass(*connect_as(t, user), here / "up", true);
    const double down_s = sync_pass(*connect_as(t, user), here / "down", false);
    check_same(here / "up", here / "down");
    up.ops_per_s.push_back(files_total / up_s);
    up.latencies_ms.push_back(up_s * 1000);
    down.ops_per_s.push_back(files_total / down_s);
    down.latencies_ms.push_back(down_s * 1000);
    progress(s, "  run " + std::to_string(run + 1) + ": up " + number_text(up_s) + " s (" +
                    number_text(files_total / up_s) + " files/s), down " + number_text(down_s) +
                    " s (" + number_text(files_total / down_s) + " files/s)");
  }
  // Removed only now: on ext4 without a journal, creating files soon after many were
  // deleted is slow (the allocator skips inodes deleted in the last ~30 s, reading the
  // inode table for each), which would slow every run after the first.
  fs::remove_all(root);
  for (auto* r : {&up, &down}) {
    r->extra["files"] = files_total;
    r->extra["file_bytes"] = file_bytes;
    report(s, *r);
  }
  return 0;
}

}  // namespace autosync::bench
