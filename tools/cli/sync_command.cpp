// `autosync sync LOCAL_DIR [REMOTE_DIR] [--watch] [--max-delete N]`: the folder sync engine
// (sdk/folder_sync.hpp) with a progress bar and a summary per pass.
#include <iostream>

#include "autosync/base/utc_time.hpp"
#include "cli.hpp"

namespace autosync::cli {

namespace {

// "19:50:08", to tell the passes of a long watch apart.
std::string time_of_day() {
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return format_utc(now_us).substr(11, 8);
}

}  // namespace

int run_sync(const global_options& g, const sync_request& request) {
  output out(g);
  if (auto bad = bad_remote_path(request.remote)) return out.usage(*bad);
  install_stop_signals();
  auto c = connect(g, out);
  if (!c) return exit_failed;
  progress_bar bar;
  sdk::folder_sync_options options;
  options.local = request.local;
  options.remote = request.remote;
  options.max_delete = request.max_delete;
  options.stop = [] { return stop_requested != 0; };
  options.progress = [&](const sdk::sync_progress& p) {
    bar.update(p.path, p.bytes_done, p.bytes_total, p.files_done, p.files_total);
  };
  auto opened = sdk::folder_sync::open(*c, options);
  // The messages of open() say what to do; the generic advice would mislead.
  if (!opened) return out.fail("sync " + request.local, opened.err(), std::string());
  auto& sync = **opened;
  const std::string doing =
      "sync " + sync.local_folder().string() + " with " + sync.remote_folder();
  auto report = [&](const result<sdk::sync_summary>& pass) {
    bar.finish();
    if (!pass && stop_requested != 0) return;  // stopped on request: not a failure to explain
    if (!pass) {
      // Errors of the pass itself (the deletion limit, a deleted remote folder) say what
      // to do; those of the client get the usual advice.
      std::optional<std::string> advice;
      if (pass.err().kind() == error_kind::invalid) advice = "";
      out.fail(doing, pass.err(), advice);
      return;
    }
    if (request.watch && !pass->changed() && pass->failed.empty()) return;  // quiet when idle
    out.text((request.watch ? time_of_day() + "  " : std::string()) + describe(*pass));
    auto j = to_json(*pass);
    j["ok"] = true;
    j["command"] = "sync";
    out.record(j);
  };
  if (!request.watch) {
    auto pass = sync.run_once();
    report(pass);
    if (stop_requested != 0) {
      std::cerr << "autosync: stopped before the end; run the same command again to finish\n";
      return exit_failed;
    }
    if (!pass) return exit_failed;
    return pass->failed.empty() ? exit_ok : exit_failed;
  }
  if (!out.json()) std::cerr << "watching " << doing.substr(5) << "; Ctrl-C to stop\n";
  // A pass that cannot go on was reported by `report` already.
  auto watched = sync.watch([] { return stop_requested != 0; }, report);
  bar.finish();
  return watched ? exit_ok : exit_failed;
}

}  // namespace autosync::cli
