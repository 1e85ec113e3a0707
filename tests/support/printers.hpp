// How Boost.Test prints the project's value types in a failed check (found by ADL).
#pragma once

#include <ostream>
#include <string>

#include "autosync/base/error.hpp"
#include "autosync/base/sha256.hpp"

namespace autosync {

inline std::ostream& boost_test_print_type(std::ostream& out, const sha256_digest& d) {
  return out << d.hex();
}

inline std::ostream& boost_test_print_type(std::ostream& out, error_kind kind) {
  return out << to_string(kind);
}

}  // namespace autosync

namespace autosync::test {

// What a check's message shows: the error of a failed result, "ok" otherwise. Boost builds
// messages even for passing checks, so they must never touch the error of a success.
template <class T>
std::string describe(const result<T>& r) {
  return r ? std::string("ok") : r.err().to_string();
}
inline std::string describe(const status& s) { return s.to_string(); }

}  // namespace autosync::test
