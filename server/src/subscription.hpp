// Subscriptions: a listener capability receives each of a user's changes, in order.
#pragma once

#include <string>

#include "rpc_context.hpp"

namespace autosync::server {

struct subscription_target {
  std::string user;
  std::int64_t ends_at_s = 0;     // the session's end: the subscription ends with it
  std::uint64_t cursor = 0;       // deliver the changes after this one
};

kj::Own<schema::rpc::Subscription::Server> make_subscription(
    rpc_context& ctx, subscription_target target, schema::rpc::ChangeListener::Client listener);

}  // namespace autosync::server
