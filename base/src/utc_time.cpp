#include "autosync/base/utc_time.hpp"

#include <cstdio>
#include <ctime>

namespace autosync {

std::string format_utc(std::int64_t time_us) {
  // Floor division, so that -1 µs is 1969-12-31T23:59:59.999999Z.
  std::int64_t seconds = time_us / 1000000;
  std::int64_t micros = time_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%s.%06ldZ", text, static_cast<long>(micros));
  return out;
}

std::optional<std::int64_t> parse_utc(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  long fraction = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits < 6) {
        fraction = fraction * 10 + (*rest - '0');
        ++digits;
      }
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) fraction *= 10;
  }
  if (std::string(rest) != "Z") return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000 + fraction;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  const bool millis = text.size() > 2 && text.compare(text.size() - 2, 2, "ms") == 0;
  const std::size_t digits = text.size() - (millis ? 2 : 1);
  if (text.size() < 2) return std::nullopt;
  long long n = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (text[i] < '0' || text[i] > '9' || n > 1000000000) return std::nullopt;
    n = n * 10 + (text[i] - '0');
  }
  if (n <= 0) return std::nullopt;
  if (millis) return std::chrono::milliseconds(n);
  switch (text.back()) {
    case 's': return std::chrono::seconds(n);
    case 'm': return std::chrono::minutes(n);
    case 'h': return std::chrono::hours(n);
    case 'd': return std::chrono::hours(24 * n);
  }
  return std::nullopt;
}

}  // namespace autosync
