// Rebuilding a user's state at a point: snapshot, then the tail.
#include "replay.hpp"

#include "autosync/actors/replay.hpp"

namespace autosync::replay {

result<actors::namespace_state> state_at(journal::journal& j, const std::string& user,
                                         const point& at) {
  actors::journal_event_store store(j);  // opened read-only: the tool never writes
  std::uint64_t target = at.seq.value_or(UINT64_MAX);
  if (at.time_us) {
    auto seq = actors::seq_at_time(store, user, *at.time_us);
    if (!seq) return std::move(seq).err();
    target = std::min(target, *seq);
  }
  return actors::state_at(store, user, target);
}

}  // namespace autosync::replay
