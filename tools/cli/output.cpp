#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "autosync/base/utc_time.hpp"
#include "cli.hpp"

namespace autosync::cli {

namespace {

// The progress line is redrawn at most this often: a terminal cannot show more, and
// writing faster costs the transfer time.
constexpr auto redraw_interval = std::chrono::milliseconds(100);
// Summaries list at most this many failed or skipped paths, then say how many more.
constexpr std::size_t listed_paths_max = 20;

std::size_t terminal_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 80;
}

// "0:42", "1:02:03".
std::string clock_text(std::uint64_t seconds) {
  char text[32];
  if (seconds >= 3600) {
    std::snprintf(text, sizeof(text), "%llu:%02llu:%02llu",
                  static_cast<unsigned long long>(seconds / 3600),
                  static_cast<unsigned long long>(seconds / 60 % 60),
                  static_cast<unsigned long long>(seconds % 60));
  } else {
    std::snprintf(text, sizeof(text), "%llu:%02llu", static_cast<unsigned long long>(seconds / 60),
                  static_cast<unsigned long long>(seconds % 60));
  }
  return text;
}

}  // namespace

// --- output --------------------------------------------------------------------------------

void output::text(const std::string& line) const {
  if (!options_.json) std::cout << line << "\n" << std::flush;
}

void output::record(const nlohmann::json& j) const {
  // Paths are bytes from file systems: never fail on invalid UTF-8.
  if (options_.json) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n"
              << std::flush;
  }
}

int output::fail(const std::string& doing, const error& e,
                 std::optional<std::string> advice_given) const {
  const auto advice = advice_given ? *advice_given : advice_for(e, options_);
  std::cerr << "autosync: " << doing << ": " << e.to_string() << "\n";
  if (!advice.empty()) std::cerr << "  what to do: " << advice << "\n";
  record({{"ok", false},
          {"doing", doing},
          {"error", to_string(e.kind())},
          {"message", e.message()},
          {"advice", advice}});
  return exit_failed;
}

int output::usage(const std::string& message) const {
  std::cerr << "autosync: " << message << "\n";
  record({{"ok", false}, {"error", "usage"}, {"message", message}});
  return exit_usage;
}

std::string advice_for(const error& e, const global_options& options) {
  switch (e.kind()) {
    case error_kind::unauthenticated:
      return "get a new token: autosync-admin token issue --secret-file FILE --user USER, then "
             "pass it with --token or AUTOSYNC_TOKEN";
    case error_kind::forbidden:
      return "this token does not allow it: use a token of the user who owns the files";
    case error_kind::conflict:
      return "it changed on the server meanwhile (or is in the way): look at it with autosync "
             "stat or ls, fetch the current version with autosync get, then re-run";
    case error_kind::not_found:
      return "check the path with autosync ls; deleted files are listed by autosync history "
             "and come back with autosync undelete";
    case error_kind::rate_limited:
      return "too many requests: wait a minute, then retry";
    case error_kind::overloaded:
      return "the server is busy: retry in a few seconds";
    case error_kind::local_io:
      return "fix the local disk or folder the message names (free space, permissions), "
             "then retry";
    case error_kind::unavailable:
      return "check that autosyncd is running at " + options.server +
             " (--server HOST:PORT) and reachable, then retry";
    case error_kind::quota_exceeded:
      return "free space (autosync rm; deleted files count until retention) or ask for a larger "
             "quota";
    case error_kind::too_large:
      return "split it into smaller files";
    case error_kind::corruption:
      return "stored data failed a check: tell the operator";
    case error_kind::internal:
      return "a bug in AutoSync: please report this message";
    case error_kind::stale_cursor:
      return "get a fresh cursor with autosync changes (no --since); autosync sync starts over "
             "by itself";
    case error_kind::invalid:
      return "";  // the message says what is wrong
  }
  return "";
}

std::optional<std::string> bad_remote_path(const std::string& path) {
  if (!path.empty() && path[0] == '/') return std::nullopt;
  return "remote paths are absolute, like /docs/report.pdf: \"" + path + "\" does not start with /";
}

// --- progress ------------------------------------------------------------------------------

progress_bar::progress_bar()
    : enabled_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

progress_bar::~progress_bar() {
  finish();
}

void progress_bar::update(const std::string& label, std::uint64_t bytes_done,
                          std::uint64_t bytes_total, std::uint64_t files_done,
                          std::uint64_t files_total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_drawn_ < redraw_interval && bytes_done < bytes_total) return;
  last_drawn_ = now;
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0.2 ? static_cast<double>(bytes_done) / seconds : 0;
  std::string right = human_bytes(bytes_done) + " / " + human_bytes(bytes_total);
  if (files_total > 0) {
    right += "  " + std::to_string(files_done) + "/" + std::to_string(files_total) + " files";
  }
  if (rate > 0) {
    right += "  " + human_bytes(static_cast<std::uint64_t>(rate)) + "/s";
    if (bytes_total > bytes_done) {
      right += "  " +
               clock_text(static_cast<std::uint64_t>(static_cast<double>(bytes_total - bytes_done) /
                                                     rate)) +
               " left";
    }
  }
  const int percent = bytes_total == 0 ? 100 : static_cast<int>(bytes_done * 100 / bytes_total);
  right = std::to_string(percent) + "%  " + right;
  const std::size_t width = terminal_columns() - 1;
  std::string left = label;
  const std::size_t room = width > right.size() + 2 ? width - right.size() - 2 : 0;
  if (left.size() > room) left = room > 3 ? "..." + left.substr(left.size() - (room - 3)) : "";
  std::cerr << "\r" << left << "  " << right << "\x1b[K" << std::flush;
}

void progress_bar::finish() {
  if (!enabled_ || !drawn_) return;
  std::cerr << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

std::string human_bytes(std::uint64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof(text), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof(text), "%.1f %s", value, units[unit]);
  }
  return text;
}

// --- JSON and text of the SDK's values -----------------------------------------------------

nlohmann::json to_json(const sdk::entry& e) {
  nlohmann::json j{{"path", e.path}, {"folder", e.folder}, {"id", e.id}, {"revision", e.revision}};
  if (!e.folder) {
    j["size"] = e.size;
    j["hash"] = e.hash.hex();
    j["mtime"] = format_utc(e.mtime_us);
    j["device"] = e.device_id;
    if (!e.chunks.empty()) j["chunks"] = e.chunks.size();
  }
  return j;
}

nlohmann::json to_json(const sdk::version& v) {
  return {{"revision", v.revision}, {"deleted", v.deleted},
          {"path", v.path},         {"size", v.size},
          {"hash", v.hash.hex()},   {"mtime", format_utc(v.mtime_us)},
          {"device", v.device_id},  {"time", format_utc(v.timestamp_us)}};
}

nlohmann::json to_json(const sdk::change& c) {
  nlohmann::json j{{"kind", sdk::to_string(c.what)},
                   {"seq", c.seq},
                   {"path", c.path},
                   {"folder", c.folder},
                   {"device", c.device_id},
                   {"time", format_utc(c.timestamp_us)}};
  if (!c.from_path.empty()) j["from"] = c.from_path;
  if (c.file) j["entry"] = to_json(*c.file);
  return j;
}

std::string describe(const sdk::change& c) {
  std::string line = format_utc(c.timestamp_us).substr(0, 19) + "  #" + std::to_string(c.seq) +
                     "  " + sdk::to_string(c.what) + "  ";
  if (c.what == sdk::change::kind::moved) line += c.from_path + " -> ";
  line += c.path;
  if (c.file && !c.file->folder) {
    line +=
        "  (" + human_bytes(c.file->size) + ", revision " + std::to_string(c.file->revision) + ")";
  }
  if (!c.device_id.empty()) line += "  by " + c.device_id;
  return line;
}

nlohmann::json to_json(const sdk::sync_summary& s) {
  nlohmann::json failed = nlohmann::json::array(), skipped = nlohmann::json::array();
  for (const auto& f : s.failed) {
    failed.push_back(
        {{"path", f.path}, {"error", to_string(f.err.kind())}, {"message", f.err.message()}});
  }
  for (const auto& k : s.skipped) skipped.push_back({{"path", k.path}, {"reason", k.reason}});
  return {{"uploaded", s.uploaded},
          {"downloaded", s.downloaded},
          {"deleted_local", s.deleted_local},
          {"deleted_remote", s.deleted_remote},
          {"moved_local", s.moved_local},
          {"moved_remote", s.moved_remote},
          {"folders_created_local", s.folders_created_local},
          {"folders_created_remote", s.folders_created_remote},
          {"conflicts", s.conflicts},
          {"bytes_sent", s.bytes_sent},
          {"bytes_received", s.bytes_received},
          {"cursor", s.cursor},
          {"failed", failed},
          {"skipped", skipped}};
}

std::string describe(const sdk::sync_summary& s) {
  std::string text;
  auto count = [&](std::size_t n, const char* what) {
    if (n == 0) return;
    text += (text.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  count(s.uploaded, "uploaded");
  count(s.downloaded, "downloaded");
  count(s.deleted_local, "deleted here");
  count(s.deleted_remote, "deleted on the server");
  count(s.moved_local, "moved here");
  count(s.moved_remote, "moved on the server");
  count(s.folders_created_local + s.folders_created_remote, "folders created");
  count(s.conflicts, "conflicted copies");
  if (text.empty()) text = "up to date";
  if (s.bytes_sent + s.bytes_received > 0) {
    text +=
        " (sent " + human_bytes(s.bytes_sent) + ", received " + human_bytes(s.bytes_received) + ")";
  }
  auto list = [&](const std::string& label, std::size_t n, auto&& line_of) {
    for (std::size_t i = 0; i < n && i < listed_paths_max; ++i) {
      text += "\n  " + label + ": " + line_of(i);
    }
    if (n > listed_paths_max) {
      text += "\n  ... and " + std::to_string(n - listed_paths_max) + " more " + label;
    }
  };
  list("failed", s.failed.size(), [&](std::size_t i) {
    return s.failed[i].path + ": " + s.failed[i].err.message() + " (retried on the next sync)";
  });
  list("skipped", s.skipped.size(),
       [&](std::size_t i) { return s.skipped[i].path + " " + s.skipped[i].reason; });
  return text;
}

}  // namespace autosync::cli
