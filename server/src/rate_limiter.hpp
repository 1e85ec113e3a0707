// Per-user request budgets.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace autosync::server {

// A token bucket per user, refilled by the clock passed in. Event loop thread only.
class rate_limiter {
public:
  rate_limiter(double per_s, double burst) : per_s_(per_s), burst_(burst) {}
  // 0 when the request may go now; else how long to wait (ms) before one would.
  std::uint32_t admit(const std::string& user, std::int64_t now_us);
  std::size_t users() const noexcept { return buckets_.size(); }

private:
  // Users with a bucket before full ones are forgotten: memory stays bounded by the users
  // active in the last burst / per_s seconds, however many log in.
  static constexpr std::size_t buckets_max = 100000;
  struct bucket {
    double tokens = 0;
    std::int64_t refilled_us = 0;
  };
  double per_s_;
  double burst_;
  std::unordered_map<std::string, bucket> buckets_;
  std::size_t prune_at_ = buckets_max;
};

}  // namespace autosync::server
