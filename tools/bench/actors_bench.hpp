#pragma once

#include <cstddef>
#include <string>

#include "measure.hpp"

namespace autosync::bench {

// Scenarios of the domain over the journal, each in `dir` (a fresh temp folder when empty).
int run_replay_bench(const settings& s, const std::string& dir);
int run_activate_bench(const settings& s, const std::string& dir);
// Commits through the user actors, and memory with `touched` distinct users.
int run_actors_bench(const settings& s, const std::string& dir, std::size_t touched);
// Content-defined chunking of a 256 MiB file, with and without hashing the chunks.
int run_chunker_bench(const settings& s);

}  // namespace autosync::bench
