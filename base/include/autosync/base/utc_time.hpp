// Times as AutoSync stores them (microseconds since 1970, UTC) and as people read them
// ("2026-11-21T19:50:08.000000Z"). No clock here: callers pass the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace autosync {

// "2026-11-21T19:50:08.123456Z". Times before 1970 are printed correctly too.
std::string format_utc(std::int64_t time_us);

// Parses "2026-11-21T19:50:08Z" or with fractional seconds ("...08.5Z"); UTC only: a text
// with another zone or anything after the "Z" is refused rather than guessed.
std::optional<std::int64_t> parse_utc(const std::string& text);

// A length of time as people type it: "250ms", "90s", "15m", "2h", "30d"; nothing for
// anything else (no unit, zero or negative, other characters).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

}  // namespace autosync
