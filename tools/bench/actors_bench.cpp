// autosync-bench replay | activate: rebuilding a user's state from the journal.
//   replay:   events applied per second, reading (decrypting, verifying) them from the
//             journal, and applying them to a fresh namespace;
//   activate: milliseconds to load a user with 100,000 files from its snapshot.
#include <filesystem>

#include "actors_bench.hpp"
#include "autosync/actors/decide.hpp"
#include "autosync/actors/replay.hpp"
#include "autosync/journal/journal.hpp"

namespace autosync::bench {

namespace {

namespace fs = std::filesystem;

// Writes a user of `files` files (in folders of 100), as a sync client would create them:
// one commit each. Events are chained here exactly as the journal chains them, so they can
// be applied at once and appended 1,000 at a time. Returns the final state.
actors::namespace_state write_user(journal::journal& j, const std::string& user,
                                   std::size_t files, const settings& s) {
  actors::namespace_state state;
  journal::append_request pending;
  pending.user = user;
  auto flush = [&] {
    if (pending.events.empty()) return;
    auto r = j.append_and_wait(std::move(pending));
    if (!r) throw std::runtime_error(r.err().to_string());
    pending = journal::append_request{};
    pending.user = user;
  };
  // Every chunk is 4096 bytes, as each commit below says.
  const auto all_present = [](const std::vector<sha256_digest>& ids) {
    return std::vector<std::optional<std::uint64_t>>(ids.size(), 4096);
  };
  for (std::size_t i = 0; i < files; ++i) {
    actors::command cmd;
    cmd.device_id = "bench";
    cmd.operation_id = "op-" + std::to_string(i);
    cmd.timestamp_us = static_cast<std::int64_t>(i);
    actors::file_content content;
    content.size = 4096;
    content.hash = sha256(std::to_string(i));
    content.chunks.push_back({content.hash, 4096});
    cmd.body = actors::commit_file{"/f" + std::to_string(i / 100) + "/file-" + std::to_string(i) + ".txt",
                                   0, content};
    auto decided = actors::decide(state, cmd, all_present);
    auto* d = std::get_if<actors::decision>(&decided);
    if (d == nullptr) throw std::runtime_error("the benchmark's own commit was refused");
    for (auto& message : d->events) {
      auto event = message->getRoot<schema::Event>();
      event.setFormatVersion(schema::EVENT_FORMAT_VERSION);
      event.setSeq(state.last_seq() + 1);
      event.setPrevHash({state.last_hash().bytes.data(), 32});
      auto canonical = capnp::canonicalize(event.asReader());
      auto bytes = canonical.asBytes();
      const auto hash = sha256({reinterpret_cast<const char*>(bytes.begin()), bytes.size()});
      if (auto applied = state.apply(state.last_seq() + 1, hash, event.asReader()); !applied) {
        throw std::runtime_error(applied.to_string());
      }
      pending.events.push_back(std::move(message));
    }
    if (pending.events.size() >= 1000) flush();
    if (i % 20000 == 0) progress(s, "writing " + user + ": " + std::to_string(i) + " files");
  }
  flush();
  auto head = j.head(user);
  if (!head || head->last_hash != state.last_hash()) {
    throw std::runtime_error("the journal's chain differs from the benchmark's");
  }
  return state;
}

}  // namespace

int run_replay_bench(const settings& s, const std::string& dir_option) {
  const bench_root root(dir_option);
  constexpr std::size_t files = 200000;
  auto j = open_bench_journal(root.path() / "replay");
  actors::journal_event_store store(*j);
  const auto live = write_user(*j, "replay-user", files, s);
  scenario_result result;
  result.scenario = "replay";
  for (int run = 0; run < s.runs; ++run) {
    actors::namespace_state state;
    const auto start = clock_type::now();
    auto st = actors::replay_events(store, "replay-user", state);
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (!st || !(state == live)) throw std::runtime_error("replay did not rebuild the state");
    result.ops_per_s.push_back(static_cast<double>(state.last_seq()) / seconds);
    result.latencies_ms.push_back(seconds * 1000);
    progress(s, "replay run " + std::to_string(run + 1) + ": " +
                    std::to_string(static_cast<long>(result.ops_per_s.back())) + " events/s");
  }
  // Reading and applying on one thread, the way a short tail is replayed: what one core
  // does (the target is stated per core).
  std::vector<double> one_thread_rates;
  for (int run = 0; run < s.runs; ++run) {
    actors::namespace_state state;
    bool applied_all = true;
    const auto start = clock_type::now();
    auto st = j->read_events(
        "replay-user", 1, UINT64_MAX,
        [&](journal::stored_event&& e) {
          applied_all = static_cast<bool>(state.apply(e.seq(), e.hash(), e.event()));
          return applied_all;
        },
        journal::chain_check::by_caller);
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (!st || !applied_all || !(state == live)) {
      throw std::runtime_error("replay on one thread did not rebuild the state");
    }
    one_thread_rates.push_back(static_cast<double>(state.last_seq()) / seconds);
  }
  result.extra["one_thread_events_per_s"] = median(one_thread_rates);
  // Reading alone (iterate, decrypt, check the chain, parse), on one thread.
  std::vector<double> read_rates;
  for (int run = 0; run < s.runs; ++run) {
    std::uint64_t read = 0;
    const auto start = clock_type::now();
    auto st = j->read_events("replay-user", 1, UINT64_MAX, [&](journal::stored_event&& e) {
      read += e.seq() != 0;
      return true;
    });
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (!st || read != live.last_seq()) throw std::runtime_error("reading the events failed");
    read_rates.push_back(static_cast<double>(read) / seconds);
  }
  result.extra["read_only_events_per_s"] = median(read_rates);
  // The same events already read and decrypted: what applying alone costs.
  std::vector<journal::stored_event> events;
  auto st = j->read_events("replay-user", 1, UINT64_MAX, [&](journal::stored_event&& e) {
    events.push_back(std::move(e));
    return true;
  });
  if (!st) throw std::runtime_error(st.to_string());
  std::vector<double> apply_rates;
  for (int run = 0; run < s.runs; ++run) {
    actors::namespace_state state;
    const auto start = clock_type::now();
    for (const auto& e : events) {
      if (!state.apply(e.seq(), e.hash(), e.event())) throw std::runtime_error("apply failed");
    }
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    apply_rates.push_back(static_cast<double>(events.size()) / seconds);
  }
  result.extra["apply_only_events_per_s"] = median(apply_rates);
  result.extra["events"] = static_cast<double>(live.last_seq());
  report(s, result);
  return 0;
}

int run_activate_bench(const settings& s, const std::string& dir_option) {
  const bench_root root(dir_option);
  constexpr std::size_t files = 100000;
  auto j = open_bench_journal(root.path() / "activate");
  const auto live = write_user(*j, "big-user", files, s);
  journal::snapshot snap{live.last_seq(), live.last_hash(), 0, schema::NAMESPACE_STATE_FORMAT,
                         live.encode()};
  if (auto w = j->write_snapshot("big-user", snap); !w) throw std::runtime_error(w.to_string());
  scenario_result result;
  result.scenario = "activate";
  for (int run = 0; run < std::max(5, s.runs); ++run) {
    const auto start = clock_type::now();
    auto stored = j->read_snapshot("big-user", UINT64_MAX);
    if (!stored || !stored->has_value()) throw std::runtime_error("no snapshot");
    auto state = actors::namespace_state::decode((*stored)->state, (*stored)->seq, (*stored)->head_hash);
    // The tail after the snapshot (none here) would be applied next.
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    if (!state || state->live_files() != files) throw std::runtime_error("activation failed");
    result.latencies_ms.push_back(ms);
    result.ops_per_s.push_back(1000.0 / ms);
  }
  result.extra["files"] = static_cast<double>(files);
  result.extra["snapshot_mib"] = static_cast<double>(snap.state.size()) / (1 << 20);
  report(s, result);
  return 0;
}

}  // namespace autosync::bench
