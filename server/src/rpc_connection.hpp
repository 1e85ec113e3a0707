// The server's side of one client connection: the two-party RPC network over the socket
// and the RPC system serving the connection's bootstrap capability, under the limits of
// rpc_limits that Cap'n Proto enforces per connection.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "autosync/server/node.hpp"

namespace autosync::server {

class rpc_connection {
public:
  // Serves `bootstrap` over `stream` (read through a buffer). A message larger than
  // limits.message_bytes_max ends the connection as soon as its header is read; with
  // limits.flow_bytes_max of calls unanswered, the connection is not read from until
  // answers bring it below that.
  rpc_connection(kj::Own<kj::AsyncIoStream> stream, capnp::Capability::Client bootstrap,
                 const rpc_limits& limits);

  // Resolves when the client disconnects (or the connection fails).
  kj::Promise<void> on_disconnect() { return network_->onDisconnect(); }

private:
  // Destroyed in reverse order: the RPC system before the network, the network before the
  // stream it reads.
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyVatNetwork> network_;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc_;
};

}  // namespace autosync::server
