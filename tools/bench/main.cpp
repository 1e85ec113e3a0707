// autosync-bench: AutoSync's benchmarks. Each scenario prints one JSON line:
// {"scenario": ..., "ops_per_s": ..., "p50_ms": ..., "p99_ms": ..., "mib_per_s": ...}
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "actors_bench.hpp"
#include "journal_bench.hpp"
#include "server_bench.hpp"
#include "smallfiles_bench.hpp"

int main(int argc, char** argv) {
  CLI::App app{"AutoSync benchmarks: one JSON line per scenario (medians over runs)"};
  app.require_subcommand(1);
  app.fallthrough();  // common options may follow the scenario name
  autosync::bench::settings s;
  app.add_flag("--json", s.json_only, "print only the JSON result lines");
  app.add_option("--seconds", s.seconds, "measured seconds per run")->check(CLI::PositiveNumber);
  app.add_option("--runs", s.runs, "runs per scenario; the median is reported")
      ->check(CLI::Range(1, 99));
  app.add_option("--only", s.only, "run only the scenarios whose name contains this text");

  std::string journal_dir;
  auto* journal = app.add_subcommand(
      "journal",
      "synced ~200-byte appends (1, 16, 256 in flight; batches of 256) and 1 MiB encrypted "
      "chunk puts");
  journal->add_option("--dir", journal_dir,
                      "where to put the benchmark journals (default: a fresh temp folder, removed "
                      "afterwards); put it on the disk you want to measure");
  auto* replay = app.add_subcommand(
      "replay", "events applied per second rebuilding a 200,000-event user from the journal");
  replay->add_option("--dir", journal_dir, "where to put the benchmark journal");
  auto* activate = app.add_subcommand(
      "activate", "milliseconds to load a user with 100,000 files from its snapshot");
  activate->add_option("--dir", journal_dir, "where to put the benchmark journal");
  std::size_t touched = 100000;
  auto* actors = app.add_subcommand(
      "actors", "commits/s through the user actors (10,000 users, 256 in flight) and peak "
                "memory touching many users under the live-actor cap");
  actors->add_option("--dir", journal_dir, "where to put the benchmark journals");
  actors->add_option("--users-touched", touched, "distinct users for actors.memory")
      ->check(CLI::PositiveNumber);
  auto* chunker = app.add_subcommand(
      "chunker", "MiB/s of content-defined chunking of a 256 MiB file, and with SHA-256");
  autosync::bench::server_target target{"127.0.0.1:7400", "autosync-data/dev-jwt-secret",
                                       std::filesystem::temp_directory_path() / "autosync-bench"};
  std::vector<std::pair<std::string, CLI::App*>> server_scenarios;
  for (const auto& [name, what] : std::vector<std::pair<std::string, std::string>>{
           {"commit", "metadata-only commits/s from 64 concurrent clients on 2 threads, p50, p99"},
           {"commit-sdk", "the same through 64 SDK clients, a thread each"},
           {"upload", "MiB/s putting a fresh 256 MiB file"},
           {"reupload", "MiB sent re-putting an unchanged 1 GiB file"},
           {"delta", "MiB sent and seconds for a 1 MiB change inside a 256 MiB file"},
           {"smallfiles", "files/s syncing 10,000 files of 4 KiB to an empty user and back "
                          "into an empty folder"}}) {
    auto* sub = app.add_subcommand(name, what + " (against a running autosyncd)");
    sub->add_option("--server", target.address, "HOST:PORT of autosyncd")->capture_default_str();
    sub->add_option("--secret-file", target.secret_file, "the server's --jwt-secret-file")
        ->capture_default_str();
    sub->add_option("--dir", target.work_dir, "where to write the files uploaded (and synced)");
    sub->add_option("--server-pid", target.server_pid,
                    "autosyncd's process id, when it runs on this machine: `commit` and "
                    "`upload` then report its CPU per commit or per MiB as well as their own");
    if (name == "commit") {
      sub->add_option("--clients", target.clients,
                      "concurrent clients, each its own connection and user (64 is the target's "
                      "setting; others show where latency or throughput bends)")
          ->check(CLI::Range(1, 4096));
    }
    server_scenarios.emplace_back(name, sub);
  }
  CLI11_PARSE(app, argc, argv);
  try {
    if (journal->parsed()) return autosync::bench::run_journal_bench(s, journal_dir);
    if (replay->parsed()) return autosync::bench::run_replay_bench(s, journal_dir);
    if (activate->parsed()) return autosync::bench::run_activate_bench(s, journal_dir);
    if (actors->parsed()) return autosync::bench::run_actors_bench(s, journal_dir, touched);
    if (chunker->parsed()) return autosync::bench::run_chunker_bench(s);
    for (const auto& [name, sub] : server_scenarios) {
      if (!sub->parsed()) continue;
      if (name == "smallfiles") return autosync::bench::run_smallfiles_bench(s, target);
      return autosync::bench::run_server_bench(s, name, target);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "autosync-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
