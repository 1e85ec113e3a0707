// The operation ids a user's namespace remembers, so that a retried command returns its
// first answer and appends nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autosync::actors {

// What an operation id produced, so a retry returns the original result.
struct applied_operation {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t command_digest = 0;  // which command it was (0: not recorded)
};

// The last `capacity` operation ids, oldest first, each with the seqs its command wrote.
//
// Every event applied passes through here (in replay too), so it is built for that: the
// ids sit in a ring in arrival order, and an open-addressing index (linear probing,
// deletion by backward shift) finds them. Once the ring is full a new id takes the oldest
// one's place and reuses its string, so remembering allocates nothing, and a look-up
// reads one or two cache lines. (A node-based map here was the largest cost of replay:
// its look-ups, node reuse and bucket arithmetic were 30% of applying an event.)
class operation_window {
public:
  explicit operation_window(std::size_t capacity);

  const applied_operation* find(std::string_view id) const;
  // Records that `id` wrote `seq`. An id already remembered keeps its place and its range
  // grows (one command, several events); a new one becomes the newest, and the oldest is
  // forgotten when the window is full.
  void remember(std::string_view id, std::uint64_t seq, std::uint64_t command_digest = 0);
  // Adds an id with its range as the newest (a snapshot being loaded, oldest first).
  void restore(std::string_view id, applied_operation applied);

  std::size_t size() const noexcept { return ring_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

  // Calls fn(id, applied) oldest first.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const std::size_t n = ring_.size();
    for (std::size_t k = 0; k < n; ++k) {
      const auto& e = ring_[(oldest_ + k) % n];
      fn(std::string_view(e.id), e.applied);
    }
  }

  // Same ids in the same order with the same ranges.
  friend bool operator==(const operation_window& a, const operation_window& b);

private:
  struct entry {
    std::string id;
    applied_operation applied;
    std::uint64_t hash = 0;
  };

  std::size_t home(std::uint64_t hash) const noexcept { return hash & (slots_.size() - 1); }
  // The slot holding ring position `at`.
  std::size_t slot_of(std::uint32_t at) const;
  void insert_slot(std::uint32_t at);
  void erase_slot(std::size_t slot);
  void grow();
  void add_newest(std::string_view id, std::uint64_t hash, applied_operation applied);

  std::size_t capacity_;
  std::vector<entry> ring_;             // grows to capacity_, then wraps
  std::size_t oldest_ = 0;              // ring position of the oldest id once full
  std::vector<std::uint32_t> slots_;    // ring position + 1; 0 is empty
};

}  // namespace autosync::actors
