#include "autosync/actors/replay.hpp"
#include "autosync/base/thread_name.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace autosync::actors {

namespace {

// Events handed from the reading thread to the applying one, in batches: one lock per
// batch, not per event. Bounded so a huge history does not sit in memory twice.
class event_pipe {
public:
  static constexpr std::size_t batch_events = 1024;
  static constexpr std::size_t batches_max = 16;

  // Reader side. Returns false when the applier gave up.
  bool push(std::vector<journal::stored_event>&& batch) {
    std::deque<std::vector<journal::stored_event>> spent;
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return queue_.size() < batches_max || stopped_; });
    if (stopped_) return false;
    queue_.push_back(std::move(batch));
    spent.swap(spent_);
    cv_.notify_all();
    lock.unlock();
    return true;  // `spent` is freed here, on the thread that allocated it
  }
  // Applier side: a batch applied goes back to the reader to be freed. Freed on this
  // thread, each event would take the lock of the reader's malloc arena, which the reader
  // holds as it allocates the next ones (measured: contention worth a quarter of replay).
  void give_back(std::vector<journal::stored_event>&& batch) {
    std::lock_guard lock(mutex_);
    spent_.push_back(std::move(batch));
  }
  void close(status outcome) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    outcome_ = std::move(outcome);
    cv_.notify_all();
  }
  // Applier side: the next batch, or empty when the reader is done.
  std::vector<journal::stored_event> pop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return {};
    auto batch = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return batch;
  }
  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    cv_.notify_all();
  }
  status outcome() {
    std::lock_guard lock(mutex_);
    return outcome_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::vector<journal::stored_event>> queue_;
  std::deque<std::vector<journal::stored_event>> spent_;
  bool closed_ = false, stopped_ = false;
  status outcome_;
};

// Applies events directly, on this thread, stopping after `count_max`. Sets `more` when
// the store had more than that.
status apply_directly(const event_store& store, const std::string& user, namespace_state& state,
                      std::uint64_t to, std::size_t count_max, bool& more) {
  std::optional<error> failure;
  std::size_t applied = 0;
  more = false;
  auto s = store.read(user, state.last_seq() + 1, to, [&](journal::stored_event&& e) {
    if (applied == count_max) {
      more = true;
      return false;
    }
    if (auto a = state.apply(e.seq(), e.hash(), e.event()); !a) {
      failure = error(error_kind::corruption, "user " + user + ": " + a.err().message());
      return false;
    }
    ++applied;
    return true;
  }, journal::chain_check::by_caller);  // apply() checks each prevHash
  if (failure) return std::move(*failure);
  return s;
}

}  // namespace

status replay_events(const event_store& store, const std::string& user, namespace_state& state,
                     std::uint64_t to) {
  if (state.last_seq() + 1 > to) return status::ok();
  // Most tails after a snapshot are short: replay them here, and start a reading thread
  // only for a long one (a thread costs more than a thousand events).
  bool more = false;
  if (auto s = apply_directly(store, user, state, to, event_pipe::batch_events, more); !s || !more) {
    return s;
  }
  const std::uint64_t from = state.last_seq() + 1;
  event_pipe pipe;
  std::thread reader([&] {
    name_this_thread("replay-reader");
    std::vector<journal::stored_event> batch;
    bool wanted = true;
    auto s = store.read(user, from, to, [&](journal::stored_event&& e) {
      batch.push_back(std::move(e));
      if (batch.size() < event_pipe::batch_events) return true;
      wanted = pipe.push(std::move(batch));
      batch.clear();  // moved-from: make it a valid empty vector again
      return wanted;
    }, journal::chain_check::by_caller);  // apply() checks each prevHash, hashing there
    if (s && wanted && !batch.empty()) pipe.push(std::move(batch));
    pipe.close(std::move(s));
  });
  std::optional<error> failure;
  for (auto batch = pipe.pop(); !batch.empty() && !failure; batch = pipe.pop()) {
    for (auto& e : batch) {
      if (auto applied = state.apply(e.seq(), e.hash(), e.event()); !applied) {
        failure = error(error_kind::corruption, "user " + user + ": " + applied.err().message());
        break;
      }
    }
    pipe.give_back(std::move(batch));
  }
  if (failure) pipe.stop();
  reader.join();
  if (failure) return std::move(*failure);
  return pipe.outcome();
}

result<namespace_state> state_at(const event_store& store, const std::string& user,
                                 std::uint64_t seq) {
  namespace_state state;
  if (seq == 0) return state;
  auto snap = store.snapshot_at(user, seq);
  if (!snap) return std::move(snap).err();
  if (snap->has_value() && (*snap)->state_format == schema::NAMESPACE_STATE_FORMAT) {
    auto decoded = namespace_state::decode((*snap)->state, (*snap)->seq, (*snap)->head_hash);
    if (!decoded) {
      return error(error_kind::corruption, "user " + user + " snapshot at seq " +
                                               std::to_string((*snap)->seq) + ": " +
                                               decoded.err().message());
    }
    state = std::move(decoded).value();
  }
  if (auto s = replay_events(store, user, state, seq); !s) return std::move(s).err();
  return state;
}

result<std::uint64_t> seq_at_time(const event_store& store, const std::string& user,
                                  std::int64_t time_us) {
  // Timestamps follow seq order per user (the server's clock at acceptance), so the scan
  // stops at the first later event. TODO(perf): an index by time for long histories.
  std::uint64_t last = 0;
  auto s = store.read(user, 1, UINT64_MAX, [&](journal::stored_event&& e) {
    if (e.event().getTimestampUs() > time_us) return false;
    last = e.seq();
    return true;
  });
  if (!s) return std::move(s).err();
  return last;
}

}  // namespace autosync::actors
