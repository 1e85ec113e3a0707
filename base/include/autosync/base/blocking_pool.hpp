// Threads for work that blocks (RocksDB reads, chunk hashing and sealing, recovering a
// user), so that the RPC event loop and the actors' threads never do. Tasks start in the
// order queued, on any of the threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace autosync {

class blocking_pool {
public:
  // `name` names its threads (see thread_name.hpp).
  blocking_pool(std::size_t threads, std::string name);
  // Runs every task already queued, then joins.
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  // Thread safe. The task must not throw.
  void run(std::function<void()> task);
  std::size_t queued() const;

private:
  void work();

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace autosync
