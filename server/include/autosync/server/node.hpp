// One AutoSync node: the journal, the user actors, and the client RPC gateway in front of
// them. `autosyncd` is a thin main() over this; tests start nodes in-process with it too.
//
// Threads: the RPC gateway runs a Cap'n Proto (kj) event loop on a thread of its own and
// never blocks it; commands reach the user actors (CAF) and their answers come back through
// cross-thread promises; blocking reads (chunks, past states, the change feed) run on a
// small pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "autosync/base/error.hpp"
#include "autosync/server/auth.hpp"

namespace autosync::server {

struct rpc_limits {
  // A chunk is at most 4 MiB; with headers a message stays well under this. Larger messages
  // are refused before they are read whole.
  std::size_t message_bytes_max = 8u << 20;
  // Calls a connection may have in flight; beyond it calls fail `overloaded` at once.
  std::size_t calls_in_flight_max = 256;
  // Bytes of call messages (parameters included) a connection may have unanswered before
  // the server stops reading from it. (Cap'n Proto's flow limit counts words: given this
  // number as words, it allowed eight times as many bytes.)
  std::size_t flow_bytes_max = 64u << 20;
  // Per-user token bucket: sustained requests per second, and the burst allowed.
  double user_requests_per_s = 20000;
  double user_burst = 40000;
  // A call not answered within this fails `unavailable` (its effect may still happen: a
  // retry with the same operation id is safe).
  std::chrono::milliseconds deadline{30000};
};

struct node_options {
  std::filesystem::path data_dir = "autosync-data";
  std::string listen = "127.0.0.1:7400";  // HOST:PORT; port 0 picks a free one
  std::filesystem::path master_key_file;   // empty: DATA_DIR/master.key (created if missing)
  token_policy tokens;
  std::optional<std::filesystem::path> tls_cert_file;  // both set: TLS 1.2+ only
  std::optional<std::filesystem::path> tls_key_file;
  std::filesystem::path audit_file;        // empty: DATA_DIR/audit.log
  rpc_limits limits;
  std::chrono::milliseconds idle_user_timeout{60000};
  std::size_t live_users_max = 10000;
  std::uint64_t snapshot_every = 1000;
  std::size_t blocking_threads = 4;
  // Threads of the actor scheduler; 0: half the cores, at least one. The RPC loop, the
  // journal's writer and the blocking pools have threads of their own, and the scheduler's
  // one shared queue is contended by every thread added (see docs/BENCHMARKS.md).
  std::size_t actor_threads = 0;
  // Deleted files, and revisions replaced by newer ones, are reclaimed once older than this
  // (a file's newest revision always stays); until then they can be undeleted and
  // restored. Zero keeps everything forever. Each active user is checked about every
  // retention / 24, at least every hour, when they next make a call; every user, calling
  // or not, by a sweep (the first within an hour of the start, then a day after the last
  // one ended, or retention / 24 when that is shorter). The chunks no revision refers to
  // any more go with each check.
  std::chrono::seconds retention = std::chrono::hours(24 * 30);
  // How long the sweep waits between its visits of every user: nothing for a day (or
  // retention / 24 when that is shorter); zero for no sweep.
  std::optional<std::chrono::milliseconds> retention_sweep;
};

class node {
public:
  // Opens the journal, starts the actors and the gateway; returns once it listens.
  static result<std::unique_ptr<node>> start(node_options options);
  // Stops accepting, ends connections, lets every user actor finish and snapshot, closes
  // the journal.
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // The address it listens on, with the port really bound ("127.0.0.1:7400").
  const std::string& address() const noexcept;
  std::uint16_t port() const noexcept;

  struct impl;

private:
  explicit node(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace autosync::server
