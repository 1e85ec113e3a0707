#include "autosync/schema/buffered_stream.hpp"

#include <cstring>

namespace autosync::schema {

namespace {

class buffered_stream final : public kj::AsyncIoStream {
public:
  explicit buffered_stream(kj::Own<kj::AsyncIoStream> inner)
      : inner_(kj::mv(inner)), buffer_(kj::heapArray<kj::byte>(64 * 1024)) {}

  kj::Promise<size_t> tryRead(void* out, size_t min_bytes, size_t max_bytes) override {
    auto* to = static_cast<kj::byte*>(out);
    const size_t held = end_ - begin_;
    const size_t from_buffer = kj::min(held, max_bytes);
    std::memcpy(to, buffer_.begin() + begin_, from_buffer);
    begin_ += from_buffer;
    if (from_buffer >= min_bytes) return from_buffer;
    // The buffer is empty now. A read at least as large as it (a chunk's body) goes
    // straight to its destination; a small one fills the buffer with what has arrived.
    begin_ = end_ = 0;
    to += from_buffer;
    min_bytes -= from_buffer;
    max_bytes -= from_buffer;
    if (max_bytes >= buffer_.size()) {
      return inner_->tryRead(to, min_bytes, max_bytes).then([from_buffer](size_t n) {
        return from_buffer + n;
      });
    }
    return inner_->tryRead(buffer_.begin(), min_bytes, buffer_.size())
        .then([this, to, max_bytes, from_buffer](size_t n) {
          const size_t taken = kj::min(n, max_bytes);
          std::memcpy(to, buffer_.begin(), taken);
          begin_ = taken;
          end_ = n;
          return from_buffer + taken;
        });
  }

  kj::Promise<void> write(const void* data, size_t size) override { return inner_->write(data, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner_->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner_->getpeername(addr, length);
  }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  kj::Array<kj::byte> buffer_;
  size_t begin_ = 0;  // bytes read from the connection and not yet handed out
  size_t end_ = 0;
};

}  // namespace

kj::Own<kj::AsyncIoStream> buffered(kj::Own<kj::AsyncIoStream> stream) {
  return kj::heap<buffered_stream>(kj::mv(stream));
}

}  // namespace autosync::schema
