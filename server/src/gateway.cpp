// The bootstrap capability: login, and nothing else. A session is made only for a token
// that verifies; every refusal is answered (never an exception) and audited.
#include <chrono>

#include "autosync/actors/path.hpp"
#include "rpc_context.hpp"
#include "session.hpp"
#include "wire.hpp"

namespace autosync::server {

namespace rpc = schema::rpc;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr std::size_t device_id_bytes_max = 64;

// "10.0.0.7:51234" -> "10.0.0.7", "[::1]:51234" -> "[::1]": the client's machine, whatever
// port it came from.
std::string address_of(const std::string& peer) {
  const auto colon = peer.rfind(':');
  if (colon == std::string::npos || peer.find(']', colon) != std::string::npos) return peer;
  return peer.substr(0, colon);
}

status check_device_id(std::string_view device) {
  if (device.empty() || device.size() > device_id_bytes_max) {
    return error(error_kind::invalid, "a device id of 1 to 64 characters is required");
  }
  // Device ids are journaled with every change and shown to people (history, conflicted
  // copies' names): text, like a path's names.
  if (!actors::is_clean_text(device)) {
    return error(error_kind::invalid,
                 "a device id must be UTF-8 text without control characters");
  }
  return {};
}

class gateway_impl final : public rpc::Gateway::Server {
public:
  gateway_impl(rpc_context& ctx, std::string peer)
      : ctx_(ctx), connection_(std::make_shared<connection_state>()) {
    connection_->peer = std::move(peer);
  }

protected:
  kj::Promise<void> login(LoginContext context) override {
    auto p = context.getParams();
    auto results = context.getResults();
    const auto now = now_us();
    auto who = verify_token(ctx_.tokens, text_of(p.getToken()), now / 1000000);
    if (!who) {
      // Failed logins are budgeted per client address: beyond it they are refused as rate
      // limited and leave no audit line each, so a flood cannot fill the disk. A valid token
      // is never held back (a client behind the same address as a flood still logs in).
      const auto address = address_of(connection_->peer);
      if (auto wait_ms = ctx_.failed_logins.admit(address, now); wait_ms > 0) {
        auto failure = results.initFailure();
        to_wire(error(error_kind::rate_limited, "too many failed logins from " + address +
                                                    ": retry in " + std::to_string(wait_ms) +
                                                    " ms with a valid token"),
                failure);
        failure.setRetryAfterMs(wait_ms);
        return kj::READY_NOW;
      }
      audit("login_failed", "", who.err().message());
      to_wire(who.err(), results.initFailure());
      return kj::READY_NOW;
    }
    const std::string device = text_of(p.getDeviceId());
    if (auto ok = check_device_id(device); !ok) {
      audit("login_failed", who->user, ok.err().message());
      to_wire(ok.err(), results.initFailure());
      return kj::READY_NOW;
    }
    if (p.getProtocolVersion() > rpc::PROTOCOL_VERSION) {
      const error too_new(error_kind::invalid, "the client speaks protocol version " +
                                                   std::to_string(p.getProtocolVersion()) +
                                                   ", this server " +
                                                   std::to_string(rpc::PROTOCOL_VERSION) +
                                                   ": upgrade the server");
      audit("login_failed", who->user, too_new.message());
      to_wire(too_new, results.initFailure());
      return kj::READY_NOW;
    }
    audit("login", who->user, "device " + device);
    results.setUser(who->user);
    results.setExpiresAtS(who->expires_at);
    results.setSession(
        make_session(ctx_, connection_, session_identity{who->user, device, who->accepted_until}));
    return kj::READY_NOW;
  }

private:
  void audit(const std::string& action, const std::string& user, const std::string& detail) {
    if (ctx_.audit == nullptr) return;
    ctx_.audit->write({now_us(), action, user, connection_->peer, "", detail});
  }

  rpc_context& ctx_;
  std::shared_ptr<connection_state> connection_;
};

}  // namespace

kj::Own<rpc::Gateway::Server> make_gateway(rpc_context& ctx, std::string peer) {
  return kj::heap<gateway_impl>(ctx, std::move(peer));
}

}  // namespace autosync::server
