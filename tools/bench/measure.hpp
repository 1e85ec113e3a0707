// What every benchmark scenario shares: latency samples, medians, and the one JSON line
// a scenario prints: {"scenario": ..., "ops_per_s": ..., "p50_ms": ..., "p99_ms": ..., "mib_per_s": ...}
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace autosync::bench {

using clock_type = std::chrono::steady_clock;

struct settings {
  bool json_only = false;     // print nothing but the final JSON lines
  double seconds = 3.0;       // measured time of one run of a scenario
  int runs = 3;               // runs per scenario; the median run is reported
  std::string only;           // run only scenarios whose name contains this
  bool wants(const std::string& scenario) const {
    return only.empty() || scenario.find(only) != std::string::npos;
  }
};

// Latencies in milliseconds, safe to add from any thread.
class latency_samples {
public:
  void add(clock_type::duration d);
  std::vector<double> take();

private:
  std::mutex mutex_;
  std::vector<double> samples_;
};

double percentile(std::vector<double> values, double p);
double median(std::vector<double> values);

struct scenario_result {
  std::string scenario;
  std::vector<double> ops_per_s;      // one per run
  std::vector<double> mib_per_s;      // one per run, empty when bytes do not apply
  std::vector<double> latencies_ms;   // pooled over every run
  std::map<std::string, double> extra;  // more fields for the JSON line
};

// Prints the scenario's JSON line (and, unless json_only, nothing else: progress is printed
// by the scenarios themselves through progress()).
void report(const settings& s, const scenario_result& r);
void progress(const settings& s, const std::string& line);
// A number as people write it: "2", "0.5", "1234567" (no trailing zeros).
std::string number_text(double v);

// CPU seconds (user and system, every thread) used so far by this process, or by process
// `pid` from /proc (nothing when it cannot be read: another machine's, or gone). On a VM
// whose speed swings from hour to hour, CPU per operation is the steadier figure.
double own_cpu_seconds();
std::optional<double> cpu_seconds_of(int pid);

// Where a scenario keeps its data: the --dir given, or a fresh temporary folder that
// removes itself.
class bench_root {
public:
  explicit bench_root(const std::string& dir_option);
  ~bench_root();
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
  bool owned_ = false;
};

}  // namespace autosync::bench

namespace autosync::journal {
class journal;
}

namespace autosync::bench {

// A journal for benchmarks in `dir`, a folder of the benchmark's own, emptied first so that
// runs with the same --dir start alike (a fixed master key: the data is thrown away).
std::unique_ptr<journal::journal> open_bench_journal(const std::filesystem::path& dir);

}  // namespace autosync::bench
