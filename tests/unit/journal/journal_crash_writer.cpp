// The child of the crash test: appends as fast as it can from several threads and prints
// one line for each acknowledged write, until it is killed with SIGKILL.
//   E <user> <seq> <hash>   an event acknowledged by the journal
//   C <user> <hash>         a chunk acknowledged by the journal
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "journal_fixture.hpp"

using namespace autosync;

namespace {

std::mutex out_mutex;

void report(const std::string& line) {
  std::lock_guard lock(out_mutex);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) std::_Exit(3);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: journal_crash_writer DIR SEED\n");
    return 2;
  }
  auto opened = journal::journal::open(test::journal_options(argv[1]));
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.err().to_string().c_str());
    return 1;
  }
  auto& j = **opened;
  const unsigned seed = static_cast<unsigned>(std::stoul(argv[2]));
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&j, seed, t] {
      std::mt19937 rng(seed * 100 + t);
      std::atomic<int> in_flight{0};
      for (std::uint64_t i = 0;; ++i) {
        const std::string user = "user" + std::to_string(rng() % 5);
        if (rng() % 8 == 0) {
          std::string chunk(1000 + rng() % 60000, static_cast<char>(rng()));
          auto id = sha256(chunk);
          auto r = j.put_chunk_and_wait(user, id, std::move(chunk));
          if (r) report("C " + user + " " + id.hex() + "\n");
          continue;
        }
        // Keep a few appends in flight per thread so that batches really coalesce.
        while (in_flight.load() >= 16) std::this_thread::yield();
        ++in_flight;
        j.append(test::request_for(user, test::commit_event("/t" + std::to_string(t) + "/" +
                                                            std::to_string(i))),
                 [user, &in_flight](result<journal::appended> r) {
                   if (r) {
                     report("E " + user + " " + std::to_string(r->last_seq) + " " +
                            r->last_hash.hex() + "\n");
                   }
                   --in_flight;
                 });
      }
    });
  }
  for (auto& t : threads) t.join();  // never: the parent kills us
  return 0;
}
