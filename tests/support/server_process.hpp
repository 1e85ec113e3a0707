// A real autosyncd process for integration tests: started on a free loopback port with its
// own data directory and token secret, stopped with SIGTERM (or killed with SIGKILL).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_data.hpp"

namespace autosync::test {

class server_process {
public:
  // `binary`: autosyncd. `dir`: holds data/, jwt.secret and the process's output.
  // `open_files_max`, when not 0: the process's limit on file descriptors.
  server_process(std::string binary, std::filesystem::path dir, std::vector<std::string> extra = {},
                 rlim_t open_files_max = 0)
      : binary_(std::move(binary)), dir_(std::move(dir)), extra_(std::move(extra)),
        open_files_max_(open_files_max) {
    std::filesystem::create_directories(dir_);
    if (!std::filesystem::exists(secret_file())) {
      std::ofstream(secret_file()) << std::string(48, 's') << "\n";  // tokens.hpp: test_secret()
    }
    start();
  }
  ~server_process() { stop(); }
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  std::filesystem::path secret_file() const { return dir_ / "jwt.secret"; }

  // The server's audit log once `done` holds for it (lines are written by a thread of the
  // log's own, a moment after the call that made them), or as it is after 10 s.
  template <class Done>
  std::string audit_log_when(Done done) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      std::ifstream in(data_dir() / "audit.log");
      std::string text{std::istreambuf_iterator<char>(in), {}};
      text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);  // whole lines
      if (done(text) || std::chrono::steady_clock::now() > until) return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::filesystem::path data_dir() const { return dir_ / "data"; }
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

  // Starts it (again, on the same data, on a new port) and waits until it listens.
  void start(const std::string& listen = "127.0.0.1:0") {
    log_ = dir_ / ("server-" + std::to_string(++starts_) + ".log");
    const auto& log = log_;
    std::vector<std::string> args{binary_, "--data-dir", data_dir().string(), "--listen", listen,
                                  "--jwt-secret-file", secret_file().string()};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = spawn_process(std::move(args), log.string(), open_files_max_);
    address_ = wait_for_address(log);
  }

  // What the running (or last) process printed so far.
  std::string output() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // SIGTERM and wait: the clean shutdown. Returns the exit code (-1: not a normal exit).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    return reap();
  }
  // Sends `sig`, without waiting for anything.
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // The process's wait status if it ends within `timeout`; nothing while it runs on.
  std::optional<int> ended_within(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      if (std::chrono::steady_clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }
  // SIGKILL: the crash.
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap();
  }

private:
  int reap() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string wait_for_address(const std::filesystem::path& log) {
    const std::string marker = "RPC on ";
    for (int i = 0; i < 300; ++i) {
      std::ifstream in(log);
      std::stringstream s;
      s << in.rdbuf();
      const auto text = s.str();
      if (auto at = text.find(marker); at != std::string::npos) {
        auto end = text.find(',', at);
        if (end != std::string::npos) return text.substr(at + marker.size(), end - at - marker.size());
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("autosyncd exited at start: " + text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("autosyncd did not start listening within 6 s");
  }

  std::string binary_;
  std::filesystem::path dir_;
  std::vector<std::string> extra_;
  rlim_t open_files_max_ = 0;
  std::string address_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

}  // namespace autosync::test
