// autosync-bench chunker: content-defined chunking (and chunking plus the SHA-256 that
// names each chunk) of a 256 MiB file, as an upload does before sending anything.
#include <cstring>
#include <random>

#include "actors_bench.hpp"
#include "autosync/base/sha256.hpp"
#include "autosync/sdk/chunker.hpp"

namespace autosync::bench {

int run_chunker_bench(const settings& s) {
  constexpr std::size_t file_bytes = 256u << 20;
  std::string data(file_bytes, '\0');
  std::mt19937_64 rng(11);
  for (std::size_t i = 0; i < data.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  const auto sizes = sdk::chunk_sizes::for_file(file_bytes);
  scenario_result cut, named;
  cut.scenario = "chunker.cut";
  named.scenario = "chunker.cut_and_hash";
  std::size_t chunks = 0;
  for (int run = 0; run < s.runs; ++run) {
    auto start = clock_type::now();
    const auto lengths = sdk::chunk_lengths(data, sizes);
    double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    cut.mib_per_s.push_back(file_bytes / seconds / (1 << 20));
    cut.ops_per_s.push_back(static_cast<double>(lengths.size()) / seconds);
    chunks = lengths.size();

    start = clock_type::now();
    std::size_t at = 0;
    volatile std::uint8_t sink = 0;  // keeps the hashing from being optimized away
    for (auto len : sdk::chunk_lengths(data, sizes)) {
      sink = sink ^ sha256(std::string_view(data).substr(at, len)).bytes[0];
      at += len;
    }
    seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    named.mib_per_s.push_back(file_bytes / seconds / (1 << 20));
    named.ops_per_s.push_back(static_cast<double>(chunks) / seconds);
  }
  cut.extra["avg_chunk_kib"] = static_cast<double>(file_bytes) / static_cast<double>(chunks) / 1024;
  report(s, cut);
  report(s, named);
  return 0;
}

}  // namespace autosync::bench
