// Which of a user's snapshots the journal keeps. Every snapshot is a whole copy of the
// user's state, written every few thousand events: kept for ever, they would soon take more
// space than the events they summarize. A recovery needs only the newest; a point-in-time
// view (an old listing, `autosync-replay state --at-seq`, an export) starts from the newest
// snapshot at or before its point and replays the rest. So the older a snapshot is, the
// sparser they are kept: one that is d events older than the newest stays only if it is
// the oldest snapshot in its stretch of seqs [m * g, (m + 1) * g), g being the largest power
// of two not above d. As the newest moves on, stretches only merge (two of size g make one
// of 2g), and the oldest of a merged stretch was kept in its half, so the rule can run at
// every write. It keeps at most about log2(events / interval) + 3 snapshots, and a view of a point
// d events old replays at most about 2 (d + interval) events (simulated over a million
// events: 11 snapshots, at most 1.93 (d + interval)).
#pragma once

#include <cstdint>
#include <vector>

namespace autosync::journal {

// `seqs`: ascending, without repeats; its last is the newest. Removes the snapshots not
// kept from `seqs` and returns them, ascending.
inline std::vector<std::uint64_t> thin_snapshots(std::vector<std::uint64_t>& seqs) {
  std::vector<std::uint64_t> kept, dropped;
  if (seqs.size() < 2) return dropped;
  const std::uint64_t newest = seqs.back();
  for (std::size_t i = 0; i + 1 < seqs.size(); ++i) {
    const std::uint64_t stretch = std::uint64_t{1} << (63 - __builtin_clzll(newest - seqs[i]));
    // Seqs ascend, so an older snapshot in the same stretch would be the one just before.
    if (i > 0 && seqs[i - 1] / stretch == seqs[i] / stretch) {
      dropped.push_back(seqs[i]);
    } else {
      kept.push_back(seqs[i]);
    }
  }
  kept.push_back(newest);
  seqs = std::move(kept);
  return dropped;
}

}  // namespace autosync::journal
