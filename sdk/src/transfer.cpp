// Moving content: cutting files into chunks, uploading only what the server lacks with
// many chunks in flight, committing, and downloading with every hash checked. A file is
// read or written piece by piece; it is never in memory whole.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "autosync/sdk/chunker.hpp"
#include "connection.hpp"

namespace autosync::sdk {

namespace {

constexpr std::size_t read_piece_bytes = 1u << 20;
constexpr std::size_t hashes_per_query_max = 65536;
// Calls one pipeline keeps in flight: well under the server's 256 per connection, so
// small chunks never meet `overloaded`.
constexpr std::size_t calls_in_flight_max = 128;
// Commits in flight in commit_many: the user's actor decides those that wait during one
// append together and writes them as the next one, so this is about one fsync's batch.
constexpr std::size_t commits_in_flight_max = 64;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A file opened for reading, closed on every path out.
struct file_reader {
  int fd = -1;
  explicit file_reader(const std::filesystem::path& p) : fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~file_reader() {
    if (fd >= 0) ::close(fd);
  }
  // Exactly out.size() bytes at `offset` into `out`, or false.
  bool read_at(std::uint64_t offset, kj::ArrayPtr<kj::byte> out) const {
    const std::size_t size = out.size();
    std::size_t done = 0;
    while (done < size) {
      auto n = ::pread(fd, out.begin() + done, size - done, static_cast<off_t>(offset + done));
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
};

// Sizes are hints for capnp's first segment, which is otherwise 8 KiB zeroed per call:
// about one segment for a commit, and one for a chunk with its bytes instead of 8 KiB and
// then a second segment for them.
capnp::MessageSize commit_size(const std::string& remote, const file_plan& plan,
                               const std::string& operation_id) {
  return {24 + (remote.size() + operation_id.size()) / 8 + 6 * plan.chunks.size(), 0};
}
capnp::MessageSize chunk_size(std::size_t bytes) { return {16 + bytes / 8, 0}; }

// A commit request for `remote` as `plan` describes it.
capnp::Request<rpc::Session::CommitParams, rpc::Session::CommitResults> commit_call(
    rpc::Session::Client& s, const std::string& remote, const file_plan& plan,
    std::uint64_t base_revision, std::int64_t mtime_us, const std::string& operation_id) {
  auto request = s.commitRequest(commit_size(remote, plan, operation_id));
  request.setPath(wire_text(remote));
  request.setBaseRevision(base_revision);
  request.setSize(plan.size);
  request.setHash(bytes_of(plan.hash));
  request.setMtimeUs(mtime_us);
  auto chunks = request.initChunks(static_cast<unsigned>(plan.chunks.size()));
  for (unsigned i = 0; i < chunks.size(); ++i) {
    chunks[i].setHash(bytes_of(plan.chunks[i].hash));
    chunks[i].setSize(plan.chunks[i].size);
  }
  request.setOperationId(operation_id);
  return request;
}

// Cuts a stream into chunks, hashing each and the whole.
class planner {
public:
  explicit planner(std::uint64_t size) : cutter_(chunk_sizes::for_file(size)) {}

  void feed(std::string_view piece) {
    whole_.update(piece);
    pending_.append(piece);
    lengths_.clear();
    cutter_.feed(piece, lengths_);
    take();
  }
  file_plan finish() {
    lengths_.clear();
    cutter_.finish(lengths_);
    take();
    plan_.hash = whole_.finish();
    return std::move(plan_);
  }
  // The chunks cut so far (final: the uncut tail waits in the buffer until finish()).
  const std::vector<chunk_info>& chunks() const noexcept { return plan_.chunks; }

private:
  void take() {
    for (auto len : lengths_) {
      plan_.chunks.push_back({sha256(std::string_view(pending_).substr(used_, len)), len});
      plan_.size += len;
      used_ += len;
    }
    if (used_ > (4u << 20)) {  // keep the buffer small: drop what was hashed
      pending_.erase(0, used_);
      used_ = 0;
    }
  }

  chunker cutter_;
  sha256_hasher whole_;
  std::string pending_;
  std::size_t used_ = 0;
  std::vector<std::uint32_t> lengths_;
  file_plan plan_;
};

std::int64_t mtime_us_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
}

}  // namespace

result<file_plan> plan_file(const std::filesystem::path& file) {
  file_reader in(file);
  if (in.fd < 0) return error(error_kind::not_found, "cannot open " + file.string());
  struct stat st {};
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return error(error_kind::invalid, file.string() + " is not a regular file");
  }
  planner p(static_cast<std::uint64_t>(st.st_size));
  std::string piece(read_piece_bytes, '\0');
  for (;;) {
    auto n = ::read(in.fd, piece.data(), piece.size());
    if (n < 0) return error(error_kind::unavailable, "cannot read " + file.string());
    if (n == 0) break;
    p.feed(std::string_view(piece.data(), static_cast<std::size_t>(n)));
  }
  return p.finish();
}

file_plan plan_bytes(std::string_view data) {
  planner p(data.size());
  for (std::size_t at = 0; at < data.size(); at += read_piece_bytes) {
    p.feed(data.substr(at, read_piece_bytes));
  }
  return p.finish();
}


namespace {

// Which of `hashes` (by position) the session's user lacks, asked in lists of at most
// hashes_per_query_max. Inside a call() attempt: a lost connection throws.
std::vector<std::size_t> missing_of(client::impl& c, rpc::Session::Client& s,
                                    const std::vector<sha256_digest>& hashes) {
  std::vector<std::size_t> out;
  for (std::size_t base = 0; base < hashes.size(); base += hashes_per_query_max) {
    const auto count = std::min(hashes_per_query_max, hashes.size() - base);
    auto request = s.missingChunksRequest();
    auto list = request.initHashes(static_cast<unsigned>(count));
    for (unsigned i = 0; i < count; ++i) list.set(i, bytes_of(hashes[base + i]));
    auto reply = c.wait(request.send());
    check(reply);
    for (auto i : reply.getMissing()) out.push_back(base + i);
  }
  return out;
}

// Fills `out` (sized for a chunk: its place in the request) with the content's bytes at
// `offset`.
using content_reader = std::function<bool(std::uint64_t offset, kj::ArrayPtr<kj::byte> out)>;

// Uploads chunks of a plan, asking first which ones the server lacks, with up to
// window_bytes in flight (waiting for the oldest answer when the window is full). Chunks are
// added as they become known (a file's planner hands them out as it cuts), and the window
// stays full from one addition to the next: the question about the next chunks goes out
// while earlier ones are still in flight, where a pipeline per batch drained first (a
// fsync, a round trip and a refill per batch of a 256 MiB upload). A lost connection, or a
// chunk the server refused for now, is resumed by asking again about every chunk not yet
// acknowledged: only what the server lacks is sent again.
class chunk_pipeline {
public:
  // `total` is what progress counts up to; `plan` may grow while the pipeline runs.
  chunk_pipeline(client::impl& c, const file_plan& plan, content_reader read,
                 const put_options& options, std::uint64_t total)
      : c_(c), plan_(plan), read_(std::move(read)), options_(options), total_(total) {}

  // Sends those of the chunks named by `indexes` that the server lacks (waiting for older
  // answers whenever the window is full); returns with the last ones still in flight.
  status add(const std::vector<std::size_t>& indexes) {
    unasked_.insert(unasked_.end(), indexes.begin(), indexes.end());
    return step(false);
  }
  // Waits for the oldest answer.
  status settle_one() { return step(true); }
  // Waits until the server has every chunk added.
  status drain() {
    while (!in_flight_.empty() || !unasked_.empty() || !unsent_.empty()) {
      if (auto s = step(true); !s) return s;
    }
    return {};
  }
  bool idle() const noexcept { return in_flight_.empty(); }
  bool has_room() const noexcept {
    return window_ < c_.options.window_bytes && in_flight_.size() < calls_in_flight_max;
  }

private:
  struct flying {
    kj::Promise<std::optional<call_error>> answer;
    std::size_t index;
  };

  status step(bool settle) {
    auto stepped = c_.call<bool>([&](rpc::Session::Client& s) -> result<bool> {
      // The answers a lost connection owed never come: ask again about those chunks.
      if (connection_ != c_.connections_made) restart();
      connection_ = c_.connections_made;
      ask(s);
      if (auto sent = send(s); !sent) return sent.err();
      if (settle && !in_flight_.empty()) settle_oldest();
      return true;
    });
    if (!stepped) return stepped.err();
    return {};
  }

  void restart() {
    std::deque<std::size_t> again;
    for (auto& f : in_flight_) again.push_back(f.index);
    again.insert(again.end(), unsent_.begin(), unsent_.end());
    again.insert(again.end(), unasked_.begin(), unasked_.end());
    in_flight_.clear();
    unsent_.clear();
    unasked_ = std::move(again);
    window_ = 0;
  }

  // Which of the chunks not asked about yet the server lacks: those are to be sent, the
  // rest it already has.
  void ask(rpc::Session::Client& s) {
    if (unasked_.empty()) return;
    std::vector<sha256_digest> hashes;
    hashes.reserve(unasked_.size());
    for (auto i : unasked_) hashes.push_back(plan_.chunks[i].hash);
    std::vector<bool> lacking(hashes.size(), false);
    for (auto at : missing_of(c_, s, hashes)) {
      if (at < lacking.size()) lacking[at] = true;
    }
    for (std::size_t at = 0; at < hashes.size(); ++at) {
      if (lacking[at]) {
        unsent_.push_back(unasked_[at]);
      } else {
        acknowledged(unasked_[at], false);
      }
    }
    unasked_.clear();
  }

  status send(rpc::Session::Client& s) {
    while (!unsent_.empty()) {
      const auto i = unsent_.front();
      const auto size = plan_.chunks[i].size;
      while (!in_flight_.empty() && (window_ + size > c_.options.window_bytes ||
                                     in_flight_.size() >= calls_in_flight_max)) {
        settle_oldest();
      }
      auto request = s.putChunkRequest(chunk_size(size));
      request.setHash(bytes_of(plan_.chunks[i].hash));
      // Read straight into the request: no copy of the chunk on its way to the socket.
      if (!read_(offset_of(i), request.initData(size))) {
        return error(error_kind::unavailable,
                     "the file could not be read, or changed, while uploading: try again");
      }
      in_flight_.push_back({request.send().then([](auto reply) -> std::optional<call_error> {
                              if (reply.hasFailure()) return classify(reply.getFailure());
                              return std::nullopt;
                            }),
                            i});
      unsent_.pop_front();
      window_ += size;
    }
    return {};
  }

  // Throws (for call() to retry or give up) if the answer is a failure or never comes; the
  // chunk is then asked about again.
  void settle_oldest() {
    auto oldest = std::move(in_flight_.front());
    in_flight_.pop_front();
    window_ -= plan_.chunks[oldest.index].size;
    std::optional<call_error> failed;
    try {
      failed = c_.wait(kj::mv(oldest.answer));
    } catch (...) {
      unasked_.push_front(oldest.index);
      throw;
    }
    if (failed) {
      unasked_.push_front(oldest.index);
      throw server_failure{*failed};
    }
    acknowledged(oldest.index, true);
  }

  void acknowledged(std::size_t index, bool sent) {
    const auto size = plan_.chunks[index].size;
    done_ += size;
    if (sent && options_.stats) {
      options_.stats->chunks_sent++;
      options_.stats->bytes_sent += size;
    }
    if (options_.progress) options_.progress(done_, std::max(total_, done_));
  }

  std::uint64_t offset_of(std::size_t index) {
    while (offsets_.size() <= index) {
      offsets_.push_back(end_);
      end_ += plan_.chunks[offsets_.size() - 1].size;
    }
    return offsets_[index];
  }

  client::impl& c_;
  const file_plan& plan_;
  content_reader read_;
  const put_options& options_;
  const std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::deque<std::size_t> unasked_;  // chunks to ask about on this connection
  std::deque<std::size_t> unsent_;   // chunks the server lacks, to send
  std::deque<flying> in_flight_;     // oldest first
  std::uint64_t window_ = 0;         // bytes in flight
  std::uint64_t connection_ = 0;     // which connection the chunks in flight went out on
  std::vector<std::uint64_t> offsets_;
  std::uint64_t end_ = 0;
};

// Sends the chunks of `plan` named by `wanted` that the server lacks.
status send_chunks(client::impl& c, const file_plan& plan, const std::vector<std::size_t>& wanted,
                   content_reader read, const put_options& options) {
  std::uint64_t total = 0;
  for (auto i : wanted) total += plan.chunks[i].size;
  chunk_pipeline pipeline(c, plan, std::move(read), options, total);
  if (auto s = pipeline.add(wanted); !s) return s;
  return pipeline.drain();
}

content_reader file_content(const file_reader& in) {
  // Not hashed again here: the server checks every chunk's hash, and a file that changed
  // since it was planned fails there, typed, with nothing stored.
  return [&in](std::uint64_t offset, kj::ArrayPtr<kj::byte> out) {
    return in.read_at(offset, out);
  };
}

content_reader memory_content(std::string_view bytes) {
  return [bytes](std::uint64_t offset, kj::ArrayPtr<kj::byte> out) {
    if (offset > bytes.size() || out.size() > bytes.size() - offset) return false;
    std::memcpy(out.begin(), bytes.data() + offset, out.size());
    return true;
  };
}

std::vector<std::size_t> all_indexes(const file_plan& plan) {
  std::vector<std::size_t> out(plan.chunks.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = i;
  return out;
}

}  // namespace

result<std::vector<std::size_t>> client::missing_chunks(const std::vector<sha256_digest>& hashes) {
  return impl_->call<std::vector<std::size_t>>(
      [&](rpc::Session::Client& s) -> result<std::vector<std::size_t>> {
        return missing_of(*impl_, s, hashes);
      });
}

status client::put_chunks(const std::filesystem::path& local, const file_plan& plan,
                          const std::vector<std::size_t>& indexes, const put_options& options) {
  file_reader in(local);
  if (in.fd < 0) return error(error_kind::not_found, "cannot open " + local.string());
  return send_chunks(*impl_, plan, indexes, file_content(in), options);
}

result<entry> client::commit(const std::string& remote, const file_plan& plan,
                             std::uint64_t base_revision, std::int64_t mtime_us,
                             const std::string& operation_id) {
  const auto op = operation_id.empty() ? new_operation_id() : operation_id;
  return impl_->call<entry>([&](rpc::Session::Client& s) -> result<entry> {
    auto request = commit_call(s, remote, plan, base_revision, mtime_us, op);
    auto reply = impl_->wait(request.send());
    check(reply);
    return entry_from(reply.getEntry());
  });
}

namespace {

// Commits; should the server answer that chunks are missing, sends them again and commits
// once more. A chunk can go between its upload and the commit: the server reclaims chunks
// no revision refers to once they are older than its retention period, and that includes a
// chunk it had (so it was not sent again) that no file used any more.
result<entry> commit_resending(client& c, client::impl& ci, const std::string& remote,
                               const file_plan& plan, std::uint64_t base_revision,
                               std::int64_t mtime_us, const content_reader& read,
                               const put_options& options) {
  const auto op = client::new_operation_id();
  auto first = c.commit(remote, plan, base_revision, mtime_us, op);
  if (first || first.err().kind() != error_kind::not_found) return first;
  std::vector<sha256_digest> hashes;
  for (const auto& chunk : plan.chunks) hashes.push_back(chunk.hash);
  auto missing = c.missing_chunks(hashes);
  if (!missing || missing->empty()) return first;
  if (auto sent = send_chunks(ci, plan, *missing, read, options); !sent) return sent.err();
  // The refused commit applied nothing, so its operation id is still unused.
  return c.commit(remote, plan, base_revision, mtime_us, op);
}

// The revision a put replaces: as asked, or whatever is there now.
result<std::uint64_t> base_for(client& c, const std::string& remote, const put_options& options) {
  if (options.base_revision) return *options.base_revision;
  auto current = c.stat(remote);
  if (current) {
    if (current->folder) return error(error_kind::conflict, remote + " is a folder");
    return current->revision;
  }
  if (current.err().kind() == error_kind::not_found) return std::uint64_t{0};
  return current.err();
}

}  // namespace

namespace {

// Plans a file on a thread of its own and hands out its chunks as they are cut, so the
// caller sends the first ones while the rest are still being read and hashed (cutting and
// hashing run at about 640 MiB/s on one core; sending overlaps with it instead of waiting).
class background_planner {
public:
  struct batch {
    std::vector<chunk_info> chunks;  // the next chunks, in file order
    bool last = false;               // the plan is complete: take_plan()
  };

  background_planner(const file_reader& in, std::uint64_t size)
      : thread_([this, &in, size] { run(in, size); }) {}
  ~background_planner() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    thread_.join();
  }
  background_planner(const background_planner&) = delete;
  background_planner& operator=(const background_planner&) = delete;

  // Hands out the chunks cut since the last call once they reach `bytes` or the plan is
  // complete, waiting for that if `wait`; otherwise an empty batch says none are ready.
  result<batch> next(std::uint64_t bytes, bool wait) {
    std::unique_lock lock(mutex_);
    const auto ready = [&] { return done_ || failed_ || ready_bytes_ >= bytes; };
    if (wait) {
      changed_.wait(lock, ready);
    } else if (!ready()) {
      return batch{};
    }
    if (failed_) return *failed_;
    batch out;
    out.chunks = std::move(ready_);
    ready_.clear();
    ready_bytes_ = 0;
    out.last = done_;
    return out;
  }
  // REQUIRES: next() returned the last batch.
  file_plan take_plan() { return std::move(plan_); }

private:
  void run(const file_reader& in, std::uint64_t size) {
    planner p(size);
    std::string piece(read_piece_bytes, '\0');
    std::size_t published = 0;
    auto publish = [&](const std::vector<chunk_info>& chunks, bool done) {
      std::lock_guard lock(mutex_);
      for (; published < chunks.size(); ++published) {
        ready_.push_back(chunks[published]);
        ready_bytes_ += chunks[published].size;
      }
      done_ = done;
      changed_.notify_one();
      return !cancelled_;
    };
    for (std::uint64_t at = 0;;) {
      auto n = ::pread(in.fd, piece.data(), piece.size(), static_cast<off_t>(at));
      if (n < 0) {
        std::lock_guard lock(mutex_);
        failed_ = error(error_kind::unavailable, "the file could not be read while planning: try again");
        changed_.notify_one();
        return;
      }
      if (n == 0) break;
      at += static_cast<std::uint64_t>(n);
      p.feed(std::string_view(piece.data(), static_cast<std::size_t>(n)));
      if (!publish(p.chunks(), false)) return;
    }
    auto plan = p.finish();
    std::lock_guard lock(mutex_);
    for (; published < plan.chunks.size(); ++published) ready_.push_back(plan.chunks[published]);
    plan_ = std::move(plan);
    done_ = true;
    changed_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<chunk_info> ready_;
  std::uint64_t ready_bytes_ = 0;
  bool done_ = false, cancelled_ = false;
  std::optional<error> failed_;
  file_plan plan_;
  std::thread thread_;  // last: started once everything above exists
};

// The planner's chunks are taken once this many bytes of them are cut (or the file is
// done): the first ones leave after a few milliseconds of cutting, not after a batch of tens
// of MiB, and the pipeline asks about each handful in one call.
constexpr std::uint64_t take_bytes_min = 4u << 20;

}  // namespace

result<entry> client::put_file(const std::filesystem::path& local, const std::string& remote,
                               const put_options& options) {
  file_reader in(local);
  if (in.fd < 0) return error(error_kind::not_found, "cannot open " + local.string());
  struct stat st {};
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return error(error_kind::invalid, local.string() + " is not a regular file");
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  background_planner planning(in, file_size);
  auto base = base_for(*this, remote, options);
  if (!base) return base.err();

  file_plan handed_out;  // the chunks planned so far, in file order
  chunk_pipeline pipeline(*impl_, handed_out, file_content(in), options, file_size);
  for (bool last = false; !last;) {
    // More chunks while the window has room. The planner is waited for only with nothing
    // in flight: otherwise the oldest answer is, so this thread keeps the connection's
    // event loop running (and the sends it holds going out) while the planner cuts.
    if (!pipeline.idle() && !pipeline.has_room()) {
      if (auto s = pipeline.settle_one(); !s) return s.err();
      continue;
    }
    auto next = planning.next(take_bytes_min, /*wait=*/pipeline.idle());
    if (!next) return next.err();
    last = next->last;
    if (next->chunks.empty()) {
      if (!last) {
        if (auto s = pipeline.settle_one(); !s) return s.err();
      }
      continue;
    }
    std::vector<std::size_t> indexes;
    for (const auto& c : next->chunks) {
      indexes.push_back(handed_out.chunks.size());
      handed_out.chunks.push_back(c);
    }
    if (auto s = pipeline.add(indexes); !s) return s.err();
  }
  if (auto s = pipeline.drain(); !s) return s.err();
  const auto plan = planning.take_plan();
  if (options.stats) {
    options.stats->file_bytes = plan.size;
    options.stats->chunks_total = plan.chunks.size();
  }
  // Chunks cut while something wrote the file may mix old and new content, a file that
  // never existed: commit only what was read from a file unchanged from open to here.
  struct stat after {};
  if (::fstat(in.fd, &after) != 0 || after.st_size != st.st_size ||
      after.st_mtim.tv_sec != st.st_mtim.tv_sec || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec ||
      after.st_ctim.tv_sec != st.st_ctim.tv_sec || after.st_ctim.tv_nsec != st.st_ctim.tv_nsec) {
    return error(error_kind::conflict, local.string() +
                                           " changed while it was being uploaded (nothing was "
                                           "committed); put it again once nothing writes to it");
  }
  // The modification time of the file that was read, not of whatever the path names now.
  return commit_resending(*this, *impl_, remote, plan, *base,
                          options.mtime_us.value_or(mtime_us_of(after)), file_content(in), options);
}

result<entry> client::put_bytes(std::string_view data, const std::string& remote,
                                const put_options& options) {
  auto plan = plan_bytes(data);
  if (options.stats) {
    options.stats->file_bytes = plan.size;
    options.stats->chunks_total = plan.chunks.size();
  }
  auto base = base_for(*this, remote, options);
  if (!base) return base.err();
  auto sent = send_chunks(*impl_, plan, all_indexes(plan), memory_content(data), options);
  if (!sent) return sent.err();
  return commit_resending(*this, *impl_, remote, plan, *base, options.mtime_us.value_or(now_us()),
                          memory_content(data), options);
}

namespace {

// One pipelined call's answer, and, when the server refused it for now (overloaded, rate
// limited, unavailable), that failure: the pipeline asks again for just those calls.
template <class T>
struct item_answer {
  result<T> value;
  std::optional<call_error> again;
};

template <class T, class Reply, class Value>
item_answer<T> item_answer_of(const Reply& reply, Value&& value) {
  if (!reply.hasFailure()) return {value(), std::nullopt};
  auto failed = classify(reply.getFailure());
  if (!failed.retry) return {std::move(failed.err), std::nullopt};
  return {failed.err, std::move(failed)};
}

// Asks for one chunk as part of a pipeline.
kj::Promise<item_answer<std::string>> request_chunk(rpc::Session::Client& s,
                                                    const sha256_digest& hash) {
  auto request = s.getChunkRequest();
  request.setHash(bytes_of(hash));
  return request.send().then([](auto reply) {
    return item_answer_of<std::string>(reply, [&] {
      auto d = reply.getData();
      return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
    });
  });
}

// Keeps the failure a pass of a pipeline retries after: the longest wait asked for.
void keep_for_retry(std::optional<call_error>& kept, call_error failed) {
  if (!kept || failed.retry_after_ms > kept->retry_after_ms) kept = std::move(failed);
}

// One answer per request of a pipeline: its own, or why the pipeline stopped before it.
template <class T>
std::vector<result<T>> answered(std::vector<std::optional<result<T>>> answers,
                                const result<bool>& pipeline) {
  std::vector<result<T>> out;
  for (auto& a : answers) {
    if (a) {
      out.push_back(std::move(*a));
    } else {
      out.push_back(pipeline ? error(error_kind::internal, "no answer") : pipeline.err());
    }
  }
  return out;
}

}  // namespace

std::vector<result<entry>> client::commit_many(const std::vector<commit_request>& requests) {
  std::vector<std::string> ops;
  for (const auto& r : requests) ops.push_back(r.operation_id.empty() ? new_operation_id() : r.operation_id);
  std::vector<std::optional<result<entry>>> answers(requests.size());
  // Each pass sends what has no answer yet: after a lost connection, or the commits the
  // server asked to retry (their operation ids make a repeat apply nothing twice).
  auto all = impl_->call<bool>([&](rpc::Session::Client& s) -> result<bool> {
    std::deque<std::pair<kj::Promise<item_answer<entry>>, std::size_t>> in_flight;
    std::optional<call_error> again;
    auto settle_oldest = [&] {
      auto answer = impl_->wait(kj::mv(in_flight.front().first));
      if (answer.again) {
        keep_for_retry(again, std::move(*answer.again));
      } else {
        answers[in_flight.front().second] = std::move(answer.value);
      }
      in_flight.pop_front();
    };
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (answers[i]) continue;  // answered before a reconnect
      const auto& r = requests[i];
      auto request = commit_call(s, r.remote, r.plan, r.base_revision, r.mtime_us, ops[i]);
      in_flight.emplace_back(request.send().then([](auto reply) {
        return item_answer_of<entry>(reply, [&] { return entry_from(reply.getEntry()); });
      }),
                             i);
      if (in_flight.size() >= commits_in_flight_max) settle_oldest();
    }
    while (!in_flight.empty()) settle_oldest();
    if (again) throw server_failure{std::move(*again)};
    return true;
  });
  return answered(std::move(answers), all);
}

// --- downloads -----------------------------------------------------------------------------

result<std::string> client::get_chunk(const sha256_digest& hash) {
  return impl_->call<std::string>([&](rpc::Session::Client& s) -> result<std::string> {
    auto request = s.getChunkRequest();
    request.setHash(bytes_of(hash));
    auto reply = impl_->wait(request.send());
    check(reply);
    auto data = reply.getData();
    std::string out(reinterpret_cast<const char*>(data.begin()), data.size());
    if (sha256(out) != hash) {
      return error(error_kind::corruption, "chunk " + hash.hex() + " arrived with other content");
    }
    return out;
  });
}

std::vector<result<std::string>> client::get_chunks(const std::vector<chunk_info>& wanted) {
  std::vector<std::optional<result<std::string>>> answers(wanted.size());
  // As in commit_many, each pass asks only for what has no answer yet.
  auto all = impl_->call<bool>([&](rpc::Session::Client& s) -> result<bool> {
    std::deque<std::pair<kj::Promise<item_answer<std::string>>, std::size_t>> in_flight;
    std::uint64_t window = 0;
    std::optional<call_error> again;
    auto settle_oldest = [&] {
      auto answer = impl_->wait(kj::mv(in_flight.front().first));
      const auto i = in_flight.front().second;
      in_flight.pop_front();
      window -= wanted[i].size;
      if (answer.again) return keep_for_retry(again, std::move(*answer.again));
      auto& data = answer.value;
      if (data && sha256(*data) != wanted[i].hash) {
        data = error(error_kind::corruption, "chunk " + wanted[i].hash.hex() + " arrived with other content");
      }
      answers[i] = std::move(data);
    };
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (answers[i]) continue;
      in_flight.emplace_back(request_chunk(s, wanted[i].hash), i);
      window += wanted[i].size;
      while (window > impl_->options.window_bytes || in_flight.size() >= calls_in_flight_max) {
        settle_oldest();
      }
    }
    while (!in_flight.empty()) settle_oldest();
    if (again) throw server_failure{std::move(*again)};
    return true;
  });
  return answered(std::move(answers), all);
}

namespace {

// Fetches the file's chunks in order, many in flight, handing each (checked) to `write`.
// A retry (lost connection, or a chunk the server refused for now) resumes at the first
// chunk not yet written: `write` only ever appends.
status fetch_chunks(client::impl& c, const entry& file,
                    const std::function<bool(const std::string&)>& write,
                    const get_options& options) {
  std::size_t next = 0;  // the first chunk not yet written
  std::uint64_t done = 0;
  auto fetched = c.call<bool>([&](rpc::Session::Client& s) -> result<bool> {
    std::deque<std::pair<kj::Promise<item_answer<std::string>>, std::size_t>> in_flight;
    std::uint64_t window = 0;
    auto settle_oldest = [&]() -> status {
      auto answer = c.wait(kj::mv(in_flight.front().first));
      const auto index = in_flight.front().second;
      in_flight.pop_front();
      if (answer.again) throw server_failure{std::move(*answer.again)};
      auto& data = answer.value;
      if (!data) return data.err();
      if (sha256(*data) != file.chunks[index].hash || data->size() != file.chunks[index].size) {
        return error(error_kind::corruption, "chunk " + std::to_string(index) + " of " +
                                                 file.path + " arrived with other content");
      }
      window -= data->size();
      done += data->size();
      if (options.stats) options.stats->bytes_received += data->size();
      if (!write(*data)) return error(error_kind::local_io, "cannot write the local file");
      next = index + 1;
      if (options.progress) options.progress(done, file.size);
      return {};
    };
    for (std::size_t i = next; i < file.chunks.size(); ++i) {
      in_flight.emplace_back(request_chunk(s, file.chunks[i].hash), i);
      window += file.chunks[i].size;
      while (window > c.options.window_bytes || in_flight.size() >= calls_in_flight_max) {
        if (auto ok = settle_oldest(); !ok) return ok.err();
      }
    }
    while (!in_flight.empty()) {
      if (auto ok = settle_oldest(); !ok) return ok.err();
    }
    return true;
  });
  if (!fetched) return fetched.err();
  return {};
}

}  // namespace

result<entry> client::get_file(const std::string& remote, const std::filesystem::path& local,
                               const get_options& options) {
  auto file = stat(remote);
  if (!file) return file.err();
  if (file->folder) return error(error_kind::invalid, remote + " is a folder");
  const auto temp = local.string() + ".autosync-part";
  std::ofstream out;
  sha256_hasher whole;
  auto written = fetch_chunks(
      *impl_, *file,
      [&](const std::string& data) {
        if (!out.is_open()) out.open(temp, std::ios::binary | std::ios::trunc);
        whole.update(data);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        return static_cast<bool>(out);
      },
      options);
  if (written && !out.is_open()) out.open(temp, std::ios::binary | std::ios::trunc);  // empty
  out.close();
  std::error_code ec;
  if (!written) {
    std::filesystem::remove(temp, ec);
    return written.err();
  }
  if (whole.finish() != file->hash) {
    std::filesystem::remove(temp, ec);
    return error(error_kind::corruption, remote + ": the content does not match its hash");
  }
  std::filesystem::rename(temp, local, ec);
  if (ec) return error(error_kind::local_io, "cannot write " + local.string() + ": " + ec.message());
  if (options.set_mtime && file->mtime_us > 0) {
    struct timespec times[2];
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = file->mtime_us / 1000000;
    times[1].tv_nsec = (file->mtime_us % 1000000) * 1000;
    ::utimensat(AT_FDCWD, local.c_str(), times, 0);
  }
  if (options.stats) {
    options.stats->file_bytes = file->size;
    options.stats->chunks_total = file->chunks.size();
  }
  return file;
}

result<std::string> client::get_bytes(const std::string& remote) {
  auto file = stat(remote);
  if (!file) return file.err();
  if (file->folder) return error(error_kind::invalid, remote + " is a folder");
  std::string content;
  content.reserve(file->size);
  auto fetched = fetch_chunks(
      *impl_, *file,
      [&](const std::string& data) {
        content += data;
        return true;
      },
      {});
  if (!fetched) return fetched.err();
  if (sha256(content) != file->hash) {
    return error(error_kind::corruption, remote + ": the content does not match its hash");
  }
  return content;
}

}  // namespace autosync::sdk
