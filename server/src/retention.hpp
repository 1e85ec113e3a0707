// Applying a user's retention: the retention command, then reclaiming the chunks no revision
// refers to any more. Sessions run it for their user when its check is due; the sweep runs
// it for every user (those who never call again too) once per sweep interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "autosync/actors/user_directory.hpp"
#include "autosync/server/audit.hpp"

namespace autosync::server {

// Sends `user`'s retention (reclaiming what is older than `cutoff_us`) and then its chunk
// reclaim, in order with the user's commands. A reclaim that frees something is audited
// (`audit` may be null) with `peer` as who asked. `after` (may be empty) runs once the
// reclaim is done, whatever its outcome, on the user's actor thread (the registry's when
// the user cannot be served). Thread safe.
void apply_retention(actors::user_directory& users, audit_log* audit, const std::string& user,
                     std::int64_t now_us, std::int64_t cutoff_us, const std::string& peer,
                     std::function<void()> after = {});

// How long a sweep waits before visiting every user again: a day, or retention / 24 when
// that is shorter (at least a second).
std::chrono::milliseconds sweep_interval(std::chrono::seconds retention);

}  // namespace autosync::server
