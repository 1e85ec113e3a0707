// Drives a namespace_state the way a user actor will: decide, then "persist" each event
// (seq, prevHash, canonical bytes, hash, as the journal does), then apply.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "autosync/actors/decide.hpp"
#include "printers.hpp"

namespace autosync::test {

struct logged_event {
  std::uint64_t seq;
  sha256_digest hash;
  kj::Array<capnp::word> canonical;
  schema::Event::Reader reader() const {
    segment_ = canonical.asPtr();
    reader_ = std::make_unique<capnp::SegmentArrayMessageReader>(kj::arrayPtr(&segment_, 1));
    return reader_->getRoot<schema::Event>();
  }
  mutable kj::ArrayPtr<const capnp::word> segment_;
  mutable std::unique_ptr<capnp::SegmentArrayMessageReader> reader_;
};

// A file's content made of one chunk per piece, named by the pieces' hashes.
inline actors::file_content content_of(const std::vector<std::string>& pieces) {
  actors::file_content c;
  sha256_hasher whole;
  for (const auto& p : pieces) {
    c.chunks.push_back({sha256(p), static_cast<std::uint32_t>(p.size())});
    c.size += p.size();
    whole.update(p);
  }
  c.hash = whole.finish();
  return c;
}

class namespace_driver {
public:
  actors::namespace_state state;
  std::vector<logged_event> log;
  std::map<sha256_digest, std::uint64_t> uploaded;  // what the chunk store has, with sizes
  // Every commit's chunks are in the store, as its content says (uploaded just before).
  bool all_chunks_present = true;
  std::vector<sha256_digest> asked;  // every chunk the decisions asked the store about

  actors::decide_result run(actors::command_body body, std::string op = "") {
    actors::command cmd;
    cmd.device_id = "laptop";
    cmd.operation_id = op.empty() ? "op-" + std::to_string(++ops_) : op;
    cmd.timestamp_us = 1700000000000000 + static_cast<std::int64_t>(ops_);
    cmd.body = std::move(body);
    if (const auto* commit = std::get_if<actors::commit_file>(&cmd.body); commit && all_chunks_present) {
      for (const auto& c : commit->content.chunks) uploaded.emplace(c.hash, c.size);
    }
    auto result = actors::decide(state, cmd, [this](const std::vector<sha256_digest>& ids) {
      std::vector<std::optional<std::uint64_t>> out;
      asked.insert(asked.end(), ids.begin(), ids.end());
      for (const auto& id : ids) {
        auto it = uploaded.find(id);
        out.push_back(it != uploaded.end() ? std::optional<std::uint64_t>(it->second) : std::nullopt);
      }
      return out;
    });
    if (auto* d = std::get_if<actors::decision>(&result)) {
      for (auto& message : d->events) persist_and_apply(*message);
    }
    return result;
  }

  // Requires success; returns the last seq written.
  std::uint64_t ok(actors::command_body body, std::string op = "") {
    auto r = run(std::move(body), std::move(op));
    if (auto* refused = std::get_if<actors::refusal>(&r)) {
      throw std::runtime_error("refused: " + refused->reason.to_string());
    }
    return state.last_seq();
  }

  // Requires a refusal; returns it.
  actors::refusal refused(actors::command_body body) {
    auto r = run(std::move(body));
    if (auto* refusal = std::get_if<actors::refusal>(&r)) return std::move(*refusal);
    throw std::runtime_error("expected a refusal");
  }

  void persist_and_apply(capnp::MallocMessageBuilder& message) {
    auto event = message.getRoot<schema::Event>();
    event.setFormatVersion(schema::EVENT_FORMAT_VERSION);
    event.setSeq(state.last_seq() + 1);
    event.setPrevHash({state.last_hash().bytes.data(), 32});
    logged_event logged{state.last_seq() + 1, {}, capnp::canonicalize(event.asReader()), {}, {}};
    auto bytes = logged.canonical.asBytes();
    logged.hash = sha256({reinterpret_cast<const char*>(bytes.begin()), bytes.size()});
    auto s = state.apply(logged.seq, logged.hash, logged.reader());
    if (!s) throw std::runtime_error("apply failed: " + s.to_string());
    log.push_back(std::move(logged));
  }

  // A fresh state built from the log alone.
  actors::namespace_state replay() const {
    actors::namespace_state fresh;
    for (const auto& e : log) {
      auto s = fresh.apply(e.seq, e.hash, e.reader());
      if (!s) throw std::runtime_error("replay failed: " + s.to_string());
    }
    return fresh;
  }

private:
  std::uint64_t ops_ = 0;
};

}  // namespace autosync::test
