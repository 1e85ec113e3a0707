// The limits rpc_limits sets, as Cap'n Proto applies them to a connection: here the flow
// limit, over an in-memory pipe, with calls the test keeps unanswered.
#define BOOST_TEST_MODULE server_rpc_connection
#include <boost/test/unit_test.hpp>

#include <kj/async-io.h>
#include <kj/vector.h>

#include <string>

#include "autosync/schema/sync.capnp.h"
#include "rpc_connection.hpp"

using namespace autosync::server;
namespace rpc = autosync::schema::rpc;

namespace {

// Takes every putChunk and answers none until told to.
class holding_session final : public rpc::Session::Server {
public:
  std::size_t started() const { return held_.size(); }
  void answer_all() {
    for (auto& f : held_) f->fulfill();
  }

protected:
  kj::Promise<void> putChunk(PutChunkContext) override {
    auto paf = kj::newPromiseAndFulfiller<void>();
    held_.add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

private:
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> held_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_connection_stops_being_read_at_flow_bytes_max_of_unanswered_calls) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  rpc_limits limits;
  limits.flow_bytes_max = 1u << 20;
  auto held = kj::heap<holding_session>();
  auto& session = *held;
  rpc_connection server(kj::mv(pipe.ends[0]), kj::mv(held), limits);

  capnp::TwoPartyVatNetwork network(*pipe.ends[1], capnp::rpc::twoparty::Side::CLIENT);
  auto client = capnp::makeRpcClient(network);
  capnp::MallocMessageBuilder vat;
  vat.initRoot<capnp::rpc::twoparty::VatId>().setSide(capnp::rpc::twoparty::Side::SERVER);
  auto remote = client.bootstrap(vat.getRoot<capnp::rpc::twoparty::VatId>()).castAs<rpc::Session>();

  // 20 calls of 128 KiB each (2.5 MiB), none answered: about 1 MiB of them are read.
  constexpr std::size_t call_bytes = 128u << 10;
  const std::string data(call_bytes, 'x');
  kj::Vector<kj::Promise<void>> answers;
  for (int i = 0; i < 20; ++i) {
    auto request = remote.putChunkRequest();
    request.setData({reinterpret_cast<const capnp::byte*>(data.data()), data.size()});
    answers.add(request.send().ignoreResult());
  }
  for (int i = 0; i < 100; ++i) io.waitScope.poll();
  const std::size_t expected = limits.flow_bytes_max / call_bytes;
  BOOST_TEST(session.started() >= expected - 1);
  BOOST_TEST(session.started() <= expected + 1);

  // Answers bring it below the limit: the rest are read and answered too.
  for (int round = 0; round < 10 && session.started() < 20; ++round) {
    session.answer_all();
    for (int i = 0; i < 100; ++i) io.waitScope.poll();
  }
  session.answer_all();
  kj::joinPromises(answers.releaseAsArray()).wait(io.waitScope);
  BOOST_TEST(session.started() == 20u);
}
