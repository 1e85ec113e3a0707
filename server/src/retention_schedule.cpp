#include "retention_schedule.hpp"

#include <algorithm>

namespace autosync::server {

retention_schedule::retention_schedule(std::chrono::seconds retention)
    : retention_us_(std::max<std::int64_t>(0, retention.count()) * 1000000),
      every_us_(std::clamp<std::int64_t>(retention_us_ / 24, 1000000, std::int64_t{3600} * 1000000)) {}

std::optional<std::int64_t> retention_schedule::due(const std::string& user, std::int64_t now_us) {
  if (retention_us_ == 0) return std::nullopt;
  if (auto it = next_us_.find(user); it != next_us_.end()) {
    if (now_us < it->second) return std::nullopt;
    it->second = now_us + every_us_;
    return now_us - retention_us_;
  }
  // A full map is cleared, not searched: one pass per users_max new users, never one per
  // call.
  if (next_us_.size() >= users_max) next_us_.clear();
  next_us_.emplace(user, now_us + every_us_);
  return now_us - retention_us_;
}

}  // namespace autosync::server
