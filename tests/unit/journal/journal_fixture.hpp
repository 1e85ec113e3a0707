// What the journal tests share: a journal in a temporary folder, and event builders.
#pragma once

#include <capnp/message.h>

#include <memory>
#include <string>

#include "autosync/journal/journal.hpp"
#include "printers.hpp"
#include "temp_dir.hpp"

namespace autosync::test {

inline journal::master_key fixed_master_key(std::uint8_t fill = 0x42) {
  journal::master_key key;
  key.bytes.fill(fill);
  return key;
}

inline journal::options journal_options(const std::filesystem::path& dir,
                                        std::uint8_t key_fill = 0x42) {
  journal::options o;
  o.dir = dir;
  o.master_key = fixed_master_key(key_fill);
  return o;
}

inline std::unique_ptr<journal::journal> open_journal(journal::options o) {
  auto j = journal::journal::open(std::move(o));
  if (!j) throw std::runtime_error("open failed: " + j.err().to_string());
  return std::move(j).value();
}

using event_message = std::unique_ptr<capnp::MallocMessageBuilder>;

inline event_message new_event(std::int64_t timestamp_us = 1700000000000000,
                               const std::string& device = "laptop",
                               const std::string& operation = "op") {
  auto m = std::make_unique<capnp::MallocMessageBuilder>();
  auto e = m->initRoot<schema::Event>();
  e.setTimestampUs(timestamp_us);
  e.setDeviceId(device);
  e.setOperationId(operation);
  return m;
}

inline event_message commit_event(const std::string& path, std::uint64_t node_id = 1,
                                  std::uint64_t base_revision = 0,
                                  const std::string& content = "hello") {
  auto m = new_event();
  auto c = m->getRoot<schema::Event>().initFileCommitted();
  c.setNodeId(node_id);
  c.setPath(path);
  c.setBaseRevision(base_revision);
  auto body = c.initContent();
  body.setSize(content.size());
  auto hash = sha256(content);
  body.setContentHash({hash.bytes.data(), hash.bytes.size()});
  body.setMtimeUs(1600000000000000);
  auto chunks = body.initChunks(1);
  chunks[0].setHash({hash.bytes.data(), hash.bytes.size()});
  chunks[0].setSize(static_cast<std::uint32_t>(content.size()));
  return m;
}

inline journal::append_request request_for(const std::string& user, event_message event) {
  journal::append_request r;
  r.user = user;
  r.events.push_back(std::move(event));
  return r;
}

// Appends one commit event and requires success; returns the seq.
inline std::uint64_t append_commit(journal::journal& j, const std::string& user,
                                   const std::string& path) {
  auto r = j.append_and_wait(request_for(user, commit_event(path)));
  if (!r) throw std::runtime_error("append failed: " + r.err().to_string());
  return r->last_seq;
}

// Every event of a user as (seq, hash, path of the commit or empty).
struct seen_event {
  std::uint64_t seq;
  sha256_digest hash;
  std::string canonical;
};

inline std::vector<seen_event> all_events(const journal::journal& j, const std::string& user) {
  std::vector<seen_event> out;
  auto s = j.read_events(user, 1, UINT64_MAX, [&](journal::stored_event&& e) {
    out.push_back({e.seq(), e.hash(), std::string(e.canonical_bytes())});
    return true;
  });
  if (!s) throw std::runtime_error("read failed: " + s.to_string());
  return out;
}

}  // namespace autosync::test
