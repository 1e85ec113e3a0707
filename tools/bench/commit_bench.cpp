// `commit`: metadata-only commits from 64 concurrent clients, each its own connection,
// session and user with one commit in flight at a time. Like pgbench's clients, they are
// driven by a few event-loop threads (2 by default) rather than a thread each, so the
// measurement spends the shared cores on the server, not on the benchmark's own context
// switches. `commit-sdk` is the same through the SDK's synchronous client, a thread each.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <atomic>
#include <thread>

#include "autosync/base/sha256.hpp"
#include "autosync/schema/buffered_stream.hpp"
#include "autosync/schema/sync.capnp.h"
#include "server_bench.hpp"

namespace autosync::bench {

namespace {

namespace rpc = schema::rpc;

// One client: its connection and session, and the commit loop it runs.
struct rpc_client {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  rpc::Session::Client session = nullptr;
  std::uint64_t next = 0;
};

struct shared_run {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  latency_samples samples;
  const std::string empty_hash = [] {
    const auto h = sha256("");
    return std::string(reinterpret_cast<const char*>(h.bytes.data()), h.bytes.size());
  }();
};

kj::Promise<void> commit_loop(rpc_client& c, shared_run& run, const std::string& prefix) {
  if (run.stop.load(std::memory_order_relaxed)) return kj::READY_NOW;
  auto request = c.session.commitRequest(capnp::MessageSize{32, 0});  // not 8 KiB zeroed
  const auto n = c.next++;
  request.setPath("/f" + std::to_string(n));
  request.setSize(0);
  request.setHash(kj::arrayPtr(reinterpret_cast<const kj::byte*>(run.empty_hash.data()),
                               run.empty_hash.size()));
  request.setMtimeUs(0);
  request.initChunks(0);
  request.setOperationId(prefix + std::to_string(n));
  const auto began = clock_type::now();
  return request.send().then([&c, &run, &prefix, began](auto reply) -> kj::Promise<void> {
    if (reply.hasFailure()) {
      throw std::runtime_error("commit failed: " + std::string(reply.getFailure().getMessage().cStr()));
    }
    run.samples.add(clock_type::now() - began);
    run.done.fetch_add(1, std::memory_order_relaxed);
    return commit_loop(c, run, prefix);
  });
}

void event_loop_commit_bench(const settings& s, const server_target& t) {
  const int clients = t.clients;
  const int threads = 2;
  scenario_result r{"server.commit", {}, {}, {}, {}};
  const auto run_id = std::to_string(unix_now_s());
  std::vector<double> client_us, server_us;  // CPU per commit, one per run
  for (int run_no = 0; run_no < s.runs; ++run_no) {
    shared_run run;
    std::atomic<int> ready{0};
    std::atomic<bool> start{false};
    std::vector<std::thread> pool;
    std::vector<std::string> errors(threads);
    for (int th = 0; th < threads; ++th) {
      pool.emplace_back([&, th] {
        try {
          auto io = kj::setupAsyncIo();
          auto address = io.provider->getNetwork().parseAddress(t.address).wait(io.waitScope);
          std::vector<kj::Own<rpc_client>> mine;
          std::vector<std::string> prefixes;
          for (int c = th; c < clients; c += threads) {
            auto client = kj::heap<rpc_client>();
            client->stream =
                schema::buffered(address->connect().wait(io.waitScope), /*gather_writes=*/true);
            client->rpc = kj::heap<capnp::TwoPartyClient>(*client->stream);
            auto login = client->rpc->bootstrap().castAs<rpc::Gateway>().loginRequest();
            const auto user = "bench-" + run_id + "-" + std::to_string(run_no) + "-" + std::to_string(c);
            login.setToken(bench_token(t, user));
            login.setDeviceId("bench");
            login.setProtocolVersion(rpc::PROTOCOL_VERSION);
            auto reply = login.send().wait(io.waitScope);
            if (reply.hasFailure()) throw std::runtime_error(reply.getFailure().getMessage().cStr());
            client->session = reply.getSession();
            mine.push_back(kj::mv(client));
            prefixes.push_back("op-" + user + "-");
          }
          ++ready;
          while (!start) std::this_thread::yield();
          kj::Vector<kj::Promise<void>> loops;
          for (std::size_t i = 0; i < mine.size(); ++i) loops.add(commit_loop(*mine[i], run, prefixes[i]));
          kj::joinPromises(loops.releaseAsArray()).wait(io.waitScope);
        } catch (const std::exception& e) {
          errors[th] = e.what();
          ++ready;
        } catch (const kj::Exception& e) {
          errors[th] = e.getDescription().cStr();
          ++ready;
        }
      });
    }
    while (ready < threads) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    start = true;
    const auto began = clock_type::now();
    const double own_before = own_cpu_seconds();
    const auto server_before = cpu_seconds_of(t.server_pid);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
    const auto counted = run.done.load();
    const double own_used = own_cpu_seconds() - own_before;
    const auto server_after = cpu_seconds_of(t.server_pid);
    const double secs = std::chrono::duration<double>(clock_type::now() - began).count();
    if (counted > 0) {
      client_us.push_back(own_used * 1e6 / static_cast<double>(counted));
      if (server_before && server_after) {
        server_us.push_back((*server_after - *server_before) * 1e6 / static_cast<double>(counted));
      }
    }
    run.stop = true;
    for (auto& th : pool) th.join();
    for (const auto& e : errors) {
      if (!e.empty()) throw std::runtime_error(e);
    }
    r.ops_per_s.push_back(static_cast<double>(counted) / secs);
    auto l = run.samples.take();
    r.latencies_ms.insert(r.latencies_ms.end(), l.begin(), l.end());
    progress(s, "  run " + std::to_string(run_no + 1) + ": " +
                    number_text(static_cast<double>(counted) / secs) + " commits/s");
  }
  r.extra["clients"] = clients;
  r.extra["client_threads"] = threads;
  if (!client_us.empty()) r.extra["client_cpu_us_per_op"] = median(client_us);
  if (!server_us.empty()) r.extra["server_cpu_us_per_op"] = median(server_us);
  report(s, r);
}

}  // namespace

void run_commit_bench(const settings& s, const server_target& t) { event_loop_commit_bench(s, t); }

}  // namespace autosync::bench
