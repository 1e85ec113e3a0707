// Rebuilding a user's state from its stored events.
#pragma once

#include <cstdint>
#include <string>

#include "autosync/actors/event_store.hpp"
#include "autosync/actors/namespace_state.hpp"

namespace autosync::actors {

// Applies the user's events state.last_seq()+1 .. to, in order. Reading (decrypting and
// verifying) runs on a second thread while this one applies, so a large replay uses two
// cores. Fails with the store's error, or `corruption` naming the user and the event that
// does not fit; the state then holds everything before that event.
status replay_events(const event_store& store, const std::string& user, namespace_state& state,
                     std::uint64_t to = UINT64_MAX);

// The user's state after event `seq` (UINT64_MAX: now): the newest snapshot at or below it,
// then the events after. A point-in-time view of the whole tree.
result<namespace_state> state_at(const event_store& store, const std::string& user,
                                 std::uint64_t seq = UINT64_MAX);

// The last seq whose event was accepted at or before `time_us` (0: none was).
result<std::uint64_t> seq_at_time(const event_store& store, const std::string& user,
                                  std::int64_t time_us);

}  // namespace autosync::actors
