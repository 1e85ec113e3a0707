// autosync: the command-line client. Files and folders on an AutoSync server, the change
// feed, and two-way folder sync. Exit codes: 0 ok, 1 the operation failed, 2 usage error.
#include <CLI/CLI.hpp>
#include <cstdlib>

#include "cli.hpp"

using namespace autosync::cli;

namespace {

// The arguments of every command, filled in by the parser.
struct arguments {
  std::string first, second;
  std::uint64_t revision = 0;
  std::optional<std::uint64_t> since;
  list_request list;
  sync_request sync;
};

void add_global_options(CLI::App& app, global_options& g) {
  app.add_option("--server", g.server, "HOST:PORT of an AutoSync node (default 127.0.0.1:7400)");
  app.add_option("--token", g.token, "bearer token (default: the AUTOSYNC_TOKEN variable)");
  app.add_option("--device", g.device, "this device's name in its changes (default: host name)");
  app.add_option("--tls-ca", g.tls_ca, "use TLS, trusting this CA certificate (PEM file)");
  app.add_flag("--json", g.json, "print JSON lines on stdout, for programs");
}

void add_file_commands(CLI::App& app, arguments& a) {
  auto* put = app.add_subcommand("put", "upload a file (REMOTE ending in / keeps the name)");
  put->add_option("local", a.first, "the local file")->required();
  put->add_option("remote", a.second, "where it goes, e.g. /docs/report.pdf")->required();
  auto* get = app.add_subcommand("get", "download a file");
  get->add_option("remote", a.first, "the remote file, e.g. /docs/report.pdf")->required();
  get->add_option("local", a.second, "where it goes (a folder keeps the name)")->required();
  auto* ls = app.add_subcommand("ls", "list a folder, now or as it was");
  ls->add_option("path", a.list.path, "the remote folder (default /)");
  ls->add_flag("-r,--recursive", a.list.recursive, "everything below, not only the children");
  ls->add_option("--at-seq", a.list.at_seq, "as it was after change N");
  ls->add_option("--at-time", a.list.at_time, "as it was at a UTC time (2026-11-21T19:50:08Z)");
  app.add_subcommand("stat", "a file's or folder's details")
      ->add_option("path", a.first)
      ->required();
  app.add_subcommand("rm", "delete a file or a folder with everything below (undelete undoes it)")
      ->add_option("path", a.first)
      ->required();
  auto* mv = app.add_subcommand("mv", "move or rename a file or folder");
  mv->add_option("from", a.first)->required();
  mv->add_option("to", a.second)->required();
  app.add_subcommand("mkdir", "create a folder (and missing parents)")
      ->add_option("path", a.first)
      ->required();
}

void add_history_commands(CLI::App& app, arguments& a) {
  app.add_subcommand("history", "every revision of a file, across renames and deletes")
      ->add_option("path", a.first)
      ->required();
  auto* restore = app.add_subcommand("restore", "make an older revision current again");
  restore->add_option("path", a.first)->required();
  restore->add_option("revision", a.revision, "a revision from autosync history")->required();
  app.add_subcommand("undelete", "bring back a deleted file")
      ->add_option("path", a.first)
      ->required();
  app.add_subcommand("changes", "the change feed: every change after a cursor")
      ->add_option("--since", a.since, "the cursor printed last time (default: from the start)");
  app.add_subcommand("watch", "print changes as they happen, until Ctrl-C")
      ->add_option("--since", a.since, "start after this cursor (default: now)");
  auto* sync = app.add_subcommand("sync", "two-way sync of a local folder with a remote one");
  sync->add_option("local", a.sync.local, "the local folder (created if missing)")->required();
  sync->add_option("remote", a.sync.remote, "the remote folder (default /)");
  sync->add_flag("--watch", a.sync.watch, "keep syncing as either side changes, until Ctrl-C");
  sync->add_option("--max-delete", a.sync.max_delete,
                   "allow a pass to delete up to N files (default 1000, and at most half)");
}

int dispatch(const CLI::App& app, const global_options& g, const arguments& a) {
  auto ran = [&](const char* name) { return app.got_subcommand(name); };
  if (ran("put")) return run_put(g, a.first, a.second);
  if (ran("get")) return run_get(g, a.first, a.second);
  if (ran("ls")) return run_ls(g, a.list);
  if (ran("stat")) return run_stat(g, a.first);
  if (ran("rm")) return run_rm(g, a.first);
  if (ran("mv")) return run_mv(g, a.first, a.second);
  if (ran("mkdir")) return run_mkdir(g, a.first);
  if (ran("history")) return run_history(g, a.first);
  if (ran("restore")) return run_restore(g, a.first, a.revision);
  if (ran("undelete")) return run_undelete(g, a.first);
  if (ran("changes")) return run_changes(g, a.since);
  if (ran("watch")) return run_watch(g, a.since);
  if (ran("sync")) return run_sync(g, a.sync);
  return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"AutoSync: files, the change feed and folder sync from the command line"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command too
  global_options g;
  arguments a;
  add_global_options(app, g);
  add_file_commands(app, a);
  add_history_commands(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }
  if (g.token.empty()) {
    if (const char* token = std::getenv("AUTOSYNC_TOKEN")) g.token = token;
  }
  if (g.token.empty()) {
    return output(g).usage(
        "no token: pass --token TOKEN or set AUTOSYNC_TOKEN (for a development server: "
        "autosync-admin token issue --secret-file FILE --user USER)");
  }
  return dispatch(app, g, a);
}
