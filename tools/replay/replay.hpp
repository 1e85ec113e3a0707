// autosync-replay: reads a journal offline (or read-only beside a live node) and answers
// operators' questions about it: who is in it, what happened, what the tree looked like,
// whether it is intact, and what the files were.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "autosync/actors/namespace_state.hpp"
#include "autosync/journal/journal.hpp"

namespace autosync::replay {

struct point {  // a point in a user's history; neither set means "now"
  std::optional<std::uint64_t> seq;
  std::optional<std::int64_t> time_us;
};

// The user's state at `at`: the newest snapshot at or below it, then the events after.
result<actors::namespace_state> state_at(journal::journal& j, const std::string& user,
                                         const point& at);


// Each command writes its answer to `out`, progress and problems to `err`, and returns the
// process exit code.
int list_users(journal::journal& j, bool json, std::ostream& out, std::ostream& err);
int print_events(journal::journal& j, const std::string& user, std::uint64_t from,
                 std::uint64_t to, bool json, std::ostream& out, std::ostream& err);
int print_state(journal::journal& j, const std::string& user, const point& at, bool json,
                std::ostream& out, std::ostream& err);
int verify(journal::journal& j, const std::optional<std::string>& user, std::ostream& out,
           std::ostream& err);
int export_files(journal::journal& j, const std::string& user, const std::string& dest,
                 const point& at, std::ostream& out, std::ostream& err);

}  // namespace autosync::replay
