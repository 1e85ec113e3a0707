#include "sync_actions.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "autosync/sdk/chunker.hpp"
#include "local_scan.hpp"

namespace autosync::sdk::internal {

namespace {

// Small uploads and downloads wait in a batch until it holds this many files or bytes: a
// batch's new chunks go in one pipelined upload and its commits in one pipelined
// commit_many; a download batch's chunks come in one pipelined get_chunks. Bounded so a
// batch's pack file (or, downloading, its content in memory) and what is left to redo
// after a failure stay small.
constexpr std::size_t batch_files_max = 1024;
constexpr std::uint64_t batch_bytes_max = 16u << 20;
// Chunks of a pack per put_chunks call. put_chunks keeps as many in flight as its byte
// window (16 MiB) allows, and the server refuses calls beyond 256 in flight on a connection
// (rpc_limits::calls_in_flight_max) as overloaded, which the client then retries from the
// start after a pause: a pack of many small chunks must go in slices below that.
constexpr std::size_t pack_slice_chunks_max = 192;
// The state is saved now and then during a long plan, so a crash redoes little (redoing is
// harmless: the same content is recognised and only recorded): after this long, or after
// as many actions as the state has synced paths (at least checkpoint_actions_min). A save
// writes the whole state, so saving after a fixed number of actions would cost time
// growing with the square of the folder's size; this way it stays proportional to it
// (10,000 new files: 5 saves, not 20).
constexpr std::size_t checkpoint_actions_min = 500;
constexpr auto checkpoint_interval = std::chrono::seconds(10);

using kind = sync_action::kind;

std::uint64_t bytes_of(const sync_action& a) {
  switch (a.what) {
    case kind::upload:
      return a.local.size;
    case kind::download:
      return a.item.size;
    case kind::conflict:
      return a.local.size + a.item.size;
    default:
      return 0;
  }
}

bool is_delete(kind k) {
  return k == kind::delete_local || k == kind::delete_remote || k == kind::delete_local_folder ||
         k == kind::delete_remote_folder;
}

error local_error(const std::string& what, const std::filesystem::path& file, int e) {
  return error(error_kind::local_io, what + " " + file.string() + " on the local disk: " +
                                            std::strerror(e) + "; check the disk");
}

error changed_here() {
  return error(error_kind::conflict, "changed here while syncing; synced on the next pass");
}

// The whole content of a small file.
result<std::string> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return local_error("cannot open", file, errno);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return local_error("cannot read", file, errno);
  return data;
}

// Writes `data` to a new file with the given modification time.
status write_file(const std::filesystem::path& file, const std::string& data,
                  std::int64_t mtime_us) {
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out.flush()) return local_error("cannot write", file, errno);
  }
  if (mtime_us > 0) {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = mtime_us / 1'000'000;
    times[1].tv_nsec = (mtime_us % 1'000'000) * 1000;
    ::utimensat(AT_FDCWD, file.c_str(), times, 0);
  }
  return status::ok();
}

// A file this small is one chunk, named by the file's hash: it can be fetched by that hash
// without asking the server for the file's chunk list first.
bool one_chunk(std::uint64_t size) {
  return size <= chunk_sizes::for_file(size).min;
}

// Failures of one call in a pipelined batch that the same call made alone may get past:
// alone, the client retries them with backoff (and the server's retry-after).
bool worth_a_retry_alone(const error& e) {
  switch (e.kind()) {
    case error_kind::overloaded:
    case error_kind::rate_limited:
    case error_kind::unavailable:
      return true;
    default:
      return false;
  }
}

entry entry_of(const std::string& path, const remote_item& item) {
  entry e;
  e.id = item.id;
  e.path = path;
  e.revision = item.revision;
  e.size = item.size;
  e.hash = item.hash;
  e.mtime_us = item.mtime_us;
  return e;
}

}  // namespace

bool ends_the_pass(const error& e) {
  switch (e.kind()) {
    case error_kind::unauthenticated:
    case error_kind::forbidden:
    case error_kind::unavailable:
    case error_kind::local_io:  // a full disk fails every other write of the pass too
    case error_kind::overloaded:
    case error_kind::rate_limited:
      return true;
    default:
      return false;
  }
}

action_runner::action_runner(action_context context, sync_summary& summary)
    : c_(std::move(context)), summary_(summary) {}

status action_runner::run(const sync_plan& plan) {
  progress_ = {};
  if (plan.another_pass) again_ = true;
  for (const auto& a : plan.actions) {
    if (a.what == kind::record || a.what == kind::forget) continue;
    ++progress_.files_total;
    progress_.bytes_total += bytes_of(a);
  }
  last_checkpoint_ = std::chrono::steady_clock::now();
  for (const auto& a : plan.actions) {
    if (c_.options.stop && c_.options.stop()) break;
    if (is_delete(a.what)) {
      if (auto flushed = flush_batches(); !flushed) return flushed;
    }
    if (auto ran = run_one(a); !ran) return ran;
    const auto now = std::chrono::steady_clock::now();
    if (++since_checkpoint_ >= std::max(checkpoint_actions_min, c_.state.synced.size()) ||
        now - last_checkpoint_ > checkpoint_interval) {
      if (c_.checkpoint) c_.checkpoint();
      since_checkpoint_ = 0;
      last_checkpoint_ = now;
    }
  }
  return flush_batches();
}

status action_runner::flush_batches() {
  if (auto flushed = flush_uploads(); !flushed) return flushed;
  return flush_downloads();
}

status action_runner::run_one(const sync_action& a) {
  if (a.what == kind::upload && a.local.size <= c_.options.batch_file_bytes_max) {
    uploads_.push_back(&a);
    uploads_bytes_ += a.local.size;
    if (uploads_.size() >= batch_files_max || uploads_bytes_ >= batch_bytes_max) {
      return flush_uploads();
    }
    return status::ok();
  }
  if (a.what == kind::download && one_chunk(a.item.size)) {
    downloads_.push_back(&a);
    downloads_bytes_ += a.item.size;
    if (downloads_.size() >= batch_files_max || downloads_bytes_ >= batch_bytes_max) {
      return flush_downloads();
    }
    return status::ok();
  }
  progress(a.path);
  status done;
  switch (a.what) {
    case kind::make_remote_folder:
      done = make_remote_folder(a);
      break;
    case kind::move_remote:
      done = move_remote(a);
      break;
    case kind::move_local:
      done = move_local(a);
      break;
    case kind::make_local_folder:
      done = make_local_folder(a);
      break;
    case kind::upload:
      done = upload(a);
      break;
    case kind::download:
      done = download(a.path, a.item, a.local.inode != 0 ? &a.local : nullptr);
      break;
    case kind::conflict:
      done = conflict(a);
      break;
    case kind::record:
      c_.state.synced[a.path] = a.item;
      return status::ok();
    case kind::forget:
      c_.state.synced.erase(a.path);
      return status::ok();
    case kind::delete_local:
      done = delete_local(a);
      break;
    case kind::delete_remote:
      done = delete_remote(a);
      break;
    case kind::delete_local_folder:
      done = delete_local_folder(a);
      break;
    case kind::delete_remote_folder:
      done = delete_remote(a);
      break;
  }
  done_with(bytes_of(a));
  return done;
}

status action_runner::fail(const std::string& path, error e) {
  if (e.kind() == error_kind::conflict) again_ = true;
  if (ends_the_pass(e)) return e;
  summary_.failed.push_back({path, std::move(e)});
  return status::ok();
}

void action_runner::progress(const std::string& path, std::uint64_t bytes_now) {
  if (!c_.options.progress) return;
  auto p = progress_;
  p.path = path;
  p.bytes_done += bytes_now;
  c_.options.progress(p);
}

void action_runner::done_with(std::uint64_t bytes) {
  ++progress_.files_done;
  progress_.bytes_done += bytes;
  progress(progress_.path);
}

std::filesystem::path action_runner::local(const std::string& rel) const {
  return c_.local_root / rel;
}

std::string action_runner::remote(const std::string& rel) const {
  return remote_path(c_.remote_root, rel);
}

// --- uploads -------------------------------------------------------------------------------

status action_runner::upload(const sync_action& a) {
  transfer_stats stats;
  put_options o;
  o.base_revision = a.base_revision;
  o.mtime_us = a.local.mtime_ns / 1000;
  o.stats = &stats;
  o.progress = [&](std::uint64_t done, std::uint64_t) { progress(a.path, done); };
  auto put = c_.remote.put_file(local(a.path), remote(a.path), o);
  summary_.bytes_sent += stats.bytes_sent;
  if (!put) {
    // put_file cannot tell a file changed under it from a network failure: look.
    auto now = stat_item(local(a.path));
    if (!now || !same_file(*now, a.local)) {
      again_ = true;
      summary_.failed.push_back({a.path, changed_here()});
      return status::ok();
    }
    return fail(a.path, std::move(put).err());
  }
  c_.state.synced[a.path] = remote_item_of(*put);
  ++summary_.uploaded;
  return status::ok();
}

// Sends the batched small files: each is read once into a pack of the batch's distinct
// chunks, the pack goes in one put_chunks (pipelined, and it asks once which chunks the
// server lacks), then the files are committed together. What is committed is exactly what
// was read.
status action_runner::flush_uploads() {
  if (uploads_.empty()) return status::ok();
  const auto batch = std::move(uploads_);
  uploads_.clear();
  uploads_bytes_ = 0;
  const auto pack_file = c_.temp_folder / "upload-pack";
  std::vector<std::optional<file_plan>> plans(batch.size());
  auto sent = send_pack(batch, pack_file, plans);
  std::error_code ec;
  std::filesystem::remove(pack_file, ec);
  if (sent) return commit_pack(batch, plans);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (plans[i]) {
      if (auto failed = fail(batch[i]->path, sent.err()); !failed) return failed;
    }
    progress_.path = batch[i]->path;
    done_with(batch[i]->local.size);
  }
  return status::ok();
}

// Commits the files of a sent pack (those with a plan) in one pipelined commit_many. Each
// answer counts for its file alone, as a commit of its own would: a conflict is that
// file's. An answer the server may give otherwise next time (overloaded, rate limited) is
// asked again alone, with the same operation id, so nothing is applied twice.
status action_runner::commit_pack(const std::vector<const sync_action*>& batch,
                                  std::vector<std::optional<file_plan>>& plans) {
  std::vector<client::commit_request> requests;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!plans[i]) continue;
    const auto& a = *batch[i];
    requests.push_back({remote(a.path), std::move(*plans[i]), a.base_revision,
                        a.local.mtime_ns / 1000, client::new_operation_id()});
  }
  auto answers = c_.remote.commit_many(requests);
  std::size_t answer = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& a = *batch[i];
    if (plans[i]) {
      const auto& r = requests[answer];
      auto committed = std::move(answers[answer]);
      ++answer;
      if (!committed && worth_a_retry_alone(committed.err())) {
        committed = c_.remote.commit(r.remote, r.plan, r.base_revision, r.mtime_us, r.operation_id);
      }
      if (committed) {
        c_.state.synced[a.path] = remote_item_of(*committed);
        ++summary_.uploaded;
      } else if (auto failed = fail(a.path, std::move(committed).err()); !failed) {
        return failed;
      }
    }
    progress_.path = a.path;
    done_with(a.local.size);
  }
  return status::ok();
}

// Writes the batch's distinct chunks to `pack_file` (filling in each readable file's plan)
// and uploads those the server lacks.
status action_runner::send_pack(const std::vector<const sync_action*>& batch,
                                const std::filesystem::path& pack_file,
                                std::vector<std::optional<file_plan>>& plans) {
  file_plan pack;
  {
    std::ofstream out(pack_file, std::ios::binary | std::ios::trunc);
    std::set<sha256_digest> packed;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto data = read_file(local(batch[i]->path));
      if (!data) {
        again_ = true;  // gone or unreadable since the scan: the next scan says which
        summary_.failed.push_back({batch[i]->path, changed_here()});
        continue;
      }
      plans[i] = plan_bytes(*data);
      std::size_t at = 0;
      for (const auto& chunk : plans[i]->chunks) {
        if (packed.insert(chunk.hash).second) {
          out.write(data->data() + at, chunk.size);
          pack.chunks.push_back(chunk);
          pack.size += chunk.size;
        }
        at += chunk.size;
      }
    }
    if (!out.flush()) return local_error("cannot write", pack_file, errno);
  }
  // put_chunks keeps as many chunks in flight as its byte window allows, which for small
  // chunks is more calls than the server takes at once: the pack goes in slices.
  std::uint64_t bytes_before = 0;
  for (std::size_t first = 0; first < pack.chunks.size(); first += pack_slice_chunks_max) {
    const auto end = std::min(pack.chunks.size(), first + pack_slice_chunks_max);
    std::vector<std::size_t> slice;
    std::uint64_t slice_bytes = 0;
    for (auto i = first; i < end; ++i) {
      slice.push_back(i);
      slice_bytes += pack.chunks[i].size;
    }
    transfer_stats stats;
    put_options o;
    o.stats = &stats;
    o.progress = [&](std::uint64_t done, std::uint64_t) {
      progress(batch.front()->path, bytes_before + done);
    };
    auto sent = c_.remote.put_chunks(pack_file, pack, slice, o);
    summary_.bytes_sent += stats.bytes_sent;
    if (!sent) return sent;
    bytes_before += slice_bytes;
  }
  return status::ok();
}

// --- downloads -----------------------------------------------------------------------------

// Fetches the batched one-chunk files together (one pipelined get_chunks, each chunk
// checked against the hash asked for, the file's), then puts each in place. A file whose
// chunk did not come (a file stored in another cut, a failure) is downloaded alone, as
// download() would.
status action_runner::flush_downloads() {
  if (downloads_.empty()) return status::ok();
  const auto batch = std::move(downloads_);
  downloads_.clear();
  downloads_bytes_ = 0;
  std::vector<chunk_info> wanted;
  for (const auto* a : batch) {
    if (a->item.size == 0) continue;
    wanted.push_back({a->item.hash, static_cast<std::uint32_t>(a->item.size)});
  }
  auto answers = c_.remote.get_chunks(wanted);
  std::size_t answer = 0;
  for (const auto* a : batch) {
    std::optional<std::string> content;
    if (a->item.size == 0) {
      content.emplace();
    } else if (auto& got = answers[answer++]) {
      content = std::move(*got);
    }
    progress_.path = a->path;
    auto done = finish_download(a->path, a->item, a->local.inode != 0 ? &a->local : nullptr,
                                std::move(content));
    done_with(a->item.size);
    if (!done) return done;
  }
  return status::ok();
}

// Downloads `path` into the engine's temp folder, then puts it in place if the local path
// is still as scanned (`before`, or absent when null): a local change since wins.
status action_runner::download(const std::string& path, const remote_item& item,
                               const local_item* before) {
  // Small enough to be one chunk: one call instead of two. Empty: nothing to fetch at all.
  std::optional<std::string> content;
  if (item.size == 0) {
    content.emplace();
  } else if (one_chunk(item.size)) {
    if (auto got = c_.remote.get_chunk(item.hash)) content = std::move(*got);
  }
  return finish_download(path, item, before, std::move(content));
}

// `content`: the file's content fetched by its hash already (the client checked it against
// that hash), or nothing: the file is fetched whole (stat, then its chunks) instead.
status action_runner::finish_download(const std::string& path, const remote_item& item,
                                      const local_item* before,
                                      std::optional<std::string> content) {
  const auto temp = c_.temp_folder / ("download-" + client::new_operation_id());
  result<entry> got = error(error_kind::not_found, "");
  if (content) {
    summary_.bytes_received += content->size();
    if (auto written = write_file(temp, *content, item.mtime_us); !written) return written;
    got = entry_of(remote(path), item);
  } else {
    transfer_stats stats;
    get_options o;
    o.stats = &stats;
    o.progress = [&](std::uint64_t done, std::uint64_t) { progress(path, done); };
    got = c_.remote.get_file(remote(path), temp, o);
    summary_.bytes_received += stats.bytes_received;
  }
  if (!got) return fail(path, std::move(got).err());
  return place(path, temp, *got, before);
}

// Renames the downloaded `temp` to `path` if the local path is still as scanned, and
// records what is there now on both sides.
status action_runner::place(const std::string& path, const std::filesystem::path& temp,
                            const entry& got, const local_item* before) {
  const auto target = local(path);
  auto now = stat_item(target);
  const bool unchanged =
      before ? now && same_file(*now, *before) : !now && now.err().kind() == error_kind::not_found;
  std::error_code ec;
  if (!unchanged) {
    std::filesystem::remove(temp, ec);
    again_ = true;
    summary_.failed.push_back({path, changed_here()});
    return status::ok();
  }
  std::filesystem::create_directories(target.parent_path(), ec);
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    std::filesystem::remove(temp, ec);
    summary_.failed.push_back({path, local_error("cannot write", target, e)});
    return status::ok();
  }
  if (auto placed = stat_item(target)) {
    placed->hash = got.hash;
    c_.state.scanned[path] = *placed;
  }
  c_.state.synced[path] = remote_item_of(got);
  ++summary_.downloaded;
  return status::ok();
}

// The local version moves aside to its conflicted-copy name and is uploaded as a new file;
// the server's version then takes the name.
status action_runner::conflict(const sync_action& a) {
  const auto from = local(a.path);
  const auto to = local(a.to);
  auto now = stat_item(from);
  if (!now || !same_file(*now, a.local) || stat_item(to)) {
    again_ = true;
    summary_.failed.push_back({a.path, changed_here()});
    return status::ok();
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    summary_.failed.push_back({a.path, local_error("cannot rename", from, errno)});
    return status::ok();
  }
  ++summary_.conflicts;
  c_.state.scanned.erase(a.path);
  c_.state.scanned[a.to] = a.local;
  transfer_stats stats;
  put_options o;
  o.base_revision = 0;
  o.mtime_us = a.local.mtime_ns / 1000;
  o.stats = &stats;
  auto put = c_.remote.put_file(to, remote(a.to), o);
  summary_.bytes_sent += stats.bytes_sent;
  if (put) {
    c_.state.synced[a.to] = remote_item_of(*put);
    ++summary_.uploaded;
  } else if (auto failed = fail(a.to, std::move(put).err()); !failed) {
    return failed;
  }
  return download(a.path, a.item, nullptr);
}

// --- deletes -------------------------------------------------------------------------------

status action_runner::delete_local(const sync_action& a) {
  const auto file = local(a.path);
  auto now = stat_item(file);
  if (!now && now.err().kind() == error_kind::not_found) {
    c_.state.synced.erase(a.path);
    c_.state.scanned.erase(a.path);
    return status::ok();
  }
  if (!now || !same_file(*now, a.local)) {
    again_ = true;  // edited since the scan: kept, and uploaded by the next pass
    return status::ok();
  }
  if (::unlink(file.c_str()) != 0) {
    summary_.failed.push_back({a.path, local_error("cannot delete", file, errno)});
    return status::ok();
  }
  c_.state.synced.erase(a.path);
  c_.state.scanned.erase(a.path);
  ++summary_.deleted_local;
  return status::ok();
}

// Files at their synced revision (a newer one is a conflict: kept); folders whole, as of
// the remote view this pass planned from: what another device put inside since makes the
// delete a conflict, and the next pass fetches it.
status action_runner::delete_remote(const sync_action& a) {
  const bool folder = a.what == kind::delete_remote_folder;
  if (folder) {
    const std::string below = a.path + "/";
    for (const auto& from : unmoved_) {
      if (from != a.path && from.rfind(below, 0) != 0) continue;
      summary_.failed.push_back(
          {a.path, error(error_kind::conflict,
                         "not deleted on the server: " + from +
                             " was to move out of it first and did not (see its error); the "
                             "next pass decides again")});
      return status::ok();
    }
  }
  auto removed = c_.remote.remove(remote(a.path), folder ? c_.state.cursor : a.base_revision);
  if (!removed && removed.err().kind() != error_kind::not_found) {
    return fail(a.path, std::move(removed).err());
  }
  if (removed) {
    // Everything below a folder went with it: count it all, as the deletes here are counted.
    const std::string below = a.path + "/";
    const auto& synced = c_.state.synced;
    for (auto it = synced.lower_bound(below); it != synced.end() && it->first.rfind(below, 0) == 0;
         ++it) {
      ++summary_.deleted_remote;
    }
    ++summary_.deleted_remote;
  }
  erase_subtree(c_.state.synced, a.path);
  return status::ok();
}

status action_runner::delete_local_folder(const sync_action& a) {
  const auto folder = local(a.path);
  if (::rmdir(folder.c_str()) != 0 && errno != ENOENT) {
    const int e = errno;
    if (e == ENOTEMPTY || e == EEXIST) {
      again_ = true;  // something new arrived inside: the next pass uploads it
    } else {
      summary_.failed.push_back({a.path, local_error("cannot delete", folder, e)});
    }
    return status::ok();
  }
  c_.state.synced.erase(a.path);
  c_.state.scanned.erase(a.path);
  ++summary_.deleted_local;
  return status::ok();
}

// --- moves and folders ---------------------------------------------------------------------

status action_runner::move_local(const sync_action& a) {
  const auto from = local(a.path);
  const auto to = local(a.to);
  auto now = stat_item(from);
  if (!now || now->inode != a.local.inode || now->folder != a.local.folder || stat_item(to)) {
    again_ = true;  // changed since the scan: the next pass decides again
    return status::ok();
  }
  std::error_code ec;
  std::filesystem::create_directories(to.parent_path(), ec);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    summary_.failed.push_back({a.path, local_error("cannot rename", from, errno)});
    return status::ok();
  }
  move_subtree(c_.state.synced, a.path, a.to);
  move_subtree(c_.state.scanned, a.path, a.to);
  ++summary_.moved_local;
  return status::ok();
}

status action_runner::move_remote(const sync_action& a) {
  auto moved = c_.remote.move(remote(a.path), remote(a.to));
  if (!moved) {
    unmoved_.push_back(a.path);
    return fail(a.path, std::move(moved).err());
  }
  move_subtree(c_.state.synced, a.path, a.to);
  ++summary_.moved_remote;
  return status::ok();
}

status action_runner::make_local_folder(const sync_action& a) {
  std::error_code ec;
  if (std::filesystem::create_directories(local(a.path), ec)) ++summary_.folders_created_local;
  if (ec) {
    summary_.failed.push_back(
        {a.path, error(error_kind::local_io, "cannot create the folder " +
                                                    local(a.path).string() + ": " + ec.message())});
    return status::ok();
  }
  c_.state.synced[a.path] = a.item;
  if (auto placed = stat_item(local(a.path))) c_.state.scanned[a.path] = *placed;
  return status::ok();
}

status action_runner::make_remote_folder(const sync_action& a) {
  auto made = c_.remote.make_folder(remote(a.path));
  remote_item folder;
  folder.folder = true;
  if (made) {
    folder.id = feed_folder_id(*made);
    folder.revision = *made;
    ++summary_.folders_created_remote;
  } else if (made.err().kind() != error_kind::conflict) {  // conflict: it is there already
    return fail(a.path, std::move(made).err());
  }
  c_.state.synced[a.path] = folder;
  return status::ok();
}

}  // namespace autosync::sdk::internal
