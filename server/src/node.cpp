// Wiring a node: journal -> event store -> user actors (CAF) -> RPC gateway (kj thread).
// Start-up order is that; shutdown is the reverse, so nothing is called after it is gone:
// the gateway stops first (no new calls), then the user actors finish their appends and
// snapshot, then the pool drains, then the journal closes.
#include "autosync/server/node.hpp"

#include <caf/all.hpp>
#include <kj/async-io.h>
#include <kj/compat/tls.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <condition_variable>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "autosync/actors/event_store.hpp"
#include "autosync/base/thread_name.hpp"
#include "retention.hpp"
#include "rpc_connection.hpp"
#include "rpc_context.hpp"

namespace autosync::server {

namespace {

result<std::string> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return error(error_kind::invalid, "cannot read " + file.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string peer_of(kj::AsyncIoStream& stream) {
  sockaddr_storage addr{};
  kj::uint len = sizeof(addr);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                     [&] { stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &len); })) {
    return "unknown";
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in->sin6_port));
  }
  return "unknown";
}

// An accept that failed is tried again after this: the usual causes (no file descriptor or
// memory left: EMFILE, ENFILE, ENOBUFS, ENOMEM) pass once connections close, and trying at
// once would spin, as the waiting connection keeps the socket readable.
constexpr auto accept_retry_delay = 100 * kj::MILLISECONDS;
// While accepts keep failing, one line says so this often, with the count since the last.
constexpr auto accept_failure_report_every = std::chrono::seconds(10);

// Says on stderr why accepts fail, at most once per accept_failure_report_every.
class accept_failure_log {
public:
  void failed(const kj::Exception& e) {
    const auto now = std::chrono::steady_clock::now();
    if (reported_ && now - *reported_ < accept_failure_report_every) {
      ++unreported_;
      return;
    }
    std::cerr << "autosyncd: cannot accept a connection (" << e.getDescription().cStr()
              << "); the connections it has are served, and accepting is tried again every "
                 "100 ms";
    if (unreported_ > 0) std::cerr << " (" << unreported_ << " more failed since the last report)";
    std::cerr << std::endl;
    reported_ = now;
    unreported_ = 0;
  }

private:
  std::optional<std::chrono::steady_clock::time_point> reported_;
  std::uint64_t unreported_ = 0;
};

class connection_errors final : public kj::TaskSet::ErrorHandler {
public:
  void taskFailed(kj::Exception&& e) override {
    // A client that vanished or spoke garbage: its connection ends, the others go on.
    if (e.getType() == kj::Exception::Type::DISCONNECTED) return;
    std::cerr << "autosyncd: a connection ended: " << e.getDescription().cStr() << "\n";
  }
};

}  // namespace

struct node::impl {
  node_options options;
  // Before the actors: a command's audit line is written from its outcome on an actor
  // thread, so the log must outlive them.
  std::unique_ptr<audit_log> audit;
  std::unique_ptr<journal::journal> journal;
  std::unique_ptr<actors::journal_event_store> store;
  std::unique_ptr<caf::actor_system_config> caf_config;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<actors::user_directory> users;
  std::unique_ptr<blocking_pool> pool;
  std::thread rpc_thread;
  std::string address;
  std::uint16_t port = 0;
  std::function<void(bool)> stop_rpc;  // set by the RPC thread once it listens
  // The retention sweep (`retention-sweep`): sessions apply their user's retention when it
  // is due, which never happens for a user who stops calling. Once per sweep interval
  // this visits every user in the journal, one at a time (each visit waits for the user's
  // reclaim), so a sweep never stampedes recoveries.
  std::thread sweeper;
  std::mutex sweep_mutex;
  std::condition_variable sweep_cv;
  bool sweep_stopping = false;
  void sweep_loop();

  void serve(std::promise<status> ready);
  // Accepts connections until the promise is dropped; a failed accept (out of file
  // descriptors, say) is reported and tried again after a pause, never the loop's end.
  kj::Promise<void> accept_loop(kj::ConnectionReceiver& receiver, rpc_context& ctx,
                                kj::TlsContext* tls, kj::TaskSet& tasks);
  accept_failure_log accept_failures;  // the RPC thread's
  kj::Promise<void> serve_connection(rpc_context& ctx, kj::Own<kj::AsyncIoStream> stream,
                                     std::string peer);
};

kj::Promise<void> node::impl::serve_connection(rpc_context& ctx,
                                               kj::Own<kj::AsyncIoStream> stream,
                                               std::string peer) {
  auto c = kj::heap<rpc_connection>(kj::mv(stream), make_gateway(ctx, peer), options.limits);
  auto done = c->on_disconnect();
  return done.attach(kj::mv(c));
}

kj::Promise<void> node::impl::accept_loop(kj::ConnectionReceiver& receiver, rpc_context& ctx,
                                          kj::TlsContext* tls, kj::TaskSet& tasks) {
  // evalNow: kj's accept() throws at once when the socket was already readable.
  return kj::evalNow([&receiver] { return receiver.accept(); })
      .then(
          [this, &ctx, tls, &tasks](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
            auto peer = peer_of(*stream);
            if (tls == nullptr) {
              tasks.add(serve_connection(ctx, kj::mv(stream), std::move(peer)));
            } else {
              // The handshake runs per connection: a client that fails it fails alone.
              tasks.add(tls->wrapServer(kj::mv(stream))
                            .then([this, &ctx, peer](kj::Own<kj::AsyncIoStream> secured) {
                              return serve_connection(ctx, kj::mv(secured), peer);
                            }));
            }
            return kj::READY_NOW;
          },
          [this, &ctx](kj::Exception&& e) -> kj::Promise<void> {
            accept_failures.failed(e);
            return ctx.timer.afterDelay(accept_retry_delay);
          })
      .then([this, &receiver, &ctx, tls, &tasks] {
        return accept_loop(receiver, ctx, tls, tasks);
      });
}

void node::impl::sweep_loop() {
  const auto every = options.retention_sweep.value_or(sweep_interval(options.retention));
  const std::int64_t retention_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options.retention).count();
  auto stopping = [this](std::chrono::milliseconds wait) {
    std::unique_lock lock(sweep_mutex);
    return sweep_cv.wait_for(lock, wait, [this] { return sweep_stopping; });
  };
  // The first sweep comes within an hour of the start: a node restarted more often than
  // its interval must still sweep. Each next one, `every` after the previous one ended.
  for (auto wait = std::min<std::chrono::milliseconds>(every, std::chrono::hours(1));
       !stopping(wait); wait = every) {
    std::vector<std::string> names;
    // A user whose head cannot be read is still visited: its actor reports the damage.
    auto listed = journal->list_users([&](std::string_view user, const result<journal::user_head>&) {
      names.emplace_back(user);
      return true;
    });
    if (!listed) std::cerr << "autosyncd: retention sweep: " << listed.to_string() << "\n";
    for (const auto& user : names) {
      const auto now = now_us();
      auto visited = std::make_shared<std::promise<void>>();
      auto visit_done = visited->get_future();
      apply_retention(*users, audit.get(), user, now, now - retention_us, "retention sweep",
                      [visited] { visited->set_value(); });
      while (visit_done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (stopping(std::chrono::milliseconds(0))) return;
      }
      if (stopping(std::chrono::milliseconds(0))) return;
    }
  }
}

void node::impl::serve(std::promise<status> ready) {
  bool listening = false;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    auto io = kj::setupAsyncIo();
    // Before everything an answer can reach, so it goes after all of them.
    reply_doorbell doorbell;
    auto answers = doorbell.run().eagerlyEvaluate(nullptr);
    rpc_context ctx{*journal, *store, *users, *pool, options.tokens, audit.get(), options.limits,
                    io.provider->getTimer(),
                    rate_limiter(options.limits.user_requests_per_s, options.limits.user_burst),
                    retention_schedule(options.retention)};
    kj::Own<kj::TlsContext> tls;
    kj::Own<kj::TlsKeypair> keypair;
    if (options.tls_cert_file && options.tls_key_file) {
      auto cert = read_file(*options.tls_cert_file);
      auto key = read_file(*options.tls_key_file);
      if (!cert || !key) KJ_FAIL_REQUIRE("cannot read the TLS certificate or key file");
      keypair = kj::heap<kj::TlsKeypair>(kj::TlsKeypair{kj::TlsPrivateKey(key->c_str()),
                                                        kj::TlsCertificate(cert->c_str())});
      kj::TlsContext::Options tls_options;
      tls_options.minVersion = kj::max(kj::TlsVersion::TLS_1_2, tls_options.minVersion);
      tls_options.defaultKeypair = *keypair;
      tls = kj::heap<kj::TlsContext>(kj::mv(tls_options));
    }
    auto address = io.provider->getNetwork().parseAddress(options.listen).wait(io.waitScope);
    auto receiver = address->listen();
    port = static_cast<std::uint16_t>(receiver->getPort());
    this->address = options.listen.substr(0, options.listen.rfind(':')) + ":" +
                    std::to_string(port);
    auto stop = make_cross_thread_reply<bool>();
    stop_rpc = stop.fulfil;
    listening = true;
    ready.set_value(status{});

    connection_errors errors;
    kj::TaskSet connections(errors);
    accept_loop(*receiver, ctx, tls.get(), connections)
        .exclusiveJoin(stop.promise.ignoreResult())
        .wait(io.waitScope);
  })) {
    if (!listening) {
      ready.set_value(error(error_kind::unavailable,
                            "cannot serve on " + options.listen + ": " +
                                std::string(e->getDescription().cStr())));
    } else {
      std::cerr << "autosyncd: the RPC loop failed: " << e->getDescription().cStr() << "\n";
    }
  }
}

result<std::unique_ptr<node>> node::start(node_options options) {
  auto self = std::make_unique<impl>();
  self->options = std::move(options);
  auto& opts = self->options;
  std::error_code ec;
  std::filesystem::create_directories(opts.data_dir, ec);
  if (ec) {
    return error(error_kind::unavailable,
                 "cannot create the data directory " + opts.data_dir.string() + ": " + ec.message());
  }
  auto key_file = opts.master_key_file.empty() ? opts.data_dir / "master.key" : opts.master_key_file;
  auto key = std::filesystem::exists(key_file) ? journal::load_master_key(key_file)
                                               : journal::create_master_key_file(key_file);
  if (!key) return std::move(key).err();
  journal::options jo;
  jo.dir = opts.data_dir;  // the journal is the data folder: autosync-replay opens the same
  jo.master_key = *key;
  auto j = journal::journal::open(std::move(jo));
  if (!j) return std::move(j).err();
  self->journal = std::move(j).value();
  auto audit = audit_log::open(opts.audit_file.empty() ? opts.data_dir / "audit.log" : opts.audit_file);
  if (!audit) return std::move(audit).err();
  self->audit = std::move(audit).value();
  self->store = std::make_unique<actors::journal_event_store>(*self->journal);
  self->caf_config = std::make_unique<caf::actor_system_config>();
  actors::configure_scheduler(*self->caf_config, opts.actor_threads);
  self->system = std::make_unique<caf::actor_system>(*self->caf_config);
  actors::directory_options d;
  d.user.snapshot_every = opts.snapshot_every;
  d.idle_timeout = opts.idle_user_timeout;
  d.live_users_max = opts.live_users_max;
  self->users = std::make_unique<actors::user_directory>(*self->system, *self->store, d);
  self->pool = std::make_unique<blocking_pool>(opts.blocking_threads, "rpc-blocking");

  std::promise<status> ready;
  auto listening = ready.get_future();
  self->rpc_thread = std::thread([s = self.get(), r = std::move(ready)]() mutable {
    name_this_thread("rpc-loop");
    s->serve(std::move(r));
  });
  auto started = listening.get();
  if (!started) {
    self->rpc_thread.join();
    return std::move(started).err();
  }
  if (opts.retention.count() > 0 && opts.retention_sweep.value_or(std::chrono::hours(1)).count() > 0) {
    self->sweeper = std::thread([s = self.get()] {
      name_this_thread("retention-sweep");
      s->sweep_loop();
    });
  }
  return std::unique_ptr<node>(new node(std::move(self)));
}

node::node(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

node::~node() {
  {
    std::lock_guard lock(impl_->sweep_mutex);
    impl_->sweep_stopping = true;
  }
  impl_->sweep_cv.notify_all();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
  if (impl_->stop_rpc) impl_->stop_rpc(true);
  impl_->rpc_thread.join();
  impl_->users.reset();
  impl_->pool.reset();
  impl_->system.reset();
  impl_->journal.reset();
}

const std::string& node::address() const noexcept { return impl_->address; }
std::uint16_t node::port() const noexcept { return impl_->port; }

}  // namespace autosync::server
