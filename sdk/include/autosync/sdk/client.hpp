// The AutoSync client: one connection to a node, logged in as one user, with every
// namespace operation, chunked upload and download, the change feed and subscriptions.
//
// Synchronous and single-threaded: each call returns when its answer is in. Create and use
// a client on one thread (it runs its own Cap'n Proto event loop there). Subscription
// callbacks run on that thread too, while the client waits inside any call or in
// `wait_for_changes`.
//
// Failures are `error` values classified by what to do next (base/error.hpp); messages are
// for people and say what to do. A lost connection is retried transparently: the client
// reconnects, logs in again and repeats the call with the same operation id, so a change
// is never applied twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autosync/base/error.hpp"
#include "autosync/base/sha256.hpp"

namespace autosync::sdk {

struct connect_options {
  std::string server = "127.0.0.1:7400";  // HOST:PORT
  std::string token;                      // a JWT whose `sub` is the user
  std::string device_id;                  // names this device in its changes; default: host name
  // TLS: when set, the connection is TLS (1.2 or newer) and the server's certificate must
  // chain to this CA file (PEM).
  std::optional<std::filesystem::path> tls_ca_file;
  std::string tls_server_name;            // the name in the certificate; default: the host
  // A call with no answer for this long fails `unavailable` (after retries).
  std::chrono::milliseconds call_timeout{120000};
  // Reconnect-and-retry attempts per call after a lost connection, with backoff.
  int retries_max = 4;
  // The longest wait before a retry that a server's retryAfterMs (rateLimited, overloaded)
  // can impose: the field holds up to 49 days, and a bogus value must not stall the client.
  std::chrono::milliseconds retry_after_max{60000};
  // Bytes of chunk uploads or downloads in flight at once.
  std::size_t window_bytes = 16u << 20;
};

struct chunk_info {
  sha256_digest hash;
  std::uint32_t size = 0;
};

struct entry {
  std::uint64_t id = 0;  // stable across moves
  std::string path;
  bool folder = false;
  std::uint64_t revision = 0;
  std::uint64_t size = 0;
  sha256_digest hash;     // of the whole content
  std::int64_t mtime_us = 0;
  std::string device_id;
  std::vector<chunk_info> chunks;  // stat and commit results only
};

struct version {
  std::uint64_t revision = 0;
  bool deleted = false;
  std::string path;
  std::uint64_t size = 0;
  sha256_digest hash;
  std::int64_t mtime_us = 0;
  std::string device_id;
  std::int64_t timestamp_us = 0;
};

struct change {
  enum class kind { committed, deleted, moved, folder_created, restored, quota_changed };
  kind what = kind::committed;
  std::uint64_t seq = 0;  // the cursor after this change
  std::string path;
  std::string from_path;  // moves
  bool folder = false;
  std::optional<entry> file;  // committed, restored
  std::string device_id;
  std::int64_t timestamp_us = 0;
};
const char* to_string(change::kind kind) noexcept;

struct change_page {
  std::vector<change> changes;
  std::uint64_t cursor = 0;
  sha256_digest cursor_hash;  // names the event at `cursor` (zero for 0): pass it back
  bool more = false;
};

// Byte counts of a transfer, for progress and for checking what was really sent.
struct transfer_stats {
  std::uint64_t file_bytes = 0;     // size of the file
  std::uint64_t chunks_total = 0;
  std::uint64_t chunks_sent = 0;    // uploads: chunks the server lacked
  std::uint64_t bytes_sent = 0;     // uploads: chunk bytes sent
  std::uint64_t bytes_received = 0; // downloads: chunk bytes received
};
// Called now and then during a transfer with the bytes done and the bytes to do.
using progress_callback = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct put_options {
  // The revision the new content replaces: 0 creates (a conflict if the path exists);
  // nothing: whatever is there now (stat first), i.e. overwrite.
  std::optional<std::uint64_t> base_revision;
  std::optional<std::int64_t> mtime_us;  // default: the local file's, or now
  progress_callback progress;
  transfer_stats* stats = nullptr;       // filled in when set
};

struct get_options {
  progress_callback progress;
  transfer_stats* stats = nullptr;
  bool set_mtime = true;  // give the local file the remote modification time
};

// A file's content cut into chunks, named by hash: what an upload needs to know first.
struct file_plan {
  std::uint64_t size = 0;
  sha256_digest hash;
  std::vector<chunk_info> chunks;
};
// Reads `file` once, cutting it with content-defined chunking sized for its length.
result<file_plan> plan_file(const std::filesystem::path& file);
file_plan plan_bytes(std::string_view data);

class client {
public:
  // Connects and logs in. Fails `unauthenticated` for a refused token, `unavailable` when
  // the server cannot be reached.
  static result<std::unique_ptr<client>> connect(connect_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  const std::string& user() const noexcept;
  const std::string& device_id() const noexcept;
  // The token's `exp`; the server accepts it, and the session works, a minute past it.
  std::int64_t token_expires_at_s() const noexcept;

  // --- files ------------------------------------------------------------------------------
  // Uploads the chunks the server lacks (many in flight), then commits. A rerun after an
  // interruption sends only what is still missing.
  result<entry> put_file(const std::filesystem::path& local, const std::string& remote,
                         const put_options& options = {});
  result<entry> put_bytes(std::string_view data, const std::string& remote,
                          const put_options& options = {});
  // Commits content whose chunks are already on the server (or fails `not_found` with the
  // missing ones in the message). `operation_id` empty: a new one.
  result<entry> commit(const std::string& remote, const file_plan& plan, std::uint64_t base_revision,
                       std::int64_t mtime_us, const std::string& operation_id = {});
  // Many commits of content already uploaded, pipelined (up to 64 in flight): what sync
  // does with many small files. One answer per request, in order; a lost connection, or an
  // answer of overloaded / rate limited / unavailable, retries just the unanswered ones
  // with their operation ids.
  struct commit_request {
    std::string remote;
    file_plan plan;
    std::uint64_t base_revision = 0;
    std::int64_t mtime_us = 0;
    std::string operation_id;  // empty: a new one
  };
  std::vector<result<entry>> commit_many(const std::vector<commit_request>& requests);

  // Downloads into `local` (written beside it, checked against every hash, then renamed
  // into place). The entry downloaded is returned.
  result<entry> get_file(const std::string& remote, const std::filesystem::path& local,
                         const get_options& options = {});
  result<std::string> get_bytes(const std::string& remote);

  // --- chunks -----------------------------------------------------------------------------
  result<std::vector<std::size_t>> missing_chunks(const std::vector<sha256_digest>& hashes);
  // Uploads the given chunks of `local` (those of `plan` with the indexes listed).
  status put_chunks(const std::filesystem::path& local, const file_plan& plan,
                    const std::vector<std::size_t>& indexes, const put_options& options = {});
  result<std::string> get_chunk(const sha256_digest& hash);
  // Many chunks, pipelined (up to window_bytes in flight by their sizes); each checked
  // against its hash. One answer per hash, in order.
  std::vector<result<std::string>> get_chunks(const std::vector<chunk_info>& chunks);

  // --- the namespace ----------------------------------------------------------------------
  result<entry> stat(const std::string& path);
  struct list_options {
    bool recursive = false;
    std::uint64_t at_seq = 0;      // 0: now
    std::int64_t at_time_us = 0;   // 0: now
  };
  result<std::vector<entry>> list(const std::string& path, const list_options& options);
  result<std::vector<entry>> list(const std::string& path) { return list(path, list_options{}); }
  // The same, with the sequence number the listing is as of: a change-feed cursor from
  // which changes() continues exactly after what was listed.
  struct listing {
    std::vector<entry> entries;
    std::uint64_t seq = 0;
    sha256_digest seq_hash;  // of the event at `seq`: changes(seq, ..., seq_hash) (zero for 0)
  };
  result<listing> list_with_cursor(const std::string& path, const list_options& options);
  // The user's newest sequence number: changes() from it reports only what comes next.
  result<std::uint64_t> current_cursor();
  // These return the sequence number of the change.
  result<std::uint64_t> remove(const std::string& path, std::uint64_t base_revision = 0);
  result<std::uint64_t> move(const std::string& from, const std::string& to);
  result<std::uint64_t> make_folder(const std::string& path);
  result<std::vector<version>> history(const std::string& path);
  result<entry> restore(const std::string& path, std::uint64_t revision);
  result<entry> undelete(const std::string& path);

  // --- changes ----------------------------------------------------------------------------
  // With `cursor_hash` (a page's), fails `stale_cursor` when the server's event at `cursor` is
  // another one now: its journal was restored from a backup, and what was seen up to the
  // cursor is not its history any more.
  result<change_page> changes(std::uint64_t cursor, std::uint32_t limit = 1000,
                              const std::optional<sha256_digest>& cursor_hash = std::nullopt);
  // From now on `fn` gets every change after `cursor`, in order, on this client's thread
  // while it waits in a call or in wait_for_changes(). One subscription per client; a new
  // one replaces it. Survives reconnects (resumes after the last change delivered).
  status subscribe(std::uint64_t cursor, std::function<void(const change&)> fn);
  void unsubscribe();
  // Runs the event loop (delivering subscription callbacks) for up to `timeout`, returning
  // early once `done()` is true (checked after each callback). Fails when the subscription
  // broke and could not be resumed, or the server ended it for good (`unauthenticated`:
  // the token expired; connect again with a new one). One the server ended because the
  // listener fell behind is resumed here.
  status wait_for_changes(std::chrono::milliseconds timeout,
                          const std::function<bool()>& done = {});

  // A fresh operation id (random, hex).
  static std::string new_operation_id();

  struct impl;

private:
  explicit client(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace autosync::sdk
