// autosyncd: one AutoSync node. With no flags, the embedded default: data in
// ./autosync-data, a development token secret created there, RPC on 127.0.0.1:7400.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "autosync/base/secret_file.hpp"
#include "autosync/base/utc_time.hpp"
#include "autosync/server/node.hpp"

namespace {

using autosync::server::node_options;

struct flags {
  std::string data_dir = "autosync-data";
  std::string listen = "127.0.0.1:7400";
  std::string jwt_secret_file, jwt_public_key_file, jwt_issuer, jwt_audience;
  std::string tls_cert, tls_key, master_key_file, audit_log;
  double rate = 20000;
  std::size_t live_users_max = 10000;
  std::size_t actor_threads = 0;
  std::string retention = "30d";
  std::string retention_sweep = "auto";
  std::string request_deadline = "30s";
};

// The token policy the flags ask for; in development mode (no key flag), a secret in the
// data directory, created on first run.
autosync::result<autosync::server::token_policy> token_policy_of(const flags& f, bool& dev) {
  dev = false;
  if (!f.jwt_public_key_file.empty()) {
    return autosync::server::policy_from_public_key_file(f.jwt_public_key_file);
  }
  std::filesystem::path secret = f.jwt_secret_file;
  if (secret.empty()) {
    dev = true;
    secret = std::filesystem::path(f.data_dir) / "dev-jwt-secret";
    std::error_code ec;
    std::filesystem::create_directories(f.data_dir, ec);
    if (!std::filesystem::exists(secret)) {
      if (auto made = autosync::create_secret_file(secret); !made) return made.err();
    }
  }
  return autosync::server::policy_from_secret_file(secret);
}

// The --config file as CLI11 reads it (TOML, or INI with the same keys), but a key no flag
// has, or a key under a [section], is refused: CLI11 drops those without a word, and a
// dropped key means a default in its place (development mode instead of the JWT secret
// the operator meant). Throws CLI::ConfigError naming the key and saying what is valid.
class strict_config final : public CLI::ConfigBase {
public:
  explicit strict_config(const CLI::App& app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto items = CLI::ConfigBase::from_config(input);
    for (const auto& item : items) check(item);
    return items;
  }

private:
  void check(const CLI::ConfigItem& item) const {
    if (!item.parents.empty()) {
      std::string section = item.parents.front();
      for (std::size_t i = 1; i < item.parents.size(); ++i) section += "." + item.parents[i];
      // "++" and "--" are CLI11's marks for the start and end of a section.
      const bool mark = item.name == "++" || item.name == "--";
      const std::string what =
          mark ? "section [" + section + "]" : "key \"" + item.fullname() + "\"";
      throw CLI::ConfigError(what + ": autosyncd reads its keys only at the top level of the "
                                    "file, outside any [section] and without a prefix; " +
                             valid_keys());
    }
    if (known(item.name)) return;
    std::string dashed = item.name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    const std::string hint =
        dashed != item.name && known(dashed) ? " (did you mean \"" + dashed + "\"?)" : "";
    throw CLI::ConfigError("unknown key \"" + item.name + "\"" + hint + "; " + valid_keys());
  }

  bool known(const std::string& name) const {
    const auto* option = app_.get_option_no_throw("--" + name);
    return option != nullptr && option->get_configurable();
  }

  // The flags' long names: the keys a file may hold.
  std::string valid_keys() const {
    std::ostringstream out;
    out << "the keys are the flags' names without the dashes:";
    const char* separator = " ";
    for (const auto* option : app_.get_options()) {
      const auto& names = option->get_lnames();
      if (names.empty() || !option->get_configurable() || option == app_.get_help_ptr()) continue;
      out << separator << names.front();
      separator = ", ";
    }
    out << " (autosyncd --help says what each means)";
    return out.str();
  }

  const CLI::App& app_;
};

// jemalloc's control call: defined when jemalloc is linked in (server/CMakeLists.txt).
extern "C" int mallctl(const char* name, void* old, std::size_t* old_len, void* value,
                       std::size_t value_len) __attribute__((weak));

// Which malloc serves this process, for the start-up lines: a build that lost jemalloc
// runs, slower, and should say so.
std::string allocator_name() {
  if (mallctl == nullptr) return "glibc malloc (slower: build with jemalloc)";
  const char* version = nullptr;
  std::size_t length = sizeof version;
  if (mallctl("version", &version, &length, nullptr, 0) != 0 || version == nullptr) return "jemalloc";
  const std::string full(version);
  return "jemalloc " + full.substr(0, full.find('-'));
}

void print_welcome(const flags& f, const std::string& address, bool dev, bool tls) {
  std::cout << "autosyncd: serving " << (tls ? "TLS " : "") << "RPC on " << address
            << ", data in " << f.data_dir << "\n";
  std::cout << "autosyncd: memory allocator: " << allocator_name() << "\n";
  if (dev) {
    // Absolute paths: the commands work from any folder, not only the one started in.
    std::error_code ec;
    const auto secret =
        std::filesystem::absolute(std::filesystem::path(f.data_dir) / "dev-jwt-secret", ec).string();
    // The tools sit beside this program (build/bin/, or wherever it was installed).
    auto tools = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
    const auto tool = [&](const char* name) { return ec ? std::string(name) : (tools / name).string(); };
    std::cout << "DEVELOPMENT MODE: tokens are signed with the secret in " << secret
              << " (for production, pass --jwt-public-key-file or --jwt-secret-file)\n"
              << "  get a token:  export AUTOSYNC_TOKEN=$(" << tool("autosync-admin")
              << " token issue --secret-file " << secret << " --user alice --ttl 1h)\n"
              << "  connect:      " << tool("autosync") << " --server " << address << " ls /\n";
  }
  std::cout << "Stop with Ctrl-C or SIGTERM." << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"autosyncd: an AutoSync node"};
  flags f;
  auto* config = app.set_config("--config", "",
                                "a file (TOML or INI) with the same settings as the flags: "
                                "key = value, the keys named as the flags without the dashes");
  app.config_formatter(std::make_shared<strict_config>(app));
  app.add_option("--data-dir", f.data_dir, "where the journal and keys live")->capture_default_str();
  app.add_option("--listen", f.listen, "HOST:PORT for client RPC")->capture_default_str();
  app.add_option("--jwt-secret-file", f.jwt_secret_file, "HS256 secret (32 bytes or more)");
  app.add_option("--jwt-public-key-file", f.jwt_public_key_file,
                 "RS256/ES256 public key (PEM) of your OIDC provider");
  app.add_option("--jwt-issuer", f.jwt_issuer, "required iss claim");
  app.add_option("--jwt-audience", f.jwt_audience, "required aud claim");
  app.add_option("--tls-cert", f.tls_cert, "TLS certificate chain (PEM); with --tls-key");
  app.add_option("--tls-key", f.tls_key, "TLS private key (PEM)");
  app.add_option("--master-key-file", f.master_key_file,
                 "encryption-at-rest master key (default: DATA_DIR/master.key, created)");
  app.add_option("--audit-log", f.audit_log, "JSON-lines audit log (default: DATA_DIR/audit.log)");
  app.add_option("--rate-limit", f.rate, "requests per second per user")->capture_default_str();
  app.add_option("--live-users-max", f.live_users_max, "user actors in memory at most")
      ->capture_default_str();
  app.add_option("--actor-threads", f.actor_threads,
                 "threads running the user actors (0: half the cores, at least one)")
      ->capture_default_str();
  app.add_option("--retention", f.retention,
                 "how long deleted files and replaced revisions stay recoverable: 90s, 12h, "
                 "30d; 'forever' keeps them")
      ->capture_default_str();
  app.add_option("--retention-sweep", f.retention_sweep,
                 "how often retention visits every user, those who stopped calling too: 'auto' "
                 "(daily, or every 1/24 of --retention when that is shorter), a length of "
                 "time, or 'off'")
      ->capture_default_str();
  app.add_option("--request-deadline", f.request_deadline,
                 "a call not answered within this is answered 'unavailable, retry' (its work "
                 "still completes; a retry with the same operation id applies nothing twice)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    std::cerr << "autosyncd: config file " << config->as<std::string>() << ": " << e.what() << "\n";
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // Longer than this overflows the microsecond clock arithmetic of cutoffs and waits.
  constexpr std::chrono::seconds longest_duration = std::chrono::hours(24 * 36500);
  std::chrono::seconds retention{0};
  if (f.retention != "forever") {
    auto parsed = autosync::parse_duration(f.retention);
    if (!parsed) {
      std::cerr << "autosyncd: --retention " << f.retention
                << " is not a length of time: write it like 90s, 12h or 30d, or 'forever'\n";
      return 2;
    }
    retention = std::chrono::ceil<std::chrono::seconds>(*parsed);
    if (retention > longest_duration) {
      std::cerr << "autosyncd: --retention " << f.retention
                << " is longer than 100 years: write 'forever' to keep everything\n";
      return 2;
    }
  }
  std::optional<std::chrono::milliseconds> sweep;
  if (f.retention_sweep == "off") {
    sweep = std::chrono::milliseconds(0);
  } else if (f.retention_sweep != "auto") {
    auto parsed = autosync::parse_duration(f.retention_sweep);
    if (!parsed || parsed->count() <= 0 || *parsed > longest_duration) {
      std::cerr << "autosyncd: --retention-sweep " << f.retention_sweep
                << " is not a length of time up to 100 years: write it like 6h or 1d, or "
                   "'auto' or 'off'\n";
      return 2;
    }
    sweep = std::chrono::ceil<std::chrono::milliseconds>(*parsed);
  }
  // A day is no deadline any more (the SDK gives up on a call after two minutes), and far
  // longer overflows the timer's nanoseconds.
  constexpr std::chrono::milliseconds deadline_max = std::chrono::hours(24);
  const auto deadline = autosync::parse_duration(f.request_deadline);
  if (!deadline || *deadline > deadline_max) {
    std::cerr << "autosyncd: --request-deadline " << f.request_deadline
              << " is not a length of time from 1ms to 24h: write it like 500ms, 30s or 2m\n";
    return 2;
  }
  // Below one request a second a client waits seconds before each call, and a sync takes
  // hours: a slip, not a policy. Above a billion, no node gets near it.
  constexpr double rate_min = 1, rate_max = 1e9;
  if (!(f.rate >= rate_min && f.rate <= rate_max)) {  // false for NaN too
    std::cerr << "autosyncd: --rate-limit " << f.rate
              << ": the allowed range is 1 to 1000000000 requests per second per user\n";
    return 2;
  }

  if (f.tls_cert.empty() != f.tls_key.empty()) {
    std::cerr << "autosyncd: TLS needs both --tls-cert and --tls-key\n";
    return 2;
  }
  bool dev = false;
  auto tokens = token_policy_of(f, dev);
  if (!tokens) {
    std::cerr << "autosyncd: " << tokens.err().to_string() << "\n";
    return 2;
  }
  if (!f.jwt_issuer.empty()) tokens->issuer = f.jwt_issuer;
  if (!f.jwt_audience.empty()) tokens->audience = f.jwt_audience;

  node_options options;
  options.data_dir = f.data_dir;
  options.listen = f.listen;
  options.master_key_file = f.master_key_file;
  options.tokens = *tokens;
  if (!f.tls_cert.empty()) {
    options.tls_cert_file = f.tls_cert;
    options.tls_key_file = f.tls_key;
  }
  options.audit_file = f.audit_log;
  options.limits.user_requests_per_s = f.rate;
  options.limits.user_burst = 2 * f.rate;
  options.live_users_max = f.live_users_max;
  options.actor_threads = f.actor_threads;
  options.retention = retention;
  options.retention_sweep = sweep;
  options.limits.deadline = *deadline;

  // Every thread started from here on inherits the blocked signals; this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto node = autosync::server::node::start(options);
  if (!node) {
    std::cerr << "autosyncd: " << node.err().to_string() << "\n";
    return 1;
  }
  print_welcome(f, (*node)->address(), dev, options.tls_cert_file.has_value());
  int received = 0;
  sigwait(&stop_signals, &received);
  // A second signal stops the process at once: a clean stop that cannot finish (a log on a
  // stuck file system) must not leave it needing SIGKILL.
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  std::cout << "autosyncd: stopping (signal " << received << "): finishing writes (a second "
            << "signal stops at once)" << std::endl;
  node->reset();
  std::cout << "autosyncd: stopped cleanly" << std::endl;
  return 0;
}
