// Rebuilding a user's state at a point: snapshot, then the tail.
#include <ctime>

#include "replay.hpp"

#include "autosync/actors/replay.hpp"

namespace autosync::replay {

std::optional<std::int64_t> parse_iso8601(const std::string& text) {
  std::tm tm{};
  int fraction_digits = 0;
  long fraction = 0;
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  if (*rest == '.') {
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (fraction_digits < 6) {
        fraction = fraction * 10 + (*rest - '0');
        ++fraction_digits;
      }
    }
    for (; fraction_digits < 6; ++fraction_digits) fraction *= 10;
  }
  if (std::string(rest) != "Z") return std::nullopt;  // UTC only: no guessing of zones
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000 + fraction;
}

std::string format_iso8601(std::int64_t time_us) {
  const std::time_t seconds = static_cast<std::time_t>(time_us / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char micros[16];
  std::snprintf(micros, sizeof micros, ".%06ldZ", static_cast<long>(time_us % 1000000));
  return std::string(text) + micros;
}

result<actors::namespace_state> state_at(journal::journal& j, const std::string& user,
                                         const point& at) {
  actors::journal_event_store store(j);  // opened read-only: the tool never writes
  std::uint64_t target = at.seq.value_or(UINT64_MAX);
  if (at.time_us) {
    auto seq = actors::seq_at_time(store, user, *at.time_us);
    if (!seq) return std::move(seq).err();
    target = std::min(target, *seq);
  }
  return actors::state_at(store, user, target);
}

}  // namespace autosync::replay
