// Benchmarks against a running autosyncd, through the SDK over real RPC:
//   commit-sdk metadata-only commits from 64 concurrent SDK clients, a thread each (one
//              user each; `commit`, in commit_bench.cpp, drives them from two threads)
//   upload     a fresh 256 MiB file
//   reupload   an unchanged 1 GiB file (bytes sent)
//   delta      a 1 MiB change in the middle of a 256 MiB file (bytes sent, seconds)
// Tokens are issued with the server's HS256 secret for as many users as needed.
#include "server_bench.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "autosync/sdk/client.hpp"
#include "autosync/server/auth.hpp"

namespace autosync::bench {

namespace {

void write_random_file(const std::filesystem::path& p, std::uint64_t bytes, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  std::vector<std::uint64_t> block((1u << 20) / 8);
  for (std::uint64_t done = 0; done < bytes; done += 1u << 20) {
    for (auto& w : block) w = rng();
    out.write(reinterpret_cast<const char*>(block.data()),
              static_cast<std::streamsize>(std::min<std::uint64_t>(1u << 20, bytes - done)));
  }
}

// Flushes a file the benchmark just wrote: a user's file has long been on disk when it is
// uploaded, and its writeback would otherwise compete with the server's synced writes.
void settle_on_disk(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("cannot sync " + p.string());
  ::close(fd);
}

void overwrite_middle(const std::filesystem::path& p, std::uint64_t bytes, unsigned seed) {
  std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(bytes / 2));
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> block((1u << 20) / 8);
  for (auto& w : block) w = rng();
  f.write(reinterpret_cast<const char*>(block.data()), 1 << 20);
}

void commit_bench(const settings& s, const server_target& t) {
  constexpr int clients = 64;
  scenario_result r{"server.commit_sdk", {}, {}, {}, {}};
  const auto run_id = std::to_string(unix_now_s());
  for (int run = 0; run < s.runs; ++run) {
    latency_samples samples;
    std::atomic<std::uint64_t> done{0};
    std::atomic<bool> start{false}, stop{false};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        auto client =
            connect_as(t, "bench-" + run_id + "-" + std::to_string(run) + "-" + std::to_string(c));
        const auto plan = sdk::plan_bytes("");  // metadata only: an empty file has no chunks
        ++ready;
        while (!start) std::this_thread::yield();
        for (std::uint64_t i = 0; !stop; ++i) {
          const auto began = clock_type::now();
          auto e = client->commit("/f" + std::to_string(i), plan, 0, 0);
          if (!e) throw std::runtime_error(e.err().to_string());
          samples.add(clock_type::now() - began);
          ++done;
        }
      });
    }
    while (ready < clients) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    start = true;
    const auto began = clock_type::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double secs = std::chrono::duration<double>(clock_type::now() - began).count();
    r.ops_per_s.push_back(static_cast<double>(done) / secs);
    auto l = samples.take();
    r.latencies_ms.insert(r.latencies_ms.end(), l.begin(), l.end());
    progress(s, "  run " + std::to_string(run + 1) + ": " +
                    number_text(static_cast<double>(done) / secs) + " commits/s");
  }
  report(s, r);
}

// Puts `file` as `remote` and reports MiB/s of the file's size, and what was sent.
void put_bench(const settings& s, const server_target& t, const std::string& name,
               std::uint64_t bytes, bool change_between) {
  scenario_result r{name, {}, {}, {}, {}};
  auto client = connect_as(t, "bench-" + name + "-" + std::to_string(unix_now_s()));
  const auto file = t.work_dir / (name + ".bin");
  std::vector<double> sent_mib;
  std::vector<double> client_ms, server_ms;  // CPU per MiB of the file, one per run
  for (int run = 0; run < s.runs; ++run) {
    const auto remote = "/" + name + std::to_string(run);
    write_random_file(file, bytes, 1000 + run);
    if (name != "server.upload") {  // the first put is the setup, not measured
      if (auto first = client->put_file(file, remote); !first) throw std::runtime_error(first.err().to_string());
      if (change_between) overwrite_middle(file, bytes, 2000 + run);
    }
    settle_on_disk(file);
    sdk::transfer_stats stats;
    sdk::put_options o;
    o.stats = &stats;
    const auto began = clock_type::now();
    const double own_before = own_cpu_seconds();
    const auto server_before = cpu_seconds_of(t.server_pid);
    auto put = client->put_file(file, remote, o);
    if (!put) throw std::runtime_error(put.err().to_string());
    const double secs = std::chrono::duration<double>(clock_type::now() - began).count();
    const double mib = static_cast<double>(bytes) / (1 << 20);
    client_ms.push_back((own_cpu_seconds() - own_before) * 1e3 / mib);
    if (const auto server_after = cpu_seconds_of(t.server_pid); server_before && server_after) {
      server_ms.push_back((*server_after - *server_before) * 1e3 / mib);
    }
    r.ops_per_s.push_back(1.0 / secs);
    r.mib_per_s.push_back(static_cast<double>(bytes) / secs / (1 << 20));
    r.latencies_ms.push_back(secs * 1000);
    sent_mib.push_back(static_cast<double>(stats.bytes_sent) / (1 << 20));
    progress(s, "  run " + std::to_string(run + 1) + ": " + number_text(secs) + " s, sent " +
                    number_text(sent_mib.back()) + " MiB");
  }
  std::filesystem::remove(file);
  r.extra["sent_mib"] = median(sent_mib);
  if (!client_ms.empty()) r.extra["client_cpu_ms_per_mib"] = median(client_ms);
  if (!server_ms.empty()) r.extra["server_cpu_ms_per_mib"] = median(server_ms);
  r.extra["file_mib"] = static_cast<double>(bytes) / (1 << 20);
  report(s, r);
}

}  // namespace

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string bench_token(const server_target& t, const std::string& user) {
  auto policy = server::policy_from_secret_file(t.secret_file);
  if (!policy) throw std::runtime_error(policy.err().to_string());
  server::token_request r;
  r.user = user;
  r.ttl = std::chrono::hours(1);
  auto token = server::issue_token(server::token_algorithm::hs256, policy->key, r, unix_now_s());
  if (!token) throw std::runtime_error(token.err().to_string());
  return *token;
}

std::unique_ptr<sdk::client> connect_as(const server_target& t, const std::string& user) {
  sdk::connect_options o;
  o.server = t.address;
  o.token = bench_token(t, user);
  o.device_id = "bench";
  auto c = sdk::client::connect(o);
  if (!c) throw std::runtime_error(c.err().to_string());
  return std::move(c).value();
}

int run_server_bench(const settings& s, const std::string& scenario, const server_target& t) {
  std::filesystem::create_directories(t.work_dir);
  if (scenario == "commit") run_commit_bench(s, t);
  if (scenario == "commit-sdk") commit_bench(s, t);
  if (scenario == "upload") put_bench(s, t, "server.upload", 256ull << 20, false);
  if (scenario == "reupload") put_bench(s, t, "server.reupload", 1ull << 30, false);
  if (scenario == "delta") put_bench(s, t, "server.delta", 256ull << 20, true);
  return 0;
}

}  // namespace autosync::bench
