// The read buffer under RPC connections: bytes come out exactly as written, whatever the
// read sizes, and pipelined messages cost one read of the connection instead of several each.
#define BOOST_TEST_MODULE buffered_stream
#include "autosync/schema/buffered_stream.hpp"

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <boost/test/unit_test.hpp>
#include <random>
#include <string>

#include "autosync/schema/sync.capnp.h"

namespace {

// Passes everything through, counting the reads and writes that reach the connection;
// fails writes while told to.
struct stream_counts {
  int reads = 0;
  int writes = 0;
  bool fail_writes = false;
};
class counting_stream final : public kj::AsyncIoStream {
public:
  counting_stream(kj::Own<kj::AsyncIoStream> inner, stream_counts& counts)
      : inner_(kj::mv(inner)), counts_(counts) {}
  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    ++counts_.reads;
    return inner_->tryRead(buffer, min_bytes, max_bytes);
  }
  kj::Promise<void> write(const void* data, size_t size) override {
    if (counts_.fail_writes) return KJ_EXCEPTION(DISCONNECTED, "the connection broke");
    ++counts_.writes;
    return inner_->write(data, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    if (counts_.fail_writes) return KJ_EXCEPTION(DISCONNECTED, "the connection broke");
    ++counts_.writes;
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  stream_counts& counts_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(bytes_come_out_as_written_whatever_the_read_sizes) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  auto reader = autosync::schema::buffered(kj::mv(pipe.ends[1]), false);
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
  stream_counts counts;
  auto reader =
      autosync::schema::buffered(kj::heap<counting_stream>(kj::mv(pipe.ends[1]), counts), false);
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
  BOOST_TEST(counts.reads == 1);
}

namespace {


std::string read_all(kj::AsyncIoStream& from, kj::WaitScope& wait_scope) {
  std::string got;
  char piece[4096];
  for (;;) {
    const size_t n = from.tryRead(piece, 1, sizeof(piece)).wait(wait_scope);
    if (n == 0) return got;
    got.append(piece, n);
  }
}

kj::Promise<void> drain(kj::AsyncIoStream& from, std::string& got, kj::Array<char>& buffer) {
  return from.tryRead(buffer.begin(), 1, buffer.size()).then([&](size_t n) -> kj::Promise<void> {
    if (n == 0) return kj::READY_NOW;
    got.append(buffer.begin(), n);
    return drain(from, got, buffer);
  });
}

// A writer over one end of a pipe, counting the writes that reach it.
struct counted_writer {
  explicit counted_writer(bool gather)
      : writer(autosync::schema::buffered(
            kj::heap<counting_stream>(kj::mv(pipe.ends[0]), counts), gather)) {}
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TwoWayPipe pipe = io.provider->newTwoWayPipe();
  stream_counts counts;
  kj::Own<kj::AsyncIoStream> writer;
};
struct gathering : counted_writer {
  gathering() : counted_writer(true) {}
};
struct passing_through : counted_writer {
  passing_through() : counted_writer(false) {}
};

std::string pattern(size_t size, char seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i % 61);
  return s;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(small_writes_of_one_turn_leave_in_one_write, gathering) {
  std::string sent;
  for (int i = 0; i < 10; ++i) {
    const auto piece = pattern(100 + i, static_cast<char>('a' + i));
    writer->write(piece.data(), piece.size()).wait(io.waitScope);  // accepted at once
    sent += piece;
  }
  BOOST_TEST(counts.writes == 0);  // still gathered: the loop has not gone idle
  writer->shutdownWrite();
  BOOST_TEST((read_all(*pipe.ends[1], io.waitScope) == sent));
  BOOST_TEST(counts.writes == 1);
}

BOOST_FIXTURE_TEST_CASE(gathered_bytes_leave_when_the_loop_goes_idle, gathering) {
  const auto first = pattern(300, 'x');
  const auto second = pattern(200, 'y');
  writer->write(first.data(), first.size()).wait(io.waitScope);
  writer->write(second.data(), second.size()).wait(io.waitScope);
  // Waiting on the reading end lets the loop go idle: the bytes leave without a shutdown.
  std::string got(first.size() + second.size(), '\0');
  pipe.ends[1]->read(got.data(), got.size()).wait(io.waitScope);
  BOOST_TEST((got == first + second));
  BOOST_TEST(counts.writes == 1);
}

BOOST_FIXTURE_TEST_CASE(a_large_write_leaves_with_what_is_gathered_in_order, gathering) {
  // The large write outgrows the socket's buffer: the other end reads meanwhile.
  std::string got;
  auto buffer = kj::heapArray<char>(4096);
  auto reading = drain(*pipe.ends[1], got, buffer).eagerlyEvaluate(nullptr);
  const auto small = pattern(50, 's');
  const auto large = pattern(300 * 1024, 'L');
  const auto last = pattern(70, 't');
  writer->write(small.data(), small.size()).wait(io.waitScope);
  writer->write(large.data(), large.size()).wait(io.waitScope);
  writer->write(last.data(), last.size()).wait(io.waitScope);
  writer->shutdownWrite();
  reading.wait(io.waitScope);
  BOOST_TEST(got.size() == small.size() + large.size() + last.size());
  BOOST_TEST((got == small + large + last));
  BOOST_TEST(counts.writes == 2);  // the small one went with the large one
}

BOOST_FIXTURE_TEST_CASE(a_failed_send_fails_the_next_write, gathering) {
  const auto piece = pattern(100, 'f');
  writer->write(piece.data(), piece.size()).wait(io.waitScope);
  counts.fail_writes = true;
  io.waitScope.poll();  // the loop goes idle: the gathered bytes are sent, and fail
  auto next = writer->write(piece.data(), piece.size());
  BOOST_CHECK_THROW(next.wait(io.waitScope), kj::Exception);
}

BOOST_FIXTURE_TEST_CASE(a_failed_large_write_fails_the_next_write, gathering) {
  const auto large = pattern(100 * 1024, 'L');
  counts.fail_writes = true;
  BOOST_CHECK_THROW(writer->write(large.data(), large.size()).wait(io.waitScope), kj::Exception);
  counts.fail_writes = false;
  // Not accepted (and then lost or sent after a broken message): refused.
  const auto small = pattern(10, 's');
  BOOST_CHECK_THROW(writer->write(small.data(), small.size()).wait(io.waitScope), kj::Exception);
}

BOOST_FIXTURE_TEST_CASE(without_gathering_every_write_reaches_the_connection_at_once,
                        passing_through) {
  const auto piece = pattern(100, 'p');
  for (int i = 0; i < 3; ++i) writer->write(piece.data(), piece.size()).wait(io.waitScope);
  BOOST_TEST(counts.writes == 3);
}

// Nobody reads: a send sticks on the full socket, up to 64 KiB more is held meanwhile, and
// then a write waits. Once the other end reads, everything arrives whole and in order,
// the held bytes before the waiting write, and a large write after them.
BOOST_AUTO_TEST_CASE(while_a_send_is_stuck_writes_are_held_then_wait_and_keep_their_order) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  auto writer = autosync::schema::buffered(kj::mv(pipe.ends[0]), true);
  std::vector<std::string> pieces;
  std::string sent;
  kj::Maybe<kj::Promise<void>> waiting;
  for (int i = 0; i < 64 * 1024 && waiting == nullptr; ++i) {
    pieces.push_back(pattern(1000, static_cast<char>(i % 251)) + std::to_string(i));
    auto done = writer->write(pieces.back().data(), pieces.back().size());
    sent += pieces.back();
    io.waitScope.poll();  // the loop goes idle: what is held is sent
    if (done.poll(io.waitScope)) {
      done.wait(io.waitScope);
    } else {
      waiting = kj::mv(done);
    }
  }
  BOOST_REQUIRE(waiting != nullptr);
  std::string got;
  auto buffer = kj::heapArray<char>(64 * 1024);
  auto reading = drain(*pipe.ends[1], got, buffer).eagerlyEvaluate(nullptr);
  KJ_ASSERT_NONNULL(waiting).wait(io.waitScope);
  const auto large = pattern(300 * 1024, 'L');
  writer->write(large.data(), large.size()).wait(io.waitScope);
  sent += large;
  const auto last = pattern(70, 't');
  writer->write(last.data(), last.size()).wait(io.waitScope);
  sent += last;
  writer->shutdownWrite();
  reading.wait(io.waitScope);
  BOOST_TEST(got.size() == sent.size());
  BOOST_TEST((got == sent));
}
