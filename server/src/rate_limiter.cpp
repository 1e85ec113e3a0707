#include "rate_limiter.hpp"

#include <algorithm>
#include <iterator>

namespace autosync::server {

std::uint32_t rate_limiter::admit(const std::string& user, std::int64_t now) {
  if (buckets_.size() >= prune_at_) {
    // A bucket refilled to the brim says nothing a new one would not: forget those. The
    // next pass waits until the map has doubled, so a map of users all still spending is
    // not searched again at every call.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double refill = static_cast<double>(now - it->second.refilled_us) / 1e6 * per_s_;
      it = it->second.tokens + refill >= burst_ ? buckets_.erase(it) : std::next(it);
    }
    prune_at_ = std::max(buckets_max, 2 * buckets_.size());
  }
  auto [it, added] = buckets_.try_emplace(user);
  auto& b = it->second;
  if (added) {
    b.tokens = burst_;
    b.refilled_us = now;
  }
  const double elapsed_s = static_cast<double>(now - b.refilled_us) / 1e6;
  if (elapsed_s > 0) {
    b.tokens = std::min(burst_, b.tokens + elapsed_s * per_s_);
    b.refilled_us = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return static_cast<std::uint32_t>((1.0 - b.tokens) / per_s_ * 1000.0) + 1;
}

}  // namespace autosync::server
