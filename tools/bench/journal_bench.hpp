#pragma once

#include <string>

#include "measure.hpp"

namespace autosync::bench {

// Runs every journal scenario in `dir` (a fresh temporary folder when empty).
int run_journal_bench(const settings& s, const std::string& dir);

}  // namespace autosync::bench
