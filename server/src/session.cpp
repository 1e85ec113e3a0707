// The Session capability. Each method checks the session (token not expired, the
// connection's calls in flight, the user's rate), then hands the work to the user's actor
// (commands, reads of the live state) or to the blocking pool (chunks, past states, the
// change feed), and fills its results when the answer crosses back into the event loop.
#include "session.hpp"

#include "autosync/actors/path.hpp"
#include "autosync/actors/replay.hpp"
#include "retention.hpp"
#include "subscription.hpp"
#include "wire.hpp"

namespace autosync::server {

namespace rpc = schema::rpc;

namespace {

// A SHA-256 hash list longer than this is a client bug (a 16 GiB file has ~16k chunks).
constexpr std::size_t hashes_per_call_max = 65536;
// The SDK's chunker cuts at most 4 MiB.
constexpr std::size_t chunk_bytes_max = 4u << 20;
constexpr std::size_t operation_id_bytes_max = 128;
constexpr std::uint32_t changes_per_call_max = 10000;

// Capnp's default first segment for an answer is 8 KiB, allocated and zeroed per call: for
// a commit's few dozen words that was a tenth of the event loop's CPU. Answers that can be
// long (lists, chunks, the change feed) keep the default; the rest start at 512 bytes
// (with capnp's own header words still under 1 KiB, where malloc's thread cache serves
// them without consolidating) and grow by another segment in the rare case they need it.
template <class Context>
constexpr bool answers_briefly = true;
template <>
constexpr bool answers_briefly<capnp::CallContext<rpc::Session::MissingChunksParams, rpc::Session::MissingChunksResults>> = false;
template <>
constexpr bool answers_briefly<capnp::CallContext<rpc::Session::GetChunkParams, rpc::Session::GetChunkResults>> = false;
template <>
constexpr bool answers_briefly<capnp::CallContext<rpc::Session::ListParams, rpc::Session::ListResults>> = false;
template <>
constexpr bool answers_briefly<capnp::CallContext<rpc::Session::HistoryParams, rpc::Session::HistoryResults>> = false;
template <>
constexpr bool answers_briefly<capnp::CallContext<rpc::Session::ChangesParams, rpc::Session::ChangesResults>> = false;
constexpr capnp::MessageSize brief_answer{64, 0};

// The answer to a command, with the entry at the command's path afterwards.
struct command_reply {
  actors::command_outcome outcome;
  std::optional<entry_copy> entry;
};

// Fills the failure of a command's results; false when there is one.
template <class Results>
bool succeeded(const actors::command_outcome& out, Results results) {
  if (out.failed) {
    to_wire(*out.failed, results.initFailure());
    return false;
  }
  if (out.refused) {
    to_wire(*out.refused, results.initFailure());
    return false;
  }
  return true;
}

// A page of a listing: the entries after `after` by path, up to about `bytes_max` bytes
// of answer (0: all of them), and whether more follow.
struct list_page {
  std::vector<entry_copy> entries;
  bool more = false;
};

// An answer may be at most 8 MiB (the message limit both ends read with): a page stops
// well short of it whatever the caller asked.
constexpr std::size_t list_page_bytes_max = 4u << 20;

// About what an entry takes in an answer: its fixed part, its texts and its hash.
std::size_t answer_bytes(const entry_copy& e) {
  return 112 + e.path.size() + e.device_id.size();
}

// The folder's children (all below it when recursive), by path, without chunks; a file
// lists as itself.
result<list_page> list_of(const actors::namespace_state& state, std::string_view path,
                          bool recursive, std::string_view after = {}, std::size_t bytes_max = 0) {
  const actors::node* folder = state.get(actors::root_id);
  if (path != "/") {
    if (auto ok = actors::validate_path(path); !ok) return ok.err();
    folder = state.lookup(path);
  }
  if (folder == nullptr) return error(error_kind::not_found, std::string(path) + " does not exist");
  // Paths first, and entries copied only for the page: a listing of a large tree in pages
  // would otherwise copy the whole tree for each one.
  std::vector<std::pair<std::string, const actors::node*>> found;
  auto add = [&](const actors::node& n) {
    auto p = state.path_of(n.id);
    if (after.empty() || std::string_view(p) > after) found.emplace_back(std::move(p), &n);
  };
  if (!folder->folder) {
    add(*folder);
  } else {
    std::vector<actors::node_id> todo{folder->id};
    while (!todo.empty()) {
      const auto id = todo.back();
      todo.pop_back();
      for (const auto* child : state.children(id)) {
        add(*child);
        if (recursive && child->folder) todo.push_back(child->id);
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  list_page out;
  std::size_t bytes = 0;
  for (const auto& [p, n] : found) {
    auto e = copy_entry(state, *n);
    e.content.chunks.clear();
    bytes += answer_bytes(e);
    if (bytes_max != 0 && bytes > bytes_max && !out.entries.empty()) {
      out.more = true;
      break;
    }
    out.entries.push_back(std::move(e));
  }
  return out;
}

class session_impl final : public rpc::Session::Server {
public:
  session_impl(rpc_context& ctx, std::shared_ptr<connection_state> connection,
               session_identity who)
      : ctx_(ctx), connection_(std::move(connection)), who_(std::move(who)) {}

protected:
  kj::Promise<void> missingChunks(MissingChunksContext context) override;
  kj::Promise<void> putChunk(PutChunkContext context) override;
  kj::Promise<void> getChunk(GetChunkContext context) override;
  kj::Promise<void> commit(CommitContext context) override;
  kj::Promise<void> stat(StatContext context) override;
  kj::Promise<void> list(ListContext context) override;
  kj::Promise<void> delete_(DeleteContext context) override;
  kj::Promise<void> move(MoveContext context) override;
  kj::Promise<void> createFolder(CreateFolderContext context) override;
  kj::Promise<void> history(HistoryContext context) override;
  kj::Promise<void> restore(RestoreContext context) override;
  kj::Promise<void> undelete(UndeleteContext context) override;
  kj::Promise<void> changes(ChangesContext context) override;
  kj::Promise<void> subscribe(SubscribeContext context) override;

private:
  // Why the call may not run now (expired token, too many calls, rate), or nothing.
  std::optional<std::pair<error, std::uint32_t>> refusal_now();

  // Runs `work` under the session's checks: refused at once if refusal_now() says so;
  // counted as in flight; answered `unavailable` if it takes longer than the deadline.
  template <class Context, class Work>
  kj::Promise<void> guarded(Context context, Work&& work) {
    if constexpr (answers_briefly<Context>) context.getResults(brief_answer);
    if (auto refused = refusal_now()) {
      auto failure = context.getResults().initFailure();
      to_wire(refused->first, failure);
      failure.setRetryAfterMs(refused->second);
      return kj::READY_NOW;
    }
    apply_retention_if_due();
    ++connection_->in_flight;
    auto release = kj::defer([connection = connection_] { --connection->in_flight; });
    // Cap'n Proto's readers throw on what no client of ours sends (a pointer of the wrong
    // kind, text without its NUL): the request is refused as malformed, and its place
    // among the connection's calls in flight is given back with it.
    kj::Promise<void> started = nullptr;
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] { started = work(); })) {
      to_wire(error(error_kind::invalid, std::string("malformed request: ") +
                                             e->getDescription().cStr() +
                                             "; send it as the schema says"),
              context.getResults().initFailure());
      return kj::READY_NOW;
    }
    auto deadline = ctx_.timer.afterDelay(ctx_.limits.deadline.count() * kj::MILLISECONDS)
                        .then([context, ms = ctx_.limits.deadline.count()]() mutable {
                          to_wire(error(error_kind::unavailable,
                                        "no answer within " + std::to_string(ms) +
                                            " ms: the server is busy; retry (with the same "
                                            "operation id, so nothing applies twice)"),
                                  context.getResults().initFailure());
                        });
    return started.exclusiveJoin(kj::mv(deadline)).attach(kj::mv(release));
  }

  // Asks the user's actor to reclaim what the retention policy lets go, when it is due for
  // this user: in order with the user's commands, answered to nobody.
  void apply_retention_if_due();

  actors::command make_command(capnp::Text::Reader operation_id, actors::command_body body);
  // Sends a command to the user's actor; the reply carries the entry at `entry_path`. When
  // the command changes something (not a retry), `audited` goes to the audit log as it
  // becomes durable, whether or not the reply still reaches the client.
  kj::Promise<command_reply> run(actors::command cmd, std::string entry_path,
                                 std::optional<audit_record> audited = std::nullopt);
  // Reads the user's live state on its actor's thread; `fn` must copy what it needs.
  template <class T>
  kj::Promise<result<T>> read_state(std::function<result<T>(const actors::namespace_state&)> fn);
  template <class T>
  kj::Promise<result<T>> on_pool(std::function<result<T>()> fn);

  rpc_context& ctx_;
  std::shared_ptr<connection_state> connection_;
  session_identity who_;
};

std::optional<std::pair<error, std::uint32_t>> session_impl::refusal_now() {
  const auto now = now_us();
  if (now / 1000000 > who_.ends_at_s) {
    return std::make_pair(
        error(error_kind::unauthenticated,
              "the session's token has expired: log in again with a new token"),
        0u);
  }
  if (connection_->in_flight >= ctx_.limits.calls_in_flight_max) {
    return std::make_pair(error(error_kind::overloaded,
                                "more than " + std::to_string(ctx_.limits.calls_in_flight_max) +
                                    " calls in flight on this connection: wait for answers"),
                          10u);
  }
  if (auto wait_ms = ctx_.limiter.admit(who_.user, now); wait_ms > 0) {
    return std::make_pair(error(error_kind::rate_limited,
                                "too many requests for user " + who_.user + ": retry in " +
                                    std::to_string(wait_ms) + " ms"),
                          wait_ms);
  }
  return std::nullopt;
}

void session_impl::apply_retention_if_due() {
  const auto now = now_us();
  const auto cutoff = ctx_.retention.due(who_.user, now);
  if (!cutoff) return;
  apply_retention(ctx_.users, ctx_.audit, who_.user, now, *cutoff, connection_->peer);
}

actors::command session_impl::make_command(capnp::Text::Reader operation_id,
                                           actors::command_body body) {
  actors::command cmd;
  cmd.device_id = who_.device_id;
  cmd.operation_id = text_of(operation_id);
  cmd.timestamp_us = now_us();
  cmd.body = std::move(body);
  return cmd;
}

kj::Promise<command_reply> session_impl::run(actors::command cmd, std::string entry_path,
                                             std::optional<audit_record> audited) {
  if (cmd.operation_id.empty() || cmd.operation_id.size() > operation_id_bytes_max) {
    command_reply r;
    r.outcome.refused = actors::refusal{
        error(error_kind::invalid, "an operation id of 1 to 128 bytes is required (the same "
                                   "for every retry of one change)"),
        std::nullopt,
        {}};
    return kj::mv(r);
  }
  auto answer = make_cross_thread_reply<command_reply>();
  // The entry is read when the command is decided (later commands of its batch may change
  // it again) and sent once the outcome says it is durable.
  auto reply = std::make_shared<command_reply>();
  actors::state_view view;
  if (!entry_path.empty()) {
    view = [reply, entry_path = std::move(entry_path)](const actors::namespace_state& state,
                                                       const actors::command_outcome& out) {
      // A retry answers as the first run did: the entry that commit made, even if another
      // device changed the file since (a client would otherwise take that device's
      // revision for its own, and never send or fetch the difference).
      if (out.was_retry && out.applied) {
        if (auto made = entry_at_revision(state, entry_path, out.applied->last_seq)) {
          reply->entry = std::move(*made);
          return;
        }
      }
      if (const auto* n = state.lookup(entry_path)) reply->entry = copy_entry(state, *n);
    };
  }
  if (audited) {
    audited->user = who_.user;
    audited->peer = connection_->peer;
  }
  ctx_.users.send(who_.user, std::move(cmd), std::move(view),
                  [fulfil = std::move(answer.fulfil), reply, log = ctx_.audit,
                   audited = std::move(audited)](actors::command_outcome out) mutable {
                    // Here, not in the reply's continuation: a deadline or a dropped
                    // connection cancels that, and the client's retry is a was_retry.
                    if (log != nullptr && audited && out.applied && !out.was_retry) {
                      audited->time_us = now_us();
                      log->write(*audited);
                    }
                    reply->outcome = std::move(out);
                    fulfil(std::move(*reply));
                  });
  return kj::mv(answer.promise);
}

template <class T>
kj::Promise<result<T>> session_impl::read_state(
    std::function<result<T>(const actors::namespace_state&)> fn) {
  auto answer = make_cross_thread_reply<result<T>>();
  ctx_.users.read(who_.user, [fulfil = std::move(answer.fulfil), fn = std::move(fn)](
                                 const actors::namespace_state* state, const error* failed) {
    if (state == nullptr) return fulfil(result<T>(*failed));
    fulfil(fn(*state));
  });
  return kj::mv(answer.promise);
}

template <class T>
kj::Promise<result<T>> session_impl::on_pool(std::function<result<T>()> fn) {
  auto answer = make_cross_thread_reply<result<T>>();
  ctx_.pool.run([fulfil = std::move(answer.fulfil), fn = std::move(fn)] { fulfil(fn()); });
  return kj::mv(answer.promise);
}

// --- chunks --------------------------------------------------------------------------------

kj::Promise<void> session_impl::missingChunks(MissingChunksContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto hashes = context.getParams().getHashes();
    if (hashes.size() > hashes_per_call_max) {
      to_wire(error(error_kind::too_large, "at most 65536 hashes per call: split the list"),
              context.getResults().initFailure());
      return kj::READY_NOW;
    }
    std::vector<sha256_digest> ids;
    ids.reserve(hashes.size());
    for (auto h : hashes) {
      auto d = digest_from(h);
      if (!d) {
        to_wire(d.err(), context.getResults().initFailure());
        return kj::READY_NOW;
      }
      ids.push_back(*d);
    }
    auto& journal = ctx_.journal;
    return on_pool<std::vector<bool>>([&journal, user = who_.user, ids = std::move(ids)] {
             return journal.has_chunks(user, ids);
           })
        .then([context](result<std::vector<bool>> have) mutable {
          if (!have) return to_wire(have.err(), context.getResults().initFailure());
          std::vector<std::uint32_t> missing;
          for (std::size_t i = 0; i < have->size(); ++i) {
            if (!(*have)[i]) missing.push_back(static_cast<std::uint32_t>(i));
          }
          auto out = context.getResults().initMissing(static_cast<unsigned>(missing.size()));
          for (unsigned i = 0; i < out.size(); ++i) out.set(i, missing[i]);
        });
  });
}

kj::Promise<void> session_impl::putChunk(PutChunkContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    auto id = digest_from(params.getHash());
    if (!id) {
      to_wire(id.err(), context.getResults().initFailure());
      return kj::READY_NOW;
    }
    auto data = params.getData();
    if (data.size() > chunk_bytes_max) {
      to_wire(error(error_kind::too_large, "a chunk of " + std::to_string(data.size()) +
                                               " bytes: at most 4 MiB per chunk"),
              context.getResults().initFailure());
      return kj::READY_NOW;
    }
    // Copied here: the params die with the call, and the deadline may end the call while
    // the pool is still at work. The journal hashes and seals the copy off the event loop.
    auto answer = make_cross_thread_reply<result<bool>>();
    ctx_.pool.run([&journal = ctx_.journal, user = who_.user, id = *id,
                   bytes = std::string(data.asChars().begin(), data.size()),
                   fulfil = std::move(answer.fulfil)]() mutable {
      journal.put_chunk(user, id, std::move(bytes),
                        [fulfil](result<bool> stored) { fulfil(std::move(stored)); });
    });
    return answer.promise.then([context](result<bool> stored) mutable {
      if (!stored) return to_wire(stored.err(), context.getResults().initFailure());
      context.getResults().setStored(*stored);
    });
  });
}

kj::Promise<void> session_impl::getChunk(GetChunkContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto id = digest_from(context.getParams().getHash());
    if (!id) {
      to_wire(id.err(), context.getResults().initFailure());
      return kj::READY_NOW;
    }
    auto& journal = ctx_.journal;
    return on_pool<std::string>([&journal, user = who_.user, id = *id] {
             return journal.get_chunk(user, id);
           })
        .then([context](result<std::string> data) mutable {
          if (!data) return to_wire(data.err(), context.getResults().initFailure());
          // One segment sized for the chunk, not 8 KiB and then a second one for it.
          context.getResults(capnp::MessageSize{16 + data->size() / 8, 0}).setData(
              capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(data->data()), data->size()));
        });
  });
}

// --- commands ------------------------------------------------------------------------------

kj::Promise<void> session_impl::commit(CommitContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    actors::commit_file c;
    c.path = text_of(p.getPath());
    c.base_revision = p.getBaseRevision();
    c.content.size = p.getSize();
    c.content.mtime_us = p.getMtimeUs();
    auto hash = digest_from(p.getHash());
    if (!hash) {
      to_wire(hash.err(), context.getResults().initFailure());
      return kj::READY_NOW;
    }
    c.content.hash = *hash;
    for (auto chunk : p.getChunks()) {
      auto h = digest_from(chunk.getHash());
      if (!h) {
        to_wire(h.err(), context.getResults().initFailure());
        return kj::READY_NOW;
      }
      c.content.chunks.push_back({*h, chunk.getSize()});
    }
    std::string path = c.path;
    return run(make_command(p.getOperationId(), std::move(c)), path)
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (!succeeded(r.outcome, results)) return;
          results.setWasRetry(r.outcome.was_retry);
          if (r.entry) to_wire(*r.entry, results.initEntry(), true);
        });
  });
}

kj::Promise<void> session_impl::delete_(DeleteContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    std::string path = text_of(p.getPath());
    return run(make_command(p.getOperationId(), actors::delete_entry{path, p.getBaseRevision()}),
               {}, audit_record{0, "delete", {}, {}, path, ""})
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (!succeeded(r.outcome, results)) return;
          results.setSeq(r.outcome.applied->last_seq);
        });
  });
}

kj::Promise<void> session_impl::move(MoveContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    return run(make_command(p.getOperationId(),
                            actors::move_entry{text_of(p.getFrom()), text_of(p.getTo())}),
               {})
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (succeeded(r.outcome, results)) results.setSeq(r.outcome.applied->last_seq);
        });
  });
}

kj::Promise<void> session_impl::createFolder(CreateFolderContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    return run(make_command(p.getOperationId(), actors::create_folder{text_of(p.getPath())}), {})
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (succeeded(r.outcome, results)) results.setSeq(r.outcome.applied->last_seq);
        });
  });
}

kj::Promise<void> session_impl::restore(RestoreContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    std::string path = text_of(p.getPath());
    const auto revision = p.getRevision();
    return run(make_command(p.getOperationId(), actors::restore_revision{path, revision}), path,
               audit_record{0, "restore", {}, {}, path, "revision " + std::to_string(revision)})
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (!succeeded(r.outcome, results)) return;
          if (r.entry) to_wire(*r.entry, results.initEntry(), true);
        });
  });
}

kj::Promise<void> session_impl::undelete(UndeleteContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    std::string path = text_of(p.getPath());
    return run(make_command(p.getOperationId(), actors::undelete_file{path}), path,
               audit_record{0, "undelete", {}, {}, path, ""})
        .then([context](command_reply r) mutable {
          auto results = context.getResults();
          if (!succeeded(r.outcome, results)) return;
          if (r.entry) to_wire(*r.entry, results.initEntry(), true);
        });
  });
}

// --- reads ---------------------------------------------------------------------------------

kj::Promise<void> session_impl::stat(StatContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    std::string path = text_of(context.getParams().getPath());
    return read_state<entry_copy>([path](const actors::namespace_state& state) -> result<entry_copy> {
             if (path == "/") return copy_entry(state, *state.get(actors::root_id));
             if (auto ok = actors::validate_path(path); !ok) return ok.err();
             const auto* n = state.lookup(path);
             if (n == nullptr) return error(error_kind::not_found, path + " does not exist");
             return copy_entry(state, *n);
           })
        .then([context](result<entry_copy> e) mutable {
          if (!e) return to_wire(e.err(), context.getResults().initFailure());
          to_wire(*e, context.getResults().initEntry(), true);
        });
  });
}

kj::Promise<void> session_impl::list(ListContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    std::string path = text_of(p.getPath());
    const bool recursive = p.getRecursive();
    std::string after = text_of(p.getAfter());
    const std::size_t page_bytes =
        p.getPageBytesMax() == 0 ? 0
                                 : std::min<std::size_t>(p.getPageBytesMax(), list_page_bytes_max);
    struct listing {
      list_page page;
      std::uint64_t seq = 0;
      sha256_digest seq_hash;  // of the event at seq
    };
    auto fill = [context](result<listing> l) mutable {
      auto results = context.getResults();
      if (!l) return to_wire(l.err(), results.initFailure());
      auto out = results.initEntries(static_cast<unsigned>(l->page.entries.size()));
      for (unsigned i = 0; i < out.size(); ++i) to_wire(l->page.entries[i], out[i], false);
      results.setSeq(l->seq);
      if (l->seq != 0) results.setSeqHash(bytes_of(l->seq_hash));
      results.setMore(l->page.more);
    };
    auto listed = [path, recursive, after,
                   page_bytes](const actors::namespace_state& state) -> result<listing> {
      auto page = list_of(state, path, recursive, after, page_bytes);
      if (!page) return page.err();
      return listing{std::move(page).value(), state.last_seq(), state.last_hash()};
    };
    const std::uint64_t at_seq = p.getAtSeq();
    const std::int64_t at_time = p.getAtTimeUs();
    if (at_seq == 0 && at_time == 0) return read_state<listing>(listed).then(kj::mv(fill));
    auto in_the_past = [this, at_seq, at_time, listed]() {
      return on_pool<listing>(
          [&store = ctx_.store, user = who_.user, at_seq, at_time, listed]() -> result<listing> {
            std::uint64_t seq = at_seq;
            if (seq == 0) {
              auto s = actors::seq_at_time(store, user, at_time);
              if (!s) return s.err();
              seq = *s;
            } else if (auto there = actors::check_cursor(store, user, seq); !there) {
              // Not "now" under the label of a point that has not happened yet; told
              // before the replay, which would only find that out at its end.
              if (there.err().kind() != error_kind::stale_cursor) return there.err();
              return error(error_kind::invalid, "seq " + std::to_string(at_seq) +
                                                    " is past the newest change: list "
                                                    "without a point to see now");
            }
            auto state = actors::state_at(store, user, seq);
            if (!state) return state.err();
            return listed(*state);
          });
    };
    // A point in time asked for itself is read on the pool, as ever (no user actor is
    // started for it). The next page of a listing is asked at the first page's seq: while
    // nothing changed since, the live state is that point, and no replay is needed.
    if (at_seq == 0 || after.empty()) return in_the_past().then(kj::mv(fill));
    struct maybe_live {
      std::optional<result<listing>> listing_now;
    };
    return read_state<maybe_live>(
               [at_seq, listed](const actors::namespace_state& state) -> result<maybe_live> {
                 if (state.last_seq() != at_seq) return maybe_live{};
                 return maybe_live{listed(state)};
               })
        .then([in_the_past, fill](result<maybe_live> live) mutable -> kj::Promise<void> {
          if (live && live->listing_now) {
            fill(std::move(*live->listing_now));
            return kj::READY_NOW;
          }
          if (!live) {
            fill(std::move(live).err());
            return kj::READY_NOW;
          }
          return in_the_past().then(kj::mv(fill));
        });
  });
}

kj::Promise<void> session_impl::history(HistoryContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    std::string path = text_of(context.getParams().getPath());
    using versions = std::vector<actors::version>;
    return read_state<versions>([path](const actors::namespace_state& state) -> result<versions> {
             if (auto ok = actors::validate_path(path); !ok) return ok.err();
             auto h = state.history(path);
             if (h.empty()) {
               return error(error_kind::not_found,
                            "no file is at " + path + ", and none was deleted there within "
                            "the retention period (older deletions are reclaimed)");
             }
             return h;
           })
        .then([context](result<versions> h) mutable {
          auto results = context.getResults();
          if (!h) return to_wire(h.err(), results.initFailure());
          auto out = results.initVersions(static_cast<unsigned>(h->size()));
          for (unsigned i = 0; i < out.size(); ++i) to_wire((*h)[i], out[i]);
        });
  });
}

kj::Promise<void> session_impl::changes(ChangesContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    auto p = context.getParams();
    const std::uint32_t limit = std::min(std::max(p.getLimit(), 1u), changes_per_call_max);
    std::optional<sha256_digest> expected;
    if (p.getCursorHash().size() != 0) {
      auto h = digest_from(p.getCursorHash());
      if (!h) {
        to_wire(h.err(), context.getResults().initFailure());
        return kj::READY_NOW;
      }
      expected = *h;
    }
    return on_pool<actors::change_page>([&store = ctx_.store, user = who_.user,
                                         cursor = p.getCursor(), limit, expected] {
             return actors::changes_since(store, user, cursor, limit, expected);
           })
        .then([context](result<actors::change_page> page) mutable {
          auto results = context.getResults();
          if (!page) return to_wire(page.err(), results.initFailure());
          auto out = results.initChanges(static_cast<unsigned>(page->changes.size()));
          for (unsigned i = 0; i < out.size(); ++i) to_wire(page->changes[i], out[i]);
          results.setCursor(page->cursor);
          results.setMore(page->more);
          if (page->cursor != 0) {
            results.setCursorHash(bytes_of(page->cursor_hash));
          }
        });
  });
}

kj::Promise<void> session_impl::subscribe(SubscribeContext context) {
  return guarded(context, [this, context]() mutable -> kj::Promise<void> {
    const auto cursor = context.getParams().getCursor();
    return on_pool<bool>([&store = ctx_.store, user = who_.user, cursor]() -> result<bool> {
             if (auto ok = actors::check_cursor(store, user, cursor); !ok) return ok.err();
             return true;
           })
        .then([this, context, cursor](result<bool> checked) mutable {
          if (!checked) return to_wire(checked.err(), context.getResults().initFailure());
          // Counted here, where the subscription is made: no burst of calls gets past it.
          if (connection_->subscriptions >= subscriptions_per_connection_max) {
            return to_wire(
                error(error_kind::too_large,
                      "this connection holds " + std::to_string(connection_->subscriptions) +
                          " subscriptions, the most it may: drop one before subscribing again"),
                context.getResults().initFailure());
          }
          subscription_target target{who_.user, who_.ends_at_s, cursor, connection_};
          context.getResults().setSubscription(
              make_subscription(ctx_, std::move(target), context.getParams().getListener()));
        });
  });
}

}  // namespace

kj::Own<rpc::Session::Server> make_session(rpc_context& ctx,
                                           std::shared_ptr<connection_state> connection,
                                           session_identity who) {
  return kj::heap<session_impl>(ctx, std::move(connection), std::move(who));
}

}  // namespace autosync::server
