#include "measure.hpp"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "autosync/journal/journal.hpp"

namespace autosync::bench {

void latency_samples::add(clock_type::duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  std::lock_guard lock(mutex_);
  samples_.push_back(ms);
}

std::vector<double> latency_samples::take() {
  std::lock_guard lock(mutex_);
  return std::move(samples_);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * values.size()));
  const auto index = std::min(values.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

double median(std::vector<double> values) { return percentile(std::move(values), 50); }

namespace {

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, v >= 100 ? "%.0f" : "%.3f", v);
  return text;
}

}  // namespace

void report(const settings& s, const scenario_result& r) {
  std::string line = "{\"scenario\": \"" + r.scenario + "\"";
  line += ", \"ops_per_s\": " + number(median(r.ops_per_s));
  if (!r.latencies_ms.empty()) {
    line += ", \"p50_ms\": " + number(percentile(r.latencies_ms, 50));
    line += ", \"p99_ms\": " + number(percentile(r.latencies_ms, 99));
  }
  if (!r.mib_per_s.empty()) line += ", \"mib_per_s\": " + number(median(r.mib_per_s));
  line += ", \"runs\": " + std::to_string(r.ops_per_s.size());
  for (const auto& [key, value] : r.extra) line += ", \"" + key + "\": " + number(value);
  line += "}";
  (void)s;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

bench_root::bench_root(const std::string& dir_option) {
  if (!dir_option.empty()) {
    path_ = dir_option;
    std::filesystem::create_directories(path_);
    return;
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "autosync-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot create a temp folder");
  path_ = pattern;
  owned_ = true;
}

bench_root::~bench_root() {
  std::error_code ec;
  if (owned_) std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<journal::journal> open_bench_journal(const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  journal::options o;
  o.dir = dir;
  o.master_key.bytes.fill(0x5a);
  auto j = journal::journal::open(o);
  if (!j) throw std::runtime_error(j.err().to_string());
  return std::move(j).value();
}

double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

std::optional<double> cpu_seconds_of(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: the fields counted from after its closing ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string number_text(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void progress(const settings& s, const std::string& line) {
  if (s.json_only) return;
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace autosync::bench
