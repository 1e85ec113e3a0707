#include "autosync/server/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "autosync/base/thread_name.hpp"
#include "autosync/base/utc_time.hpp"

namespace autosync::server {

namespace {

constexpr std::size_t queued_lines_max = 65536;

std::string line_of(const audit_record& r) {
  nlohmann::json line = {{"time", format_utc(r.time_us)}, {"action", r.action}};
  if (!r.user.empty()) line["user"] = r.user;
  if (!r.peer.empty()) line["peer"] = r.peer;
  if (!r.target.empty()) line["target"] = r.target;
  if (!r.detail.empty()) line["detail"] = r.detail;
  // Invalid UTF-8 from a client is replaced, not thrown on: the record must be written.
  auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  return text;
}

}  // namespace

struct audit_log::impl {
  impl(int fd, std::filesystem::path file) : fd(fd), file(std::move(file)) {
    writer = std::thread([this] { run(); });
  }
  ~impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    ready.notify_all();
    writer.join();
    ::close(fd);
  }

  // Writes what is queued, a batch at a time: one write() for all the lines queued
  // meanwhile.
  void run() {
    name_this_thread("audit");
    std::unique_lock lock(mutex);
    for (;;) {
      ready.wait(lock, [&] { return !queue.empty() || stopping; });
      if (queue.empty()) return;
      std::deque<std::string> batch;
      batch.swap(queue);
      lock.unlock();
      // After a failed write, the line cut short ends here: the next one starts whole.
      std::string bytes = torn ? "\n" : "";
      for (const auto& line : batch) bytes += line;
      write_all(bytes);
      lock.lock();
      written += batch.size();
      progress.notify_all();
    }
  }

  void write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // Nobody to answer: say it where operators look (once while it lasts: a full disk
        // fails every batch), and go on with the next lines.
        if (failed_batches++ == 0) {
          std::fprintf(stderr, "autosyncd: cannot write the audit log %s: %s; check the disk\n",
                       file.c_str(), n < 0 ? std::strerror(errno) : "nothing written");
        }
        if (done > 0) torn = bytes[done - 1] != '\n';
        return;
      }
      done += static_cast<std::size_t>(n);
    }
    torn = false;
    if (failed_batches > 0) {
      std::fprintf(stderr,
                   "autosyncd: the audit log %s takes writes again; %llu batches of lines were "
                   "lost meanwhile\n",
                   file.c_str(), static_cast<unsigned long long>(failed_batches));
      failed_batches = 0;
    }
  }

  const int fd;
  const std::filesystem::path file;
  std::mutex mutex;
  std::condition_variable ready;     // lines queued, or stopping
  std::condition_variable progress;  // lines written: room in the queue, flush() waiters
  std::deque<std::string> queue;
  std::uint64_t given = 0;    // lines queued so far
  std::uint64_t written = 0;  // of those, lines written (or failed)
  bool stopping = false;
  bool torn = false;  // the last write stopped inside a line (writer thread only)
  std::uint64_t failed_batches = 0;  // batches lost since the log last took one (writer only)
  std::thread writer;
};

result<std::unique_ptr<audit_log>> audit_log::open(const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return error(error_kind::unavailable, "cannot open the audit log " + file.string() + ": " +
                                              std::strerror(errno) +
                                              "; check the path and its permissions");
  }
  return std::unique_ptr<audit_log>(new audit_log(std::make_unique<impl>(fd, file)));
}

audit_log::audit_log(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

audit_log::~audit_log() = default;

void audit_log::write(const audit_record& r) {
  auto line = line_of(r);
  {
    std::unique_lock lock(impl_->mutex);
    impl_->progress.wait(lock, [&] { return impl_->queue.size() < queued_lines_max; });
    impl_->queue.push_back(std::move(line));
    ++impl_->given;
  }
  impl_->ready.notify_one();
}

void audit_log::flush() {
  std::unique_lock lock(impl_->mutex);
  const auto target = impl_->given;
  impl_->progress.wait(lock, [&] { return impl_->written >= target; });
}

}  // namespace autosync::server
