#include "autosync/schema/buffered_stream.hpp"

#include <kj/debug.h>
#include <kj/vector.h>

#include <cstring>

namespace autosync::schema {

namespace {

class buffered_stream final : public kj::AsyncIoStream {
public:
 buffered_stream(kj::Own<kj::AsyncIoStream> inner, bool gather_writes)
     : inner_(kj::mv(inner)), buffer_(kj::heapArray<kj::byte>(64 * 1024)), gather_(gather_writes) {}

 // Held bytes still go out if the connection takes them at once (kj writes to a plain
 // socket within the call); it is going away, so nothing waits for the rest.
 ~buffered_stream() noexcept(false) {
   if (sending_ || held_.size() == 0 || failed_ != nullptr) return;
   kj::runCatchingExceptions([&] { auto ignored = inner_->write(held_.begin(), held_.size()); });
 }

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

  // A small write is copied and held until the event loop has nothing left to run; then
  // everything held goes out in one write. A Cap'n Proto call costs its caller two
  // messages (the call, and the Finish after the answer), and a busy connection several
  // more in one turn of the loop: each was a system call of its own, on both ends. A
  // large write (a chunk) is not copied: it goes out with what is held, in one writev.
  kj::Promise<void> write(const void* data, size_t size) override {
    if (!gather_) return inner_->write(data, size);
    const auto* bytes = static_cast<const kj::byte*>(data);
    if (hold(kj::arrayPtr(bytes, size))) return kj::READY_NOW;
    return sent().then([this, bytes, size] {
      const kj::ArrayPtr<const kj::byte> piece(bytes, size);
      return send_with_held(kj::arrayPtr(&piece, 1));
    });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    if (!gather_) return inner_->write(pieces);
    size_t size = 0;
    for (auto& p : pieces) size += p.size();
    if (size <= small_write_max && held_.size() + size <= held_max && failed_ == nullptr) {
      for (auto& p : pieces) hold(p);
      return kj::READY_NOW;
    }
    // The caller keeps `pieces` until this completes, and writes again only then.
    return sent().then([this, pieces] { return send_with_held(pieces); });
  }

  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  kj::Maybe<int> getFd() const override { return inner_->getFd(); }
  // What is held goes first: at once (kj writes to a socket within the call when it has
  // room), and the shutdown follows its completion.
  void shutdownWrite() override {
    shutdown_requested_ = true;
    if (!sending_) send_held();
    if (!sending_) inner_->shutdownWrite();
  }
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
 static constexpr size_t small_write_max = 16 * 1024;
 static constexpr size_t held_max = 64 * 1024;

 // Takes a small write while there is room, and arranges for it to be sent.
 bool hold(kj::ArrayPtr<const kj::byte> bytes) {
   if (bytes.size() > small_write_max || held_.size() + bytes.size() > held_max ||
       failed_ != nullptr) {
     return false;
   }
   held_.addAll(bytes);
   if (!sending_) schedule_flush();
   return true;
 }

 // After any send in progress: what is held, then `pieces`, in one write.
 kj::Promise<void> send_with_held(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
   KJ_IF_MAYBE (e, failed_) {
     return kj::cp(*e);
   }
   auto out = kj::heapArrayBuilder<kj::ArrayPtr<const kj::byte>>(pieces.size() + 1);
   auto held = kj::mv(held_);
   held_ = kj::Vector<kj::byte>();
   if (held.size() > 0) out.add(held.asPtr());
   for (auto& p : pieces) out.add(p);
   auto all = out.finish();
   auto ptrs = all.asPtr();
   // A failure here fails every later write too: the stream's bytes are no longer whole.
   return kj::evalNow([&] { return inner_->write(ptrs); })
       .attach(kj::mv(all), kj::mv(held))
       .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
         failed_ = kj::cp(e);
         return kj::mv(e);
       });
 }

 void schedule_flush() {
   if (flush_scheduled_) return;
   flush_scheduled_ = true;
   flush_ = kj::evalLast([this] {
              flush_scheduled_ = false;
              send_held();
            }).eagerlyEvaluate(nullptr);
 }

 // Hands what is held to the connection, unless a send is in progress (its completion
 // sends what was held meanwhile).
 void send_held() {
   if (sending_ || held_.size() == 0 || failed_ != nullptr) return;
   sending_ = true;
   auto bytes = kj::heap(kj::mv(held_));
   held_ = kj::Vector<kj::byte>();
   auto ptr = bytes->asPtr();
   auto done = kj::evalNow([&] { return inner_->write(ptr.begin(), ptr.size()); })
                   .attach(kj::mv(bytes))
                   .then(
                       [this] {
                         sending_ = false;
                         // Not sent from here: a new send would replace the promise
                         // this continuation belongs to.
                         if (held_.size() > 0) {
                           schedule_flush();
                         } else if (shutdown_requested_) {
                           inner_->shutdownWrite();
                         }
                       },
                       [this](kj::Exception&& e) {
                         sending_ = false;
                         failed_ = kj::mv(e);
                       })
                   .fork();
   send_done_ = done.addBranch();
   sending_promise_ = kj::mv(done);
 }

 // Resolves when no send is in progress (and what was held meanwhile is on its way).
 kj::Promise<void> sent() {
   if (!sending_) return kj::READY_NOW;
   return KJ_ASSERT_NONNULL(sending_promise_).addBranch().then([this] { return sent(); });
 }

  kj::Own<kj::AsyncIoStream> inner_;
  kj::Array<kj::byte> buffer_;
  const bool gather_;
  size_t begin_ = 0;  // bytes read from the connection and not yet handed out
  size_t end_ = 0;

  kj::Vector<kj::byte> held_;  // small writes accepted and not yet sent
  bool flush_scheduled_ = false;
  bool sending_ = false;  // a write of held bytes is in progress
  bool shutdown_requested_ = false;
  kj::Maybe<kj::Exception> failed_;  // a send failed: so does every later write
  kj::Promise<void> flush_ = nullptr;
  kj::Maybe<kj::ForkedPromise<void>> sending_promise_;
  kj::Promise<void> send_done_ = nullptr;  // keeps the send running
};

}  // namespace

kj::Own<kj::AsyncIoStream> buffered(kj::Own<kj::AsyncIoStream> stream, bool gather_writes) {
  return kj::heap<buffered_stream>(kj::mv(stream), gather_writes);
}

}  // namespace autosync::schema
