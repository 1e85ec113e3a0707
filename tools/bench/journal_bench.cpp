// autosync-bench journal: synced appends of ~200-byte events with 1, 16 and 256 appends in
// flight, and 1 MiB encrypted chunk puts. Every figure counts only acknowledged (fsynced)
// operations.
#include <atomic>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <random>
#include <thread>

#include "autosync/journal/journal.hpp"
#include "journal_bench.hpp"

namespace autosync::bench {

namespace {

namespace fs = std::filesystem;

// Bounds the operations in flight, like a real client with a window.
class window {
public:
  explicit window(int size) : free_(size), size_(size) {}
  void acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return free_ > 0; });
    --free_;
  }
  // Called on the journal's writer thread for every completion: wake the producers only
  // when the window reopens, not once per operation (a wake-up is a system call).
  void release() {
    std::lock_guard lock(mutex_);
    if (free_++ == 0 || free_ == size_) cv_.notify_all();
  }
  void drain() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return free_ == size_; });
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_;
  const int size_;
};

// A file commit whose canonical encoding is about 200 bytes, like a real small-file commit.
std::unique_ptr<capnp::MallocMessageBuilder> bench_event(std::uint64_t n) {
  auto m = std::make_unique<capnp::MallocMessageBuilder>(64);
  auto e = m->initRoot<schema::Event>();
  e.setTimestampUs(1700000000000000 + static_cast<std::int64_t>(n));
  e.setDeviceId("bench-device");
  e.setOperationId("op-" + std::to_string(n));
  auto c = e.initFileCommitted();
  c.setNodeId(n);
  c.setPath("/bench/" + std::to_string(n));
  auto content = c.initContent();
  auto hash = sha256(std::to_string(n));
  content.setSize(4096);
  content.setContentHash({hash.bytes.data(), hash.bytes.size()});
  return m;
}

std::size_t canonical_size(std::uint64_t n) {
  auto m = bench_event(n);
  auto e = m->getRoot<schema::Event>();
  e.setSeq(n);
  sha256_digest zero;
  e.setPrevHash({zero.bytes.data(), zero.bytes.size()});
  return capnp::canonicalize(e.asReader()).asBytes().size();
}

struct run_outcome {
  double ops_per_s = 0;
  double mib_per_s = 0;
  std::uint64_t errors = 0;
};

// Runs `issue(index, done)` from `producers` threads for `seconds`, at most `in_flight`
// outstanding; `done` must be called once per issued operation.
template <class Issue>
run_outcome drive(int in_flight, double seconds, std::size_t bytes_per_op, Issue issue) {
  window w(in_flight);
  std::atomic<std::uint64_t> completed{0}, errors{0}, next{0};
  const int producers = in_flight == 1 ? 1 : 2;
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&] {
      while (clock_type::now() < deadline) {
        w.acquire();
        issue(next++, [&](bool ok) {
          if (!ok) ++errors;
          ++completed;
          w.release();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  w.drain();
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  run_outcome out;
  out.ops_per_s = static_cast<double>(completed.load() - errors.load()) / elapsed;
  out.mib_per_s = out.ops_per_s * static_cast<double>(bytes_per_op) / (1 << 20);
  out.errors = errors.load();
  return out;
}

// `in_flight` appends outstanding, each of `events_per_append` events of one user (written
// atomically). ops_per_s counts events.
scenario_result appends(const settings& s, const fs::path& root, int in_flight,
                        int events_per_append) {
  scenario_result result;
  result.scenario = events_per_append == 1
                        ? "journal.append.inflight_" + std::to_string(in_flight)
                        : "journal.append.batch_" + std::to_string(events_per_append) +
                              ".inflight_" + std::to_string(in_flight);
  result.extra["event_bytes"] = static_cast<double>(canonical_size(123456));
  constexpr std::uint64_t users = 1000;  // a node serves many users at once
  std::vector<double> batch_sizes;
  for (int run = 0; run <= s.runs; ++run) {
    const bool warmup = run == 0;
    const fs::path dir = root / (result.scenario + "." + std::to_string(run));
    auto j = open_bench_journal(dir);
    latency_samples samples;
    auto outcome = drive(in_flight, warmup ? 0.5 : s.seconds, 200, [&](std::uint64_t n, auto done) {
      journal::append_request r;
      r.user = "user" + std::to_string(n % users);
      for (int e = 0; e < events_per_append; ++e) r.events.push_back(bench_event(n));
      const auto started = clock_type::now();
      j->append(std::move(r), [&samples, started, done](autosync::result<journal::appended> a) {
        samples.add(clock_type::now() - started);
        done(a.has_value());
      });
    });
    const auto stats = j->stats();
    j.reset();
    fs::remove_all(dir);
    if (outcome.errors != 0) throw std::runtime_error("appends failed during the benchmark");
    if (warmup) continue;
    batch_sizes.push_back(static_cast<double>(stats.items) * events_per_append /
                          static_cast<double>(stats.syncs));
    auto latencies = samples.take();
    const double events_per_s = outcome.ops_per_s * events_per_append;
    progress(s, result.scenario + " run " + std::to_string(run) + ": " +
                    std::to_string(static_cast<long>(events_per_s)) + " events/s, p99 " +
                    std::to_string(percentile(latencies, 99)) + " ms");
    result.ops_per_s.push_back(events_per_s);
    result.latencies_ms.insert(result.latencies_ms.end(), latencies.begin(), latencies.end());
  }
  result.extra["events_per_fsync"] = median(batch_sizes);
  return result;
}

scenario_result chunk_puts(const settings& s, const fs::path& root) {
  scenario_result result;
  result.scenario = "journal.chunk_put.1mib";
  constexpr int in_flight = 8;  // like an upload pipelining 8 MiB
  constexpr std::size_t chunk_bytes = 1 << 20;
  // Distinct random (incompressible) chunks, hashed before the clock starts: the client
  // names a chunk by its hash, the server checks it. Dedup is per user, so a new user per
  // round makes every put a real write.
  constexpr std::size_t pool_size = 64;
  std::vector<std::string> pool(pool_size, std::string(chunk_bytes, '\0'));
  std::vector<sha256_digest> ids;
  std::mt19937_64 rng(42);
  for (auto& chunk : pool) {
    for (std::size_t i = 0; i < chunk.size(); i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(chunk.data() + i, &v, 8);
    }
    ids.push_back(sha256(chunk));
  }
  for (int run = 0; run <= s.runs; ++run) {
    const bool warmup = run == 0;
    const fs::path dir = root / (result.scenario + "." + std::to_string(run));
    auto j = open_bench_journal(dir);
    latency_samples samples;
    auto outcome = drive(in_flight, warmup ? 0.5 : s.seconds, chunk_bytes,
                         [&](std::uint64_t n, auto done) {
                           const auto i = n % pool_size;
                           const auto started = clock_type::now();
                           j->put_chunk("user" + std::to_string(n / pool_size), ids[i], pool[i],
                                        [&samples, started, done](autosync::result<bool> r) {
                                          samples.add(clock_type::now() - started);
                                          done(r.has_value() && *r);
                                        });
                         });
    j.reset();
    fs::remove_all(dir);
    if (outcome.errors != 0) throw std::runtime_error("chunk puts failed during the benchmark");
    if (warmup) continue;
    auto latencies = samples.take();
    progress(s, result.scenario + " run " + std::to_string(run) + ": " +
                    std::to_string(static_cast<long>(outcome.mib_per_s)) + " MiB/s");
    result.ops_per_s.push_back(outcome.ops_per_s);
    result.mib_per_s.push_back(outcome.mib_per_s);
    result.latencies_ms.insert(result.latencies_ms.end(), latencies.begin(), latencies.end());
  }
  return result;
}

}  // namespace

int run_journal_bench(const settings& s, const std::string& dir_option) {
  const bench_root where(dir_option);
  const fs::path& root = where.path();
  progress(s, "journal benchmark in " + root.string() + " (" + std::to_string(s.runs) + " runs of " +
                  number_text(s.seconds) + " s per scenario, median reported)");
  for (int in_flight : {1, 16, 256}) {
    if (s.wants("journal.append.inflight_" + std::to_string(in_flight)))
      report(s, appends(s, root, in_flight, 1));
  }
  // The same batch size as raw RocksDB's `db_bench --batch_size=256`, so the two compare:
  // two appends of 256 events in flight, so the next batch is ready when one is synced.
  if (s.wants("journal.append.batch_256.inflight_2")) report(s, appends(s, root, 2, 256));
  if (s.wants("journal.append.batch_256.inflight_4")) report(s, appends(s, root, 4, 256));
  if (s.wants("journal.chunk_put.1mib")) report(s, chunk_puts(s, root));
  return 0;
}

}  // namespace autosync::bench
