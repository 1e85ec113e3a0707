// When each user's retention is next due.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace autosync::server {

// Checks each user about every retention / 24 (at least every second, at most every hour)
// rather than at every call: a check scans the user's whole tree. Event loop thread only.
class retention_schedule {
public:
  explicit retention_schedule(std::chrono::seconds retention);
  // The cutoff (µs since 1970) to reclaim before, when `user`'s check is due at `now_us`;
  // nothing when it is not, or when retention is off (zero).
  std::optional<std::int64_t> due(const std::string& user, std::int64_t now_us);
  std::size_t users() const noexcept { return next_us_.size(); }

  // Users remembered at most: beyond it the schedule starts over, which only makes the
  // next checks come sooner.
  static constexpr std::size_t users_max = 100000;

private:
  std::int64_t retention_us_;
  std::int64_t every_us_;
  std::unordered_map<std::string, std::int64_t> next_us_;
};

}  // namespace autosync::server
