#pragma once

#include <string>

#include "measure.hpp"

namespace autosync::bench {

// Scenarios of the domain over the journal, each in `dir` (a fresh temp folder when empty).
int run_replay_bench(const settings& s, const std::string& dir);
int run_activate_bench(const settings& s, const std::string& dir);

}  // namespace autosync::bench
