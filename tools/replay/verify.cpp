// verify: every chain, every snapshot, every referenced chunk. Reports each problem with
// the user and sequence number (or chunk), and exits non-zero if there is any.
#include <unistd.h>

#include <functional>
#include <map>
#include <set>

#include "replay.hpp"

namespace autosync::replay {

namespace {

struct tally {
  std::size_t users = 0, events = 0, snapshots = 0, chunks = 0, problems = 0;
};

// Where findings and progress go. Progress is one line on a terminal's stderr, rewritten
// in place; a finding first clears it, so the two never share a line when both streams
// are the same terminal.
class report {
public:
  report(std::ostream& out, std::ostream& err, bool show_progress)
      : out_(out), err_(err), show_(show_progress) {}
  std::ostream& problem() {
    if (show_) err_ << "\r\x1b[K" << std::flush;
    return out_;
  }
  // The user being read, every so many of its events (a large user's history is long).
  void progress(std::size_t index, std::size_t users, const std::string& user, std::uint64_t events) {
    if (!show_) return;
    err_ << "\rverifying user " << index << "/" << users << ": " << user;
    if (events != 0) err_ << " (" << events << " events)";
    err_ << "\x1b[K" << std::flush;
  }
  void done() {
    if (show_) err_ << "\r\x1b[K";
  }

private:
  std::ostream& out_;
  std::ostream& err_;
  bool show_;
};

// Replays the user's whole chain, comparing each snapshot with the replay at its seq.
void verify_chain(journal::journal& j, const std::string& user, tally& t,
                  actors::namespace_state& state, report& out,
                  const std::function<void(std::uint64_t)>& progress) {
  auto seqs = j.snapshot_seqs(user);
  if (!seqs) {
    ++t.problems;
    out.problem() << "PROBLEM " << seqs.err().to_string() << "\n";
    return;
  }
  std::set<std::uint64_t> snapshot_at(seqs->begin(), seqs->end());
  auto s = j.read_events(user, 1, UINT64_MAX, [&](journal::stored_event&& e) {
    ++t.events;
    if (e.seq() % 65536 == 0) progress(e.seq());
    if (auto applied = state.apply(e.seq(), e.hash(), e.event()); !applied) {
      ++t.problems;
      out.problem() << "PROBLEM user " << user << ": " << applied.err().message() << "\n";
      return false;
    }
    if (snapshot_at.count(e.seq()) == 0) return true;
    auto snap = j.read_snapshot(user, e.seq());
    // Of an older state format: a node does not load it (it replays instead), so it cannot
    // mislead one; nothing to compare.
    if (snap && snap->has_value() && (*snap)->seq == e.seq() &&
        (*snap)->state_format != schema::NAMESPACE_STATE_FORMAT) {
      return true;
    }
    ++t.snapshots;
    std::optional<actors::namespace_state> decoded;
    if (snap && snap->has_value() && (*snap)->seq == e.seq()) {
      auto d = actors::namespace_state::decode((*snap)->state, (*snap)->seq, (*snap)->head_hash);
      if (d) decoded = std::move(d).value();
    }
    if (!decoded || !(*decoded == state)) {
      ++t.problems;
      out.problem() << "PROBLEM user " << user << " snapshot at seq " << e.seq()
          << " is not the replay of events 1.." << e.seq()
          << (snap ? "" : ": " + snap.err().to_string()) << "\n";
    }
    return true;
  });
  if (!s) {
    ++t.problems;
    out.problem() << "PROBLEM " << s.to_string() << "\n";
  }
}

// Every chunk any revision refers to (deleted files included: they can be restored).
void verify_chunks(journal::journal& j, const std::string& user,
                   const actors::namespace_state& state, tally& t, report& out) {
  std::map<sha256_digest, std::string> referenced;  // chunk -> one path that uses it
  for (actors::node_id id = 1; id < state.next_node_id(); ++id) {
    const actors::node* n = state.get(id);
    if (n == nullptr) continue;
    for (const auto& v : n->history) {
      for (const auto& c : v.content.chunks) {
        referenced.emplace(c.hash, v.path + " revision " + std::to_string(v.revision));
      }
    }
  }
  for (const auto& [id, where] : referenced) {
    ++t.chunks;
    auto got = j.get_chunk(user, id);
    if (!got) {
      ++t.problems;
      out.problem() << "PROBLEM user " << user << " chunk " << id.hex() << " (used by " << where
          << "): " << got.err().to_string() << "\n";
    }
  }
}

}  // namespace

int verify(journal::journal& j, const std::optional<std::string>& only, std::ostream& out,
           std::ostream& err) {
  std::vector<std::string> users;
  if (only) {
    users.push_back(*only);
  } else {
    // Users whose head cannot be read too: verifying them reports what is damaged.
    auto s = j.list_users([&](std::string_view u, const result<journal::user_head>&) {
      users.emplace_back(u);
      return true;
    });
    if (!s) {
      err << "autosync-replay: " << s.to_string() << "\n";
      return 1;
    }
  }
  report findings(out, err, ::isatty(STDERR_FILENO) != 0);
  tally t;
  for (const auto& user : users) {
    ++t.users;
    const auto index = t.users;
    findings.progress(index, users.size(), user, 0);
    actors::namespace_state state;
    verify_chain(j, user, t, state, findings, [&](std::uint64_t events) {
      findings.progress(index, users.size(), user, events);
    });
    verify_chunks(j, user, state, t, findings);
  }
  findings.done();
  out << (t.problems == 0 ? "OK" : "FAILED") << ": " << t.users << " users, " << t.events
      << " events, " << t.snapshots << " snapshots, " << t.chunks << " chunks checked, "
      << t.problems << " problems\n";
  if (t.problems != 0) {
    err << "restore the damaged users from a backup (or a replica), then verify again\n";
    return 1;
  }
  return 0;
}

}  // namespace autosync::replay
