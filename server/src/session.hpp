// A logged-in session: one user's capability over the RPC (schema/sync.capnp, Session).
#pragma once

#include <memory>
#include <string>

#include "rpc_context.hpp"

namespace autosync::server {

// What every capability of one connection shares: the calls it has in flight.
struct connection_state {
  std::string peer;
  std::size_t in_flight = 0;
  std::size_t subscriptions = 0;  // live ones: each may queue up to 10,000 changes
};

struct session_identity {
  std::string user;
  std::string device_id;
  // The last second the session acts: as long as login accepts its token (the token's
  // `exp` plus the clock leeway, identity::accepted_until).
  std::int64_t ends_at_s = 0;
};

kj::Own<schema::rpc::Session::Server> make_session(rpc_context& ctx,
                                                   std::shared_ptr<connection_state> connection,
                                                   session_identity who);

}  // namespace autosync::server
