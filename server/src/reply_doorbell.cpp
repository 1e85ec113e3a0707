#include "reply_doorbell.hpp"

#include <iostream>

namespace autosync::server {

namespace {

thread_local reply_doorbell* current_doorbell = nullptr;

}  // namespace

void reply_doorbell::queue::post(kj::Function<void()> task) {
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> bell;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;  // `task` is destroyed here, after the lock, with its captures
    tasks_.push_back(kj::mv(task));
    bell = kj::mv(bell_);  // null when already rung: the loop has not drained yet
  }
  if (bell.get() != nullptr) bell->fulfill();
}

reply_doorbell::reply_doorbell()
    : queue_(std::make_shared<queue>()), previous_(current_doorbell) {
  current_doorbell = this;
}

reply_doorbell::~reply_doorbell() {
  current_doorbell = previous_;
  std::vector<kj::Function<void()>> dropped;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> bell;
  {
    std::lock_guard lock(queue_->mutex_);
    queue_->closed_ = true;
    dropped.swap(queue_->tasks_);
    bell = kj::mv(queue_->bell_);
  }
  // Destroyed here, on the loop's thread, outside the lock.
}

reply_doorbell* reply_doorbell::current() noexcept { return current_doorbell; }

kj::Promise<void> reply_doorbell::run() {
  auto pair = kj::newPromiseAndCrossThreadFulfiller<void>();
  bool waiting = false;
  {
    std::lock_guard lock(queue_->mutex_);
    if (queue_->tasks_.empty()) {
      queue_->bell_ = kj::mv(pair.fulfiller);
      waiting = true;
    }
  }
  kj::Promise<void> ready = waiting ? kj::mv(pair.promise) : kj::Promise<void>(kj::READY_NOW);
  return ready.then([this] {
    drain();
    return run();
  });
}

void reply_doorbell::drain() {
  std::vector<kj::Function<void()>> batch;
  {
    std::lock_guard lock(queue_->mutex_);
    batch.swap(queue_->tasks_);
  }
  ++wakeups_;
  for (auto& task : batch) {
    // A task only fulfils or drops one promise, which does not throw; should one throw
    // anyway, it must not stop the loop from draining the answers of everyone else.
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { task(); })) {
      std::cerr << "autosyncd: an answer failed on its way back: " << e->getDescription().cStr()
                << "\n";
    }
  }
}

}  // namespace autosync::server
