// The small-files sync benchmark against a running autosyncd (see smallfiles_bench.cpp).
#pragma once

#include "measure.hpp"
#include "server_bench.hpp"

namespace autosync::bench {

// server.smallfiles.up and .down: files/s syncing 10,000 files of 4 KiB to an empty user
// and from it into an empty folder.
int run_smallfiles_bench(const settings& s, const server_target& t);

}  // namespace autosync::bench
