#include "rpc_connection.hpp"

#include "autosync/schema/buffered_stream.hpp"

namespace autosync::server {

namespace {

// Cap'n Proto counts both limits in words, rpc_limits in bytes.
std::size_t words_of(std::size_t bytes) { return bytes / sizeof(capnp::word); }

}  // namespace

rpc_connection::rpc_connection(kj::Own<kj::AsyncIoStream> stream,
                               capnp::Capability::Client bootstrap, const rpc_limits& limits)
    : stream_(schema::buffered(kj::mv(stream), /*gather_writes=*/false)) {
  capnp::ReaderOptions reader;
  // Refuses a larger message as soon as its header is read, before its body.
  reader.traversalLimitInWords = words_of(limits.message_bytes_max);
  network_ = kj::heap<capnp::TwoPartyVatNetwork>(*stream_, capnp::rpc::twoparty::Side::SERVER,
                                                 reader);
  rpc_ = kj::heap(capnp::makeRpcServer(*network_, kj::mv(bootstrap)));
  rpc_->setFlowLimit(words_of(limits.flow_bytes_max));
}

}  // namespace autosync::server
