// The commands on single files and folders, and on the change feed.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "autosync/base/utc_time.hpp"
#include "cli.hpp"

namespace autosync::cli {

namespace {

// Changes per feed request when paging through it: the most the server allows.
constexpr std::uint32_t changes_page_max = 10000;
// `watch` looks at the stop flag this often while waiting for changes.
constexpr auto watch_step = std::chrono::milliseconds(500);

// "2026-11-21 19:50:08" (UTC), for listings.
std::string short_time(std::int64_t time_us) {
  auto text = format_utc(time_us).substr(0, 19);
  text[10] = ' ';
  return text;
}

std::string pad_left(const std::string& text, std::size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

// A command's success as a JSON record: {"ok": true, "command": ..., fields...}.
nlohmann::json done(const std::string& command, nlohmann::json fields = nlohmann::json::object()) {
  fields["ok"] = true;
  fields["command"] = command;
  return fields;
}

// Advice for an error that says a path is a folder where a file was meant, else the usual.
std::optional<std::string> advice_if_folder(const error& e, const std::string& advice) {
  const std::string tail = " is a folder";
  const auto& m = e.message();
  if (m.size() >= tail.size() && m.compare(m.size() - tail.size(), tail.size(), tail) == 0) {
    return advice;
  }
  return std::nullopt;
}

}  // namespace

volatile std::sig_atomic_t stop_requested = 0;

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = [](int) {
    stop_requested = 1;
    static const char note[] = "\nautosync: stopping (Ctrl-C again to quit at once)\n";
    const auto written = ::write(STDERR_FILENO, note, sizeof(note) - 1);
    (void)written;  // nothing to do about a failed write in a signal handler
  };
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the program at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

std::unique_ptr<sdk::client> connect(const global_options& g, const output& out) {
  sdk::connect_options options;
  options.server = g.server;
  options.token = g.token;
  options.device_id = g.device;
  if (!g.tls_ca.empty()) options.tls_ca_file = g.tls_ca;
  auto c = sdk::client::connect(std::move(options));
  if (!c) {
    out.fail("connect to " + g.server, c.err());
    return nullptr;
  }
  return std::move(*c);
}

int run_put(const global_options& g, const std::string& local, std::string remote) {
  output out(g);
  if (auto bad = bad_remote_path(remote)) return out.usage(*bad);
  std::error_code ec;
  if (std::filesystem::is_directory(local, ec)) {
    return out.usage(local + " is a folder: upload folders with autosync sync " + local + " " +
                     remote);
  }
  if (!std::filesystem::is_regular_file(local, ec)) return out.usage(local + " is not a file");
  if (remote.back() == '/') remote += std::filesystem::path(local).filename().string();
  auto c = connect(g, out);
  if (!c) return exit_failed;
  progress_bar bar;
  sdk::transfer_stats stats;
  sdk::put_options options;
  options.stats = &stats;
  options.progress = [&](std::uint64_t done, std::uint64_t total) {
    bar.update(remote, done, total);
  };
  auto put = c->put_file(local, remote, options);
  bar.finish();
  if (!put) {
    return out.fail("put " + remote, put.err(),
                    advice_if_folder(put.err(),
                                     "to put the file into that folder, end the "
                                     "remote path with /"));
  }
  out.text("uploaded " + local + " to " + remote + " (" + human_bytes(put->size) + ", revision " +
           std::to_string(put->revision) + "; sent " + human_bytes(stats.bytes_sent) + ")");
  out.record(done("put", {{"entry", to_json(*put)}, {"bytes_sent", stats.bytes_sent}}));
  return exit_ok;
}

int run_get(const global_options& g, const std::string& remote, const std::string& local) {
  output out(g);
  if (auto bad = bad_remote_path(remote)) return out.usage(*bad);
  std::filesystem::path target = local;
  std::error_code ec;
  if (std::filesystem::is_directory(target, ec)) {
    target /= std::filesystem::path(remote).filename();
  }
  auto c = connect(g, out);
  if (!c) return exit_failed;
  progress_bar bar;
  sdk::transfer_stats stats;
  sdk::get_options options;
  options.stats = &stats;
  options.progress = [&](std::uint64_t done, std::uint64_t total) {
    bar.update(remote, done, total);
  };
  auto got = c->get_file(remote, target, options);
  bar.finish();
  if (!got) {
    return out.fail("get " + remote, got.err(),
                    advice_if_folder(got.err(), "download folders with autosync sync " +
                                                    target.string() + " " + remote));
  }
  out.text("downloaded " + remote + " to " + target.string() + " (" + human_bytes(got->size) +
           ", revision " + std::to_string(got->revision) + ")");
  out.record(done("get", {{"entry", to_json(*got)},
                          {"local", target.string()},
                          {"bytes_received", stats.bytes_received}}));
  return exit_ok;
}

int run_ls(const global_options& g, const list_request& request) {
  output out(g);
  if (auto bad = bad_remote_path(request.path)) return out.usage(*bad);
  sdk::client::list_options options;
  options.recursive = request.recursive;
  options.at_seq = request.at_seq;
  if (!request.at_time.empty()) {
    const auto at = parse_utc(request.at_time);
    if (!at) {
      return out.usage("--at-time wants a UTC time like 2026-11-21T19:50:08Z, not \"" +
                       request.at_time + "\"");
    }
    options.at_time_us = *at;
  }
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto entries = c->list(request.path, options);
  if (!entries) return out.fail("ls " + request.path, entries.err());
  for (const auto& e : *entries) {
    out.record(to_json(e));
    if (e.folder) {
      out.text(pad_left("-", 10) + "  " + std::string(19, ' ') + "  " + e.path + "/");
    } else {
      out.text(pad_left(human_bytes(e.size), 10) + "  " + short_time(e.mtime_us) + "  " + e.path);
    }
  }
  return exit_ok;
}

int run_stat(const global_options& g, const std::string& path) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto e = c->stat(path);
  if (!e) return out.fail("stat " + path, e.err());
  out.record(to_json(*e));
  out.text("path:      " + e->path);
  out.text(std::string("type:      ") + (e->folder ? "folder" : "file"));
  out.text("id:        " + std::to_string(e->id));
  out.text("revision:  " + std::to_string(e->revision));
  if (!e->folder) {
    out.text("size:      " + human_bytes(e->size) + " (" + std::to_string(e->size) + " bytes)");
    out.text("sha256:    " + e->hash.hex());
    out.text("modified:  " + format_utc(e->mtime_us));
    out.text("device:    " + e->device_id);
    out.text("chunks:    " + std::to_string(e->chunks.size()));
  }
  return exit_ok;
}

int run_rm(const global_options& g, const std::string& path) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto seq = c->remove(path);
  if (!seq) return out.fail("rm " + path, seq.err());
  out.text("deleted " + path + " (change #" + std::to_string(*seq) +
           "); to bring it back: autosync undelete " + path);
  out.record(done("rm", {{"path", path}, {"seq", *seq}}));
  return exit_ok;
}

int run_mv(const global_options& g, const std::string& from, const std::string& to) {
  output out(g);
  if (auto bad = bad_remote_path(from)) return out.usage(*bad);
  if (auto bad = bad_remote_path(to)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto seq = c->move(from, to);
  if (!seq) return out.fail("mv " + from + " " + to, seq.err());
  out.text("moved " + from + " to " + to + " (change #" + std::to_string(*seq) + ")");
  out.record(done("mv", {{"from", from}, {"to", to}, {"seq", *seq}}));
  return exit_ok;
}

int run_mkdir(const global_options& g, const std::string& path) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto seq = c->make_folder(path);
  if (!seq) return out.fail("mkdir " + path, seq.err());
  out.text("created the folder " + path + " (change #" + std::to_string(*seq) + ")");
  out.record(done("mkdir", {{"path", path}, {"seq", *seq}}));
  return exit_ok;
}

int run_history(const global_options& g, const std::string& path) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto versions = c->history(path);
  if (!versions) return out.fail("history " + path, versions.err());
  for (const auto& v : *versions) {
    out.record(to_json(v));
    std::string line =
        pad_left("#" + std::to_string(v.revision), 8) + "  " + short_time(v.timestamp_us) + "  ";
    line += v.deleted ? pad_left("deleted", 10) : pad_left(human_bytes(v.size), 10);
    line += "  " + v.path + (v.device_id.empty() ? "" : "  by " + v.device_id);
    out.text(line);
  }
  if (!versions->empty()) {
    out.text("to go back to a revision: autosync restore " + path + " REVISION");
  }
  return exit_ok;
}

int run_restore(const global_options& g, const std::string& path, std::uint64_t revision) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto e = c->restore(path, revision);
  if (!e) return out.fail("restore " + path + " " + std::to_string(revision), e.err());
  out.text("restored " + e->path + " to the content of revision " + std::to_string(revision) +
           ": it is now revision " + std::to_string(e->revision));
  out.record(done("restore", {{"entry", to_json(*e)}}));
  return exit_ok;
}

int run_undelete(const global_options& g, const std::string& path) {
  output out(g);
  if (auto bad = bad_remote_path(path)) return out.usage(*bad);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  auto e = c->undelete(path);
  if (!e) return out.fail("undelete " + path, e.err());
  out.text("undeleted " + e->path + " (" + human_bytes(e->size) + ", revision " +
           std::to_string(e->revision) + ")");
  out.record(done("undelete", {{"entry", to_json(*e)}}));
  return exit_ok;
}

int run_changes(const global_options& g, std::optional<std::uint64_t> since) {
  output out(g);
  auto c = connect(g, out);
  if (!c) return exit_failed;
  std::uint64_t cursor = since.value_or(0);
  for (;;) {
    auto page = c->changes(cursor, changes_page_max);
    if (!page) return out.fail("changes --since " + std::to_string(cursor), page.err());
    for (const auto& change : page->changes) {
      out.record(to_json(change));
      out.text(describe(change));
    }
    cursor = page->cursor;
    if (!page->more) break;
  }
  out.text("cursor " + std::to_string(cursor) + "; what comes next: autosync changes --since " +
           std::to_string(cursor));
  out.record({{"cursor", cursor}});
  return exit_ok;
}

int run_watch(const global_options& g, std::optional<std::uint64_t> since) {
  output out(g);
  install_stop_signals();
  auto c = connect(g, out);
  if (!c) return exit_failed;
  std::uint64_t cursor = 0;
  if (since) {
    cursor = *since;
  } else {
    auto now = c->current_cursor();
    if (!now) return out.fail("watch", now.err());
    cursor = *now;
  }
  auto subscribed = c->subscribe(cursor, [&](const sdk::change& change) {
    out.record(to_json(change));
    out.text(describe(change));
  });
  if (!subscribed) return out.fail("watch", subscribed.err());
  if (!out.json()) std::cerr << "watching changes after #" << cursor << "; Ctrl-C to stop\n";
  while (stop_requested == 0) {
    auto waited = c->wait_for_changes(watch_step, [] { return stop_requested != 0; });
    if (!waited) return out.fail("watch", waited.err());
  }
  return exit_ok;
}

}  // namespace autosync::cli
