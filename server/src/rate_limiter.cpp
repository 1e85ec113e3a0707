#include "rate_limiter.hpp"

#include <algorithm>
#include <iterator>

namespace autosync::server {

std::uint32_t rate_limiter::admit(const std::string& user, std::int64_t now) {
  if (buckets_.size() >= buckets_max) {
    // A bucket refilled to the brim says nothing a new one would not: forget those.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double refill = static_cast<double>(now - it->second.refilled_us) / 1e6 * per_s_;
      it = it->second.tokens + refill >= burst_ ? buckets_.erase(it) : std::next(it);
    }
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
