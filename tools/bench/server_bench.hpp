// Benchmarks against a running autosyncd (see server_bench.cpp).
#pragma once

#include <filesystem>
#include <string>

#include "measure.hpp"

namespace autosync::bench {

struct server_target {
  std::string address;                 // HOST:PORT
  std::filesystem::path secret_file;   // the server's --jwt-secret-file
  std::filesystem::path work_dir;      // where test files are written
};

// scenario: commit, upload, reupload, delta.
int run_server_bench(const settings& s, const std::string& scenario, const server_target& t);

}  // namespace autosync::bench
