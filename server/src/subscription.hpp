// Subscriptions: a listener capability receives each of a user's changes, in order.
#pragma once

#include <string>

#include "rpc_context.hpp"
#include "session.hpp"

namespace autosync::server {

// Subscriptions one connection may hold: each can queue 10,000 changes for a slow
// listener, so their number bounds what one client can make the server hold.
inline constexpr std::size_t subscriptions_per_connection_max = 16;

struct subscription_target {
  std::string user;
  std::int64_t ends_at_s = 0;     // the session's end: the subscription ends with it
  std::uint64_t cursor = 0;       // deliver the changes after this one
  std::shared_ptr<connection_state> connection;  // counted in its `subscriptions`
};

kj::Own<schema::rpc::Subscription::Server> make_subscription(
    rpc_context& ctx, subscription_target target, schema::rpc::ChangeListener::Client listener);

}  // namespace autosync::server
