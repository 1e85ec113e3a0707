// Answers coming back to the RPC event loop from other threads (user actors, the blocking
// pool), gathered behind one wake-up.
//
// kj's cross-thread fulfiller wakes the loop (an `eventfd` write) for every answer. The
// answers of one group commit come out of the actor thread together, a dozen at a time:
// here the first one rings the bell and the rest join the queue the loop is about to
// drain, so a dozen answers cost one wake-up and one turn of the loop.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace autosync::server {

class reply_doorbell {
public:
  // The queue, shared with whoever may post to it, so that a post after the loop has gone
  // finds it closed instead of freed memory.
  class queue {
  public:
    // Any thread. `task` runs on the loop's thread, in the order posted; once the doorbell
    // is gone, it is dropped (destroyed on the calling thread) instead.
    void post(kj::Function<void()> task);

  private:
    friend class reply_doorbell;
    std::mutex mutex_;
    std::vector<kj::Function<void()>> tasks_;
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> bell_;  // armed: the loop waits on it
    bool closed_ = false;
  };

  // On the loop's thread; it becomes that thread's current() doorbell.
  reply_doorbell();
  // On the loop's thread, after every promise that an answer could fulfil is gone: runs
  // nothing more, drops what is queued, and refuses later posts.
  ~reply_doorbell();
  reply_doorbell(const reply_doorbell&) = delete;
  reply_doorbell& operator=(const reply_doorbell&) = delete;

  // Runs what is posted, as it comes, for as long as the returned promise is kept (use
  // eagerlyEvaluate, or wait on it).
  kj::Promise<void> run();

  const std::shared_ptr<queue>& tasks() const noexcept { return queue_; }
  // How many times the loop woke to drain: at most one per post, fewer in bursts.
  std::uint64_t wakeups() const noexcept { return wakeups_; }

  // The doorbell of the calling thread's loop, or null on any other thread.
  static reply_doorbell* current() noexcept;

private:
  void drain();

  std::shared_ptr<queue> queue_;
  std::uint64_t wakeups_ = 0;
  reply_doorbell* previous_ = nullptr;
};

}  // namespace autosync::server
