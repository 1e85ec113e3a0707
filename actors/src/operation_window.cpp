#include "autosync/actors/operation_window.hpp"

#include <functional>
#include <stdexcept>

namespace autosync::actors {

namespace {

std::uint64_t hash_of(std::string_view id) { return std::hash<std::string_view>{}(id); }

}  // namespace

operation_window::operation_window(std::size_t capacity) : capacity_(capacity), slots_(16, 0) {
  if (capacity_ == 0 || capacity_ >= UINT32_MAX / 4) {
    throw std::invalid_argument("operation window capacity out of range");
  }
}

const applied_operation* operation_window::find(std::string_view id) const {
  const auto hash = hash_of(id);
  for (std::size_t i = home(hash);; i = (i + 1) & (slots_.size() - 1)) {
    const auto at = slots_[i];
    if (at == 0) return nullptr;
    const auto& e = ring_[at - 1];
    if (e.hash == hash && e.id == id) return &e.applied;
  }
}

void operation_window::remember(std::string_view id, std::uint64_t seq,
                                std::uint64_t command_digest) {
  if (id.empty()) return;
  const auto hash = hash_of(id);
  for (std::size_t i = home(hash);; i = (i + 1) & (slots_.size() - 1)) {
    const auto at = slots_[i];
    if (at == 0) break;
    auto& e = ring_[at - 1];
    if (e.hash == hash && e.id == id) {
      e.applied.last_seq = seq;  // a later event of a command already seen
      return;
    }
  }
  add_newest(id, hash, {seq, seq, command_digest});
}

void operation_window::restore(std::string_view id, applied_operation applied) {
  if (id.empty() || find(id) != nullptr) return;
  add_newest(id, hash_of(id), applied);
}

void operation_window::add_newest(std::string_view id, std::uint64_t hash,
                                  applied_operation applied) {
  if (ring_.size() < capacity_) {
    if ((ring_.size() + 1) * 2 > slots_.size()) grow();
    ring_.push_back({std::string(id), applied, hash});
    insert_slot(static_cast<std::uint32_t>(ring_.size() - 1));
    return;
  }
  // Full: the oldest id's place (and its string's buffer) goes to the new one.
  const auto at = static_cast<std::uint32_t>(oldest_);
  erase_slot(slot_of(at));
  auto& e = ring_[at];
  e.id.assign(id);
  e.applied = applied;
  e.hash = hash;
  insert_slot(at);
  oldest_ = (oldest_ + 1) % ring_.size();
}

std::size_t operation_window::slot_of(std::uint32_t at) const {
  for (std::size_t i = home(ring_[at].hash);; i = (i + 1) & (slots_.size() - 1)) {
    if (slots_[i] == at + 1) return i;
  }
}

void operation_window::insert_slot(std::uint32_t at) {
  std::size_t i = home(ring_[at].hash);
  while (slots_[i] != 0) i = (i + 1) & (slots_.size() - 1);
  slots_[i] = at + 1;
}

void operation_window::erase_slot(std::size_t slot) {
  // Backward shift: move later members of the probe run into the hole when their home
  // does not lie (cyclically) between the hole and where they sit.
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = slot;
  for (std::size_t j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    const std::size_t h = home(ring_[slots_[j] - 1].hash);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = 0;
}

void operation_window::grow() {
  slots_.assign(slots_.size() * 2, 0);
  for (std::uint32_t at = 0; at < ring_.size(); ++at) insert_slot(at);
}

bool operator==(const operation_window& a, const operation_window& b) {
  if (a.size() != b.size()) return false;
  const std::size_t n = a.size();
  for (std::size_t k = 0; k < n; ++k) {
    const auto& x = a.ring_[(a.oldest_ + k) % n];
    const auto& y = b.ring_[(b.oldest_ + k) % n];
    if (x.id != y.id || x.applied.first_seq != y.applied.first_seq ||
        x.applied.last_seq != y.applied.last_seq ||
        x.applied.command_digest != y.applied.command_digest) {
      return false;
    }
  }
  return true;
}

}  // namespace autosync::actors
