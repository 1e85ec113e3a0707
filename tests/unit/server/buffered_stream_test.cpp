// The read buffer under RPC connections: bytes come out exactly as written, whatever the
// read sizes, and pipelined messages cost one read of the connection instead of several each.
#define BOOST_TEST_MODULE buffered_stream
#include <boost/test/unit_test.hpp>

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <kj/async-io.h>

#include <random>
#include <string>

#include "autosync/schema/buffered_stream.hpp"
#include "autosync/schema/sync.capnp.h"

namespace {

// Passes everything through, counting the reads that reach the connection.
class counting_stream final : public kj::AsyncIoStream {
public:
  counting_stream(kj::Own<kj::AsyncIoStream> inner, int& reads) : inner_(kj::mv(inner)), reads_(reads) {}
  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    ++reads_;
    return inner_->tryRead(buffer, min_bytes, max_bytes);
  }
  kj::Promise<void> write(const void* data, size_t size) override { return inner_->write(data, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  int& reads_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(bytes_come_out_as_written_whatever_the_read_sizes) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  auto reader = autosync::schema::buffered(kj::mv(pipe.ends[1]));
  std::mt19937 rng(7);
  std::string sent(300 * 1024, '\0');
  for (auto& c : sent) c = static_cast<char>(rng());
  // Driven by the event loop while the reads below wait, since it outgrows the socket.
  auto writing = pipe.ends[0]
                     ->write(sent.data(), sent.size())
                     .then([&] { pipe.ends[0]->shutdownWrite(); })
                     .eagerlyEvaluate(nullptr);
  std::string got;
  for (;;) {
    // Small reads served from the buffer, exact ones, and reads larger than the buffer.
    const size_t max = std::uniform_int_distribution<size_t>(1, 100 * 1024)(rng);
    const size_t min = std::uniform_int_distribution<size_t>(1, max)(rng);
    std::string piece(max, '\0');
    const size_t n = reader->tryRead(piece.data(), min, max).wait(io.waitScope);
    got.append(piece.data(), n);
    if (n < min) break;  // the end of the stream
  }
  writing.wait(io.waitScope);
  BOOST_TEST(got.size() == sent.size());
  BOOST_TEST((got == sent));
}

BOOST_AUTO_TEST_CASE(pipelined_messages_take_one_read_of_the_connection) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  int reads = 0;
  auto reader =
      autosync::schema::buffered(kj::heap<counting_stream>(kj::mv(pipe.ends[1]), reads));
  constexpr int messages = 10;
  for (int i = 0; i < messages; ++i) {
    capnp::MallocMessageBuilder m;
    auto failure = m.initRoot<autosync::schema::rpc::Failure>();
    failure.setMessage("message " + std::to_string(i));
    failure.setRetryAfterMs(static_cast<std::uint32_t>(i));
    capnp::writeMessage(*pipe.ends[0], m).wait(io.waitScope);
  }
  for (int i = 0; i < messages; ++i) {
    auto m = capnp::readMessage(*reader).wait(io.waitScope);
    auto failure = m->getRoot<autosync::schema::rpc::Failure>();
    BOOST_TEST(std::string(failure.getMessage().cStr()) == "message " + std::to_string(i));
    BOOST_TEST(failure.getRetryAfterMs() == static_cast<std::uint32_t>(i));
  }
  // Unbuffered, capnp reads each message's first word and then the rest: 20 reads.
  BOOST_TEST(reads == 1);
}
