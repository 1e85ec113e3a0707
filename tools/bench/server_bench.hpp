// Benchmarks against a running autosyncd (see server_bench.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "measure.hpp"

namespace autosync::sdk {
class client;
}

namespace autosync::bench {

struct server_target {
  std::string address;                 // HOST:PORT
  std::filesystem::path secret_file;   // the server's --jwt-secret-file
  std::filesystem::path work_dir;      // where test files are written
  int clients = 64;                    // concurrent clients of `commit`
  int server_pid = 0;                  // autosyncd's, when on this machine: its CPU is reported
};

// scenario: commit, commit-sdk, upload, reupload, delta.
int run_server_bench(const settings& s, const std::string& scenario, const server_target& t);

// `commit`: 64 clients driven by two event-loop threads over raw RPC (commit_bench.cpp).
void run_commit_bench(const settings& s, const server_target& t);

// A token for `user`, issued with the server's secret (valid for an hour).
std::string bench_token(const server_target& t, const std::string& user);
// Seconds since 1970: names runs apart, so each run starts with fresh users.
std::int64_t unix_now_s();

// A client logged in as `user` (any name: a fresh one is a fresh, empty user), with a token
// issued with the server's secret. Throws when the server cannot be reached.
std::unique_ptr<sdk::client> connect_as(const server_target& t, const std::string& user);

}  // namespace autosync::bench
