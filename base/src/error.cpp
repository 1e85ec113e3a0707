#include "autosync/base/error.hpp"

namespace autosync {

const char* to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::invalid: return "invalid";
    case error_kind::too_large: return "too_large";
    case error_kind::not_found: return "not_found";
    case error_kind::conflict: return "conflict";
    case error_kind::quota_exceeded: return "quota_exceeded";
    case error_kind::overloaded: return "overloaded";
    case error_kind::unavailable: return "unavailable";
    case error_kind::corruption: return "corruption";
    case error_kind::internal: return "internal";
    case error_kind::unauthenticated: return "unauthenticated";
    case error_kind::forbidden: return "forbidden";
    case error_kind::rate_limited: return "rate_limited";
    case error_kind::stale_cursor: return "stale_cursor";
    case error_kind::local_io:
      return "local_io";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string out = autosync::to_string(kind_);
  out += ": ";
  out += message_;
  return out;
}

}  // namespace autosync
