// The client's connection, login, namespace operations and subscriptions. Transfers
// (planning, upload, download) are in transfer.cpp.
#include <unistd.h>

#include <random>

#include "autosync/schema/buffered_stream.hpp"
#include "connection.hpp"

namespace autosync::sdk {

namespace {

// Replies may be large (a recursive list of a big tree); requests the server reads are
// limited by the server.
constexpr std::uint64_t reply_words_max = (1ull << 30) / sizeof(capnp::word);

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "device";
  return name;
}

// "host:port" -> host.
std::string host_of(const std::string& server) {
  auto colon = server.rfind(':');
  return colon == std::string::npos ? server : server.substr(0, colon);
}

// Changes arrive on the event loop: hand each to the subscriber, in order.
class listener_impl final : public rpc::ChangeListener::Server {
public:
  explicit listener_impl(client::impl& owner) : owner_(owner) {}

protected:
  kj::Promise<void> changed(ChangedContext context) override {
    auto c = change_from(context.getParams().getChange());
    if (c.seq <= owner_.subscription_cursor) return kj::READY_NOW;  // seen before a reconnect
    owner_.subscription_cursor = c.seq;
    if (owner_.on_change) owner_.on_change(c);
    return kj::READY_NOW;
  }
  kj::Promise<void> ended(EndedContext context) override {
    owner_.subscription_ended = error_from(context.getParams().getFailure());
    return kj::READY_NOW;
  }

private:
  client::impl& owner_;
};

}  // namespace

std::shared_ptr<thread_loop> thread_loop::get() {
  thread_local std::weak_ptr<thread_loop> current;
  auto loop = current.lock();
  if (!loop) {
    loop = std::make_shared<thread_loop>();
    current = loop;
  }
  return loop;
}

const char* to_string(change::kind kind) noexcept {
  switch (kind) {
    case change::kind::committed: return "committed";
    case change::kind::deleted: return "deleted";
    case change::kind::moved: return "moved";
    case change::kind::folder_created: return "folder_created";
    case change::kind::restored: return "restored";
    case change::kind::quota_changed: return "quota_changed";
  }
  return "unknown";
}

// --- from the wire -------------------------------------------------------------------------

capnp::Data::Reader bytes_of(const sha256_digest& d) { return {d.bytes.data(), d.bytes.size()}; }

sha256_digest digest_from(capnp::Data::Reader d) {
  auto parsed = sha256_digest::from_bytes(
      std::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
  return parsed ? *parsed : sha256_digest{};
}

entry entry_from(rpc::Entry::Reader e) {
  entry out;
  out.id = e.getId();
  out.path = text(e.getPath());
  out.folder = e.getFolder();
  out.revision = e.getRevision();
  out.size = e.getSize();
  out.hash = digest_from(e.getHash());
  out.mtime_us = e.getMtimeUs();
  out.device_id = text(e.getDeviceId());
  for (auto c : e.getChunks()) out.chunks.push_back({digest_from(c.getHash()), c.getSize()});
  return out;
}

version version_from(rpc::Version::Reader v) {
  version out;
  out.revision = v.getRevision();
  out.deleted = v.getDeleted();
  out.path = text(v.getPath());
  out.size = v.getSize();
  out.hash = digest_from(v.getHash());
  out.mtime_us = v.getMtimeUs();
  out.device_id = text(v.getDeviceId());
  out.timestamp_us = v.getTimestampUs();
  return out;
}

change change_from(rpc::Change::Reader c) {
  change out;
  out.what = static_cast<change::kind>(static_cast<int>(c.getKind()));
  out.seq = c.getSeq();
  out.path = text(c.getPath());
  out.from_path = text(c.getFromPath());
  out.folder = c.getFolder();
  if (c.hasEntry()) out.file = entry_from(c.getEntry());
  out.device_id = text(c.getDeviceId());
  out.timestamp_us = c.getTimestampUs();
  return out;
}

error error_from(rpc::Failure::Reader f) {
  using K = rpc::Failure::Kind;
  std::string message = text(f.getMessage());
  switch (f.getKind()) {
    case K::INVALID: return error(error_kind::invalid, message);
    case K::TOO_LARGE: return error(error_kind::too_large, message);
    case K::NOT_FOUND: return error(error_kind::not_found, message);
    case K::CONFLICT:
      if (f.hasCurrent()) {
        message += " (current revision " + std::to_string(f.getCurrent().getRevision()) + ")";
      }
      return error(error_kind::conflict, message);
    case K::QUOTA_EXCEEDED: return error(error_kind::quota_exceeded, message);
    case K::OVERLOADED: return error(error_kind::overloaded, message);
    case K::UNAVAILABLE: return error(error_kind::unavailable, message);
    case K::CORRUPTION: return error(error_kind::corruption, message);
    case K::INTERNAL: return error(error_kind::internal, message);
    case K::UNAUTHENTICATED: return error(error_kind::unauthenticated, message);
    case K::FORBIDDEN: return error(error_kind::forbidden, message);
    case K::RATE_LIMITED: return error(error_kind::rate_limited, message);
    case K::MISSING_CHUNKS: return error(error_kind::not_found, message);
    case K::STALE_CURSOR:
      return error(error_kind::stale_cursor, message);
  }
  return error(error_kind::internal, "an unknown failure: " + message);
}

call_error classify(rpc::Failure::Reader f) {
  call_error c{error_from(f)};
  switch (c.err.kind()) {
    case error_kind::overloaded:
    case error_kind::rate_limited:
    case error_kind::unavailable:
      c.retry = true;
      c.retry_after_ms = f.getRetryAfterMs();
      break;
    case error_kind::unauthenticated:
      // The session's token expired: a new login fails the same way unless the token
      // changed, which call() reports.
      c.retry = false;
      break;
    default: break;
  }
  return c;
}

// --- the connection ------------------------------------------------------------------------

status client::impl::connect_once() {
  auto colon = options.server.rfind(':');
  if (colon == std::string::npos) {
    return error(error_kind::invalid, "--server wants HOST:PORT, not \"" + options.server + "\"");
  }
  std::optional<error> failed;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    auto address = wait(io.provider->getNetwork().parseAddress(options.server));
    auto stream = wait(address->connect());
    if (tls) {
      auto name = options.tls_server_name.empty() ? host_of(options.server) : options.tls_server_name;
      stream = wait(tls->wrapClient(kj::mv(stream), name));
    }
    auto l = kj::heap<link>();
    l->stream = schema::buffered(kj::mv(stream), /*gather_writes=*/true);
    capnp::ReaderOptions reader;
    reader.traversalLimitInWords = reply_words_max;
    l->network = kj::heap<capnp::TwoPartyVatNetwork>(*l->stream, capnp::rpc::twoparty::Side::CLIENT,
                                                     reader);
    l->rpc = kj::heap(capnp::makeRpcClient(*l->network));
    capnp::MallocMessageBuilder vat;
    auto id = vat.initRoot<capnp::rpc::twoparty::VatId>();
    id.setSide(capnp::rpc::twoparty::Side::SERVER);
    auto gateway = l->rpc->bootstrap(id).castAs<rpc::Gateway>();
    auto request = gateway.loginRequest();
    request.setToken(options.token);
    request.setDeviceId(options.device_id);
    request.setProtocolVersion(rpc::PROTOCOL_VERSION);
    auto reply = wait(request.send());
    if (reply.hasFailure()) {
      failed = error_from(reply.getFailure());
      return;
    }
    user = text(reply.getUser());
    expires_at_s = reply.getExpiresAtS();
    l->session = reply.getSession();
    auto* raw = l.get();
    l->watch_disconnect =
        l->network->onDisconnect().then([raw] { raw->disconnected = true; }).eagerlyEvaluate(nullptr);
    conn = kj::mv(l);
    ++connections_made;
  })) {
    return error(error_kind::unavailable, "cannot reach " + options.server + ": " +
                                              std::string(e->getDescription().cStr()) +
                                              ": is autosyncd running there?");
  }
  if (failed) return *failed;
  if (on_change) {
    // The subscription is the listener's business: if the server refuses to resume it (a
    // cursor a restored server never reached, an expired token), the connection still
    // serves the caller's own calls, and wait_for_changes reports why it ended.
    status s = status::ok();
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] { s = subscribe_now(); })) {
      // The connection broke meanwhile: a retry's business, not an exception's.
      return error(error_kind::unavailable, "connection to " + options.server + " lost (" +
                                                std::string(e->getDescription().cStr()) + ")");
    }
    if (!s && s.err().kind() == error_kind::unavailable) return s;
    if (!s) subscription_ended = s.err();
  }
  return {};
}

status client::impl::subscribe_now() {
  subscription_ended.reset();  // about a subscription this one replaces
  auto request = conn->session.subscribeRequest();
  request.setListener(kj::heap<listener_impl>(*this));
  request.setCursor(subscription_cursor);
  auto reply = wait(request.send());
  if (reply.hasFailure()) return error_from(reply.getFailure());
  subscription = reply.getSubscription();
  return {};
}

status client::impl::resubscribe() {
  subscription = nullptr;
  subscription_ended.reset();
  auto done = call<bool>([this](rpc::Session::Client&) -> result<bool> {
    // Connecting resubscribes by itself: only an already open connection needs it here.
    if (subscription_ended) {
      throw server_failure{call_error{*subscription_ended, false}};
    }
    if (subscription == nullptr) {
      auto s = subscribe_now();
      if (!s) throw server_failure{call_error{s.err(), s.err().kind() == error_kind::unavailable}};
    }
    return true;
  });
  if (!done) return done.err();
  return {};
}

result<std::unique_ptr<client>> client::connect(connect_options options) {
  if (options.device_id.empty()) options.device_id = host_name();
  auto i = std::make_unique<impl>(std::move(options));
  if (i->options.tls_ca_file) {
    std::string pem;
    {
      FILE* f = std::fopen(i->options.tls_ca_file->c_str(), "rb");
      if (f == nullptr) {
        return error(error_kind::invalid, "cannot read the CA file " + i->options.tls_ca_file->string());
      }
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) pem.append(buf, n);
      std::fclose(f);
    }
    std::optional<error> bad;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      kj::TlsCertificate ca(pem.c_str());
      kj::TlsContext::Options tls_options;
      tls_options.useSystemTrustStore = false;
      tls_options.trustedCertificates = kj::arrayPtr(&ca, 1);
      tls_options.minVersion = kj::max(kj::TlsVersion::TLS_1_2, tls_options.minVersion);
      i->tls = kj::heap<kj::TlsContext>(kj::mv(tls_options));
    })) {
      return error(error_kind::invalid, "the CA file is not a PEM certificate: " +
                                            std::string(e->getDescription().cStr()));
    }
  }
  status connected = i->connect_once();
  for (int tries = 0; !connected && connected.err().kind() == error_kind::unavailable &&
                      tries < i->options.retries_max;
       ++tries) {
    i->sleep_ms(100u << tries);
    connected = i->connect_once();
  }
  i->settle();
  if (!connected) return connected.err();
  return std::unique_ptr<client>(new client(std::move(i)));
}

client::client(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}
client::~client() = default;

const std::string& client::user() const noexcept { return impl_->user; }
const std::string& client::device_id() const noexcept { return impl_->options.device_id; }
std::int64_t client::token_expires_at_s() const noexcept { return impl_->expires_at_s; }

std::string client::new_operation_id() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char digits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 2; ++i) {
    auto r = random();
    for (int j = 0; j < 16; ++j, r >>= 4) id += digits[r & 15];
  }
  return id;
}

// --- the namespace -------------------------------------------------------------------------

result<entry> client::stat(const std::string& path) {
  return impl_->call<entry>([&](rpc::Session::Client& s) -> result<entry> {
    auto request = s.statRequest();
    request.setPath(wire_text(path));
    auto reply = impl_->wait(request.send());
    check(reply);
    return entry_from(reply.getEntry());
  });
}

// A listing comes in pages of at most this many bytes (a large tree would not fit in one
// message); each page after the first is asked as of the first one's seq, so together they
// are one point in time.
constexpr std::uint32_t list_page_bytes = 4u << 20;

result<client::listing> client::list_with_cursor(const std::string& path,
                                                 const list_options& options) {
  listing out;
  bool more = true;
  bool first = true;
  while (more) {
    auto page = impl_->call<listing>([&](rpc::Session::Client& s) -> result<listing> {
      auto request = s.listRequest();
      request.setPath(wire_text(path));
      request.setRecursive(options.recursive);
      request.setAtSeq(first ? options.at_seq : out.seq);
      request.setAtTimeUs(first ? options.at_time_us : 0);
      if (!first) request.setAfter(wire_text(out.entries.back().path));
      request.setPageBytesMax(list_page_bytes);
      auto reply = impl_->wait(request.send());
      check(reply);
      listing got;
      for (auto e : reply.getEntries()) got.entries.push_back(entry_from(e));
      got.seq = reply.getSeq();
      got.seq_hash = digest_from(reply.getSeqHash());  // zero when the server sent none
      more = reply.getMore() && !got.entries.empty();
      return got;
    });
    if (!page) return page.err();
    if (first) {
      out.seq = page->seq;
      out.seq_hash = page->seq_hash;
    }
    for (auto& e : page->entries) out.entries.push_back(std::move(e));
    first = false;
  }
  return out;
}

result<std::vector<entry>> client::list(const std::string& path, const list_options& options) {
  auto l = list_with_cursor(path, options);
  if (!l) return l.err();
  return std::move(l->entries);
}

result<std::uint64_t> client::current_cursor() {
  auto l = list_with_cursor("/", {});
  if (!l) return l.err();
  return l->seq;
}

result<std::uint64_t> client::remove(const std::string& path, std::uint64_t base_revision) {
  const auto op = new_operation_id();
  return impl_->call<std::uint64_t>([&](rpc::Session::Client& s) -> result<std::uint64_t> {
    auto request = s.deleteRequest();
    request.setPath(wire_text(path));
    request.setBaseRevision(base_revision);
    request.setOperationId(op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return reply.getSeq();
  });
}

result<std::uint64_t> client::move(const std::string& from, const std::string& to) {
  const auto op = new_operation_id();
  return impl_->call<std::uint64_t>([&](rpc::Session::Client& s) -> result<std::uint64_t> {
    auto request = s.moveRequest();
    request.setFrom(wire_text(from));
    request.setTo(wire_text(to));
    request.setOperationId(op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return reply.getSeq();
  });
}

result<std::uint64_t> client::make_folder(const std::string& path) {
  const auto op = new_operation_id();
  return impl_->call<std::uint64_t>([&](rpc::Session::Client& s) -> result<std::uint64_t> {
    auto request = s.createFolderRequest();
    request.setPath(wire_text(path));
    request.setOperationId(op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return reply.getSeq();
  });
}

result<std::vector<version>> client::history(const std::string& path) {
  return impl_->call<std::vector<version>>(
      [&](rpc::Session::Client& s) -> result<std::vector<version>> {
        auto request = s.historyRequest();
        request.setPath(wire_text(path));
        auto reply = impl_->wait(request.send());
        check(reply);
        std::vector<version> out;
        for (auto v : reply.getVersions()) out.push_back(version_from(v));
        return out;
      });
}

result<entry> client::restore(const std::string& path, std::uint64_t revision) {
  const auto op = new_operation_id();
  return impl_->call<entry>([&](rpc::Session::Client& s) -> result<entry> {
    auto request = s.restoreRequest();
    request.setPath(wire_text(path));
    request.setRevision(revision);
    request.setOperationId(op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return entry_from(reply.getEntry());
  });
}

result<entry> client::undelete(const std::string& path) {
  const auto op = new_operation_id();
  return impl_->call<entry>([&](rpc::Session::Client& s) -> result<entry> {
    auto request = s.undeleteRequest();
    request.setPath(wire_text(path));
    request.setOperationId(op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return entry_from(reply.getEntry());
  });
}

// --- changes -------------------------------------------------------------------------------

result<change_page> client::changes(std::uint64_t cursor, std::uint32_t limit,
                                    const std::optional<sha256_digest>& cursor_hash) {
  return impl_->call<change_page>([&](rpc::Session::Client& s) -> result<change_page> {
    auto request = s.changesRequest();
    request.setCursor(cursor);
    request.setLimit(limit);
    if (cursor_hash) request.setCursorHash(bytes_of(*cursor_hash));
    auto reply = impl_->wait(request.send());
    check(reply);
    change_page page;
    for (auto c : reply.getChanges()) page.changes.push_back(change_from(c));
    page.cursor = reply.getCursor();
    page.cursor_hash = digest_from(reply.getCursorHash());  // zero when the server sent none
    page.more = reply.getMore();
    return page;
  });
}

status client::subscribe(std::uint64_t cursor, std::function<void(const change&)> fn) {
  impl_->on_change = std::move(fn);
  impl_->subscription_cursor = cursor;
  if (auto s = impl_->resubscribe(); !s) {
    impl_->on_change = nullptr;
    impl_->subscription_ended.reset();
    return s;
  }
  return {};
}

void client::unsubscribe() {
  impl_->on_change = nullptr;
  impl_->subscription = nullptr;
  impl_->subscription_ended.reset();
  impl_->settle();  // the release of the subscription leaves now: the server stops pushing
}

status client::wait_for_changes(std::chrono::milliseconds timeout,
                                const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  constexpr auto step = std::chrono::milliseconds(20);
  while (!(done && done())) {
    if (impl_->subscription_ended) {
      auto why = std::move(*impl_->subscription_ended);
      impl_->subscription_ended.reset();
      impl_->subscription = nullptr;
      if (why.kind() != error_kind::overloaded || !impl_->on_change) {
        impl_->on_change = nullptr;
        impl_->settle();  // the ended subscription's release leaves now
        return why;  // a new token is needed: the caller's to get
      }
      // Fell behind: take up again from the last change delivered.
      if (auto s = impl_->resubscribe(); !s) {
        impl_->on_change = nullptr;
        return s;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    if (!impl_->conn || impl_->conn->disconnected) {
      impl_->drop_connection();
      // Reconnecting resubscribes from the last change delivered.
      auto back = impl_->call<bool>([](rpc::Session::Client&) -> result<bool> { return true; });
      if (!back) return back.err();
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    impl_->sleep_ms(static_cast<std::uint32_t>(std::min(left, step).count()));
  }
  return {};
}

}  // namespace autosync::sdk
