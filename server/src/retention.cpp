#include "retention.hpp"

#include <algorithm>

namespace autosync::server {

void apply_retention(actors::user_directory& users, audit_log* audit, const std::string& user,
                     std::int64_t now_us, std::int64_t cutoff_us, const std::string& peer,
                     std::function<void()> after) {
  actors::command cmd;
  cmd.device_id = "server";
  cmd.operation_id = "retention-" + std::to_string(cutoff_us);
  cmd.timestamp_us = now_us;
  cmd.body = actors::apply_retention{cutoff_us};
  // A failure costs nothing: the next check tries again.
  users.send(user, std::move(cmd), [](actors::command_outcome) {});
  // Then the space of chunks no revision refers to any more: those of what retention just
  // dropped, and uploads no commit used within the retention period.
  users.reclaim_chunks(user, cutoff_us,
                       [audit, user, peer, now_us, after = std::move(after)](
                           result<journal::reclaimed> r) {
                         if (audit != nullptr && r && r->chunks > 0) {
                           audit->write({now_us, "reclaim", user, peer, "",
                                         std::to_string(r->chunks) + " chunks, " +
                                             std::to_string(r->bytes) + " bytes"});
                         }
                         if (after) after();
                       });
}

std::chrono::milliseconds sweep_interval(std::chrono::seconds retention) {
  const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(retention) / 24;
  return std::clamp<std::chrono::milliseconds>(every, std::chrono::seconds(1),
                                               std::chrono::hours(24));
}

}  // namespace autosync::server
