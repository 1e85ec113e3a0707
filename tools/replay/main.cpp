// autosync-replay --data-dir DIR <command>: the journal, offline or beside a live node.
#include <CLI/CLI.hpp>

#include <iostream>

#include "autosync/base/utc_time.hpp"
#include "replay.hpp"

using namespace autosync;

namespace {

// Reads --at-seq / --at-time into a point; false (with a message) on a bad time.
bool read_point(const std::optional<std::uint64_t>& seq, const std::string& time,
                replay::point& at) {
  at.seq = seq;
  if (time.empty()) return true;
  at.time_us = parse_utc(time);
  if (!at.time_us) {
    std::cerr << "autosync-replay: --at-time wants UTC like 2026-11-21T19:50:08Z, not \"" << time
              << "\"\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reads an AutoSync journal offline, or read-only beside a live node"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string data_dir, key_file;
  app.add_option("--data-dir", data_dir, "the node's data folder (it holds the journal)")
      ->required();
  app.add_option("--master-key-file", key_file, "the master key (default: DATA_DIR/master.key)");

  bool json = false;
  std::string user, dest, at_time;
  std::optional<std::uint64_t> at_seq;
  std::uint64_t from = 1, to = UINT64_MAX;
  auto* users = app.add_subcommand("users", "every user: events, last seq, live files and bytes");
  users->add_flag("--json", json, "one JSON object per line");
  auto* events = app.add_subcommand("events", "a user's events, verified as they are read");
  events->add_option("user", user)->required();
  events->add_option("--from", from, "first seq");
  events->add_option("--to", to, "last seq");
  events->add_flag("--json", json, "one JSON object per line");
  auto* state = app.add_subcommand("state", "a user's tree now, or as of a seq or a time");
  state->add_option("user", user)->required();
  state->add_option("--at-seq", at_seq, "the state after this event");
  state->add_option("--at-time", at_time, "the state at this UTC time (2026-11-21T19:50:08Z)");
  state->add_flag("--json", json, "one JSON object per line");
  auto* verify = app.add_subcommand(
      "verify", "hash chains, snapshots against replays, every referenced chunk and its hash");
  verify->add_option("user", user, "only this user");
  auto* exporter = app.add_subcommand("export", "write a user's files as of a point into DEST");
  exporter->add_option("user", user)->required();
  exporter->add_option("dest", dest, "a new or empty folder")->required();
  exporter->add_option("--at-seq", at_seq, "the files after this event");
  exporter->add_option("--at-time", at_time, "the files at this UTC time");
  CLI11_PARSE(app, argc, argv);

  auto key = journal::load_master_key(key_file.empty() ? std::filesystem::path(data_dir) / "master.key"
                                                       : std::filesystem::path(key_file));
  if (!key) {
    std::cerr << "autosync-replay: " << key.err().to_string() << "\n";
    return 2;
  }
  journal::options options;
  options.dir = data_dir;
  options.master_key = *key;
  options.read_only = true;
  auto opened = journal::journal::open(options);
  if (!opened) {
    std::cerr << "autosync-replay: " << opened.err().to_string() << "\n";
    return 2;
  }
  auto& j = **opened;
  replay::point at;
  if (!read_point(at_seq, at_time, at)) return 2;
  if (users->parsed()) return replay::list_users(j, json, std::cout, std::cerr);
  if (!user.empty()) {
    // A misspelt user would otherwise read as an intact, empty history.
    auto head = j.head(user);
    if (!head && !verify->parsed()) {  // verify reports a damaged head as a finding
      std::cerr << "autosync-replay: " << head.err().to_string() << "\n";
      return 2;
    }
    if (head && head->last_seq == 0) {
      std::cerr << "autosync-replay: user " << user
                << " has no events in this journal; `autosync-replay users` lists those that "
                   "do\n";
      return 1;
    }
  }
  if (events->parsed()) return replay::print_events(j, user, from, to, json, std::cout, std::cerr);
  if (state->parsed()) return replay::print_state(j, user, at, json, std::cout, std::cerr);
  if (verify->parsed()) {
    return replay::verify(j, user.empty() ? std::nullopt : std::optional<std::string>(user),
                          std::cout, std::cerr);
  }
  return replay::export_files(j, user, dest, at, std::cout, std::cerr);
}
