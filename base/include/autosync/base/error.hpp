// Errors that cross a module boundary are values, classified by what the caller should
// do next. The classification is mapped once to RPC results and once to CLI messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace autosync {

enum class error_kind : std::uint8_t {
  invalid,          // the request is malformed; retrying it unchanged fails again
  too_large,        // a size limit was exceeded; split or shrink the request
  not_found,        // the thing named does not exist
  conflict,         // the request is stale (sequence, revision); re-read and decide again
  quota_exceeded,   // the user's storage quota would be exceeded
  overloaded,       // too much queued right now; back off and retry
  unavailable,      // storage or a peer failed (I/O error, full disk); retry later
  corruption,       // stored data failed a check (hash, authentication tag, sequence)
  internal,         // a bug: an invariant of ours did not hold
  unauthenticated,  // no valid credentials: get a (new) token
  forbidden,        // valid credentials, but not for this
  rate_limited,     // too many requests from this user; wait, then retry
  stale_cursor,     // a cursor names a point the history does not hold: list again
  local_io,         // this machine's disk or file system refused (full, permissions): fix it
};

// A stable lower-case name for logs, JSON and CLI output ("conflict", "corruption", ...).
const char* to_string(error_kind kind) noexcept;

class [[nodiscard]] error {
public:
  error(error_kind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  error_kind kind() const noexcept { return kind_; }
  const std::string& message() const noexcept { return message_; }

  // "corruption: user alice seq 17: authentication tag mismatch"
  std::string to_string() const;

private:
  error_kind kind_;
  std::string message_;
};

// The value or the error of an operation that can fail. Deliberately small: it is what
// std::expected will be once the project moves to C++23.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(error err) : state_(std::in_place_index<1>, std::move(err)) {}

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // REQUIRES: has_value()
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !has_value()
  const error& err() const& { return std::get<1>(state_); }
  error&& err() && { return std::get<1>(std::move(state_)); }

private:
  std::variant<T, error> state_;
};

// The outcome of an operation that returns nothing but may fail.
class [[nodiscard]] status {
public:
  status() = default;
  status(error err) : error_(std::move(err)) {}

  static status ok() { return {}; }

  bool is_ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return is_ok(); }

  // REQUIRES: !is_ok()
  const error& err() const& { return *error_; }
  error&& err() && { return std::move(*error_); }

  std::string to_string() const { return error_ ? error_->to_string() : "ok"; }

private:
  std::optional<error> error_;
};

}  // namespace autosync
