// autosync-bench actors: commits through the user actors.
//   actors.commits: metadata-only commits (empty files) for 10,000 users, 256 in flight;
//   actors.memory:  peak memory touching many distinct users under the live-actor cap.
#include <sys/resource.h>

#include <caf/all.hpp>

#include <condition_variable>
#include <mutex>

#include "actors_bench.hpp"
#include "autosync/actors/user_directory.hpp"
#include "autosync/journal/journal.hpp"

namespace autosync::bench {

namespace {

// At most `size` commands outstanding; the directory's callbacks (on actor threads) release.
class command_window {
public:
  explicit command_window(std::size_t size) : free_(size), size_(size) {}
  void acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void release(bool ok) {
    std::lock_guard lock(mutex_);
    if (!ok) ++errors_;
    if (free_++ == 0 || free_ == size_) cv_.notify_all();
  }
  std::size_t drain() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return free_ == size_; });
    return errors_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t free_, size_, errors_ = 0;
};

actors::command empty_file(const std::string& path, const std::string& op) {
  actors::command cmd;
  cmd.device_id = "bench";
  cmd.operation_id = op;
  cmd.body = actors::commit_file{path, 0, {}};
  return cmd;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int run_actors_bench(const settings& s, const std::string& dir_option, std::size_t touched) {
  const bench_root root(dir_option);
  caf::actor_system_config config;
  actors::configure_scheduler(config);  // as autosyncd runs them
  caf::actor_system system{config};
  constexpr std::size_t users = 10000;
  constexpr std::size_t in_flight = 256;

  if (s.wants("actors.commits")) {
    auto j = open_bench_journal(root.path() / "commits");
    actors::journal_event_store store(*j);
    actors::user_directory directory(system, store, actors::directory_options{});
    scenario_result result;
    result.scenario = "actors.commits";
    latency_samples samples;
    std::uint64_t n = 0;
    for (int run = 0; run <= s.runs; ++run) {
      const bool warmup = run == 0;
      command_window window(in_flight);
      const auto start = clock_type::now();
      const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                        std::chrono::duration<double>(warmup ? 1.0 : s.seconds));
      std::uint64_t sent = 0;
      while (clock_type::now() < deadline) {
        window.acquire();
        const auto started = clock_type::now();
        ++n;
        directory.send("user" + std::to_string(n % users),
                       empty_file("/f" + std::to_string(n), "op-" + std::to_string(n)),
                       [&window, &samples, started](actors::command_outcome out) {
                         samples.add(clock_type::now() - started);
                         window.release(out.applied.has_value());
                       });
        ++sent;
      }
      const std::size_t errors = window.drain();
      const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
      auto latencies = samples.take();
      if (errors != 0) throw std::runtime_error(std::to_string(errors) + " commits failed");
      if (warmup) continue;
      result.ops_per_s.push_back(static_cast<double>(sent) / elapsed);
      result.latencies_ms.insert(result.latencies_ms.end(), latencies.begin(), latencies.end());
      progress(s, "actors.commits run " + std::to_string(run) + ": " +
                      std::to_string(static_cast<long>(result.ops_per_s.back())) + " commits/s");
    }
    result.extra["users"] = users;
    result.extra["live_users"] = static_cast<double>(directory.live_users());
    report(s, result);
  }

  if (s.wants("actors.memory")) {
    auto j = open_bench_journal(root.path() / "memory");
    actors::journal_event_store store(*j);
    actors::directory_options options;  // the default live-actor cap
    actors::user_directory directory(system, store, options);
    command_window window(in_flight);
    const auto start = clock_type::now();
    for (std::size_t u = 0; u < touched; ++u) {
      window.acquire();
      directory.send("touched" + std::to_string(u), empty_file("/f", "op"),
                     [&window](actors::command_outcome out) { window.release(out.applied.has_value()); });
      if (u % 50000 == 0) progress(s, "actors.memory: " + std::to_string(u) + " users touched");
    }
    if (const auto errors = window.drain(); errors != 0) {
      throw std::runtime_error(std::to_string(errors) + " commits failed");
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    scenario_result result;
    result.scenario = "actors.memory";
    result.ops_per_s.push_back(static_cast<double>(touched) / elapsed);
    result.extra["users_touched"] = static_cast<double>(touched);
    result.extra["live_users_max"] = static_cast<double>(options.live_users_max);
    result.extra["live_users"] = static_cast<double>(directory.live_users());
    result.extra["peak_rss_mib"] = peak_rss_mib();
    report(s, result);
  }
  return 0;
}

}  // namespace autosync::bench
