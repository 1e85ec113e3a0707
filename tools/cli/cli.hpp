// The `autosync` command-line client: what its commands share. main.cpp parses the
// arguments; commands.cpp and sync_command.cpp run them over one sdk::client; output.cpp
// writes what people (or, with --json, programs) read.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "autosync/base/error.hpp"
#include "autosync/sdk/client.hpp"
#include "autosync/sdk/folder_sync.hpp"

namespace autosync::cli {

// Exit codes: scripts tell a failed operation from a wrong command line.
enum exit_code : int {
  exit_ok = 0,
  exit_failed = 1,  // the operation failed (the message says what to do)
  exit_usage = 2,   // the command line is wrong; nothing was attempted
};

struct global_options {
  std::string server = "127.0.0.1:7400";
  std::string token;  // --token, else AUTOSYNC_TOKEN
  std::string device;
  std::string tls_ca;
  bool json = false;
};

// Output for people on a terminal, or JSON lines for programs (--json). Results go to
// stdout, errors to stderr (and, with --json, also as a JSON line on stdout).
class output {
public:
  explicit output(const global_options& options) : options_(options) {}
  bool json() const noexcept { return options_.json; }

  // A line of text (only without --json).
  void text(const std::string& line) const;
  // A JSON record (only with --json).
  void record(const nlohmann::json& j) const;
  // Reports a failure of `doing` ("put /docs/a.txt") with what to do about it: `advice`,
  // or by default advice_for(e).
  int fail(const std::string& doing, const error& e,
           std::optional<std::string> advice = std::nullopt) const;
  // Reports a wrong command line.
  int usage(const std::string& message) const;

private:
  const global_options& options_;
};

// What to do about an error, for people: one sentence.
std::string advice_for(const error& e, const global_options& options);

// A one-line progress display on stderr, drawn only when stderr is a terminal: bytes, files,
// rate and time left. Cleared by finish() (and on destruction).
class progress_bar {
public:
  progress_bar();
  ~progress_bar();
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;

  void update(const std::string& label, std::uint64_t bytes_done, std::uint64_t bytes_total,
              std::uint64_t files_done = 0, std::uint64_t files_total = 0);
  void finish();

private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_drawn_;
};

// "1.5 MiB", "312 B".
std::string human_bytes(std::uint64_t bytes);

nlohmann::json to_json(const sdk::entry& e);
nlohmann::json to_json(const sdk::version& v);
nlohmann::json to_json(const sdk::change& c);
nlohmann::json to_json(const sdk::sync_summary& s);
std::string describe(const sdk::change& c);
std::string describe(const sdk::sync_summary& s);

// Remote paths are absolute: nothing, or the message for a usage error.
std::optional<std::string> bad_remote_path(const std::string& path);

// Set by SIGINT and SIGTERM once install_stop_signals() ran; a second signal ends the
// program at once.
extern volatile std::sig_atomic_t stop_requested;
void install_stop_signals();

// Connects as the options say; nullptr after reporting the failure.
std::unique_ptr<sdk::client> connect(const global_options& options, const output& out);

// --- commands (each returns the exit code) -----------------------------------------------

struct list_request {
  std::string path = "/";
  bool recursive = false;
  std::uint64_t at_seq = 0;
  std::string at_time;
};

int run_put(const global_options& g, const std::string& local, std::string remote);
int run_get(const global_options& g, const std::string& remote, const std::string& local);
int run_ls(const global_options& g, const list_request& request);
int run_stat(const global_options& g, const std::string& path);
int run_rm(const global_options& g, const std::string& path);
int run_mv(const global_options& g, const std::string& from, const std::string& to);
int run_mkdir(const global_options& g, const std::string& path);
int run_history(const global_options& g, const std::string& path);
int run_restore(const global_options& g, const std::string& path, std::uint64_t revision);
int run_undelete(const global_options& g, const std::string& path);
int run_changes(const global_options& g, std::optional<std::uint64_t> since);
int run_watch(const global_options& g, std::optional<std::uint64_t> since);

struct sync_request {
  std::string local;
  std::string remote = "/";
  bool watch = false;
  std::optional<std::size_t> max_delete;
};
int run_sync(const global_options& g, const sync_request& request);

}  // namespace autosync::cli
