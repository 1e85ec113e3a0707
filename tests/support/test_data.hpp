// Data and processes the tests share.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace autosync::test {

// `n` incompressible bytes, the same for the same seed.
inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, n - i));
  }
  return s;
}

// A cutoff after every put a test made: reclaiming with it spares no chunk for its age.
inline std::int64_t an_hour_from_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             (std::chrono::system_clock::now() + std::chrono::hours(1)).time_since_epoch())
      .count();
}

struct process_result {
  int exit_code;       // -1 if it did not exit normally
  std::string output;  // standard output and standard error
};

// Runs `binary args` through the shell and waits for it.
inline process_result run_process(const std::string& binary, const std::string& args) {
  const std::string command = binary + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + binary);
  std::string output;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Starts `args[0]` with `args` in the background, its standard output and error going to
// `log`; returns its pid (reap it with waitpid). `open_files_max`, when not 0, is the
// child's limit on file descriptors (RLIMIT_NOFILE).
inline pid_t spawn_process(std::vector<std::string> args, const std::string& log,
                           rlim_t open_files_max = 0) {
  std::fflush(nullptr);  // or the child repeats the parent's buffered output
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    std::FILE* out = std::freopen(log.c_str(), "w", stdout);
    (void)out;
    ::dup2(::fileno(stdout), 2);
    if (open_files_max != 0) {
      const rlimit limit{open_files_max, open_files_max};
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace autosync::test
