// The narrow interface a user's history is persisted through. On one node the journal
// implements it (journal_event_store); in a cluster a replicated shard log will, answering
// an append only once a majority of replicas have it durably.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autosync/journal/journal.hpp"

namespace autosync::actors {

class event_store {
public:
  virtual ~event_store() = default;

  // Appends the events (seq and prevHash filled in by the store) as one atomic append,
  // only if the user's next seq is `expected_next_seq` (else `conflict`). `done` runs once,
  // on a thread of the store's, after the events are durable or the append failed.
  virtual void append(const std::string& user,
                      std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events,
                      std::uint64_t expected_next_seq, journal::append_callback done) = 0;

  // The user's events from..to, verified, in order; with chain_check::by_caller the
  // caller compares each event's prevHash with the hash of the one before it.
  virtual status read(const std::string& user, std::uint64_t from, std::uint64_t to,
                      const std::function<bool(journal::stored_event&&)>& visit,
                      journal::chain_check check = journal::chain_check::by_journal) const = 0;

  virtual result<std::optional<journal::snapshot>> latest_snapshot(const std::string& user) const = 0;
  // The newest snapshot with seq <= at_or_below.
  virtual result<std::optional<journal::snapshot>> snapshot_at(const std::string& user,
                                                               std::uint64_t at_or_below) const = 0;
  virtual status write_snapshot(const std::string& user, const journal::snapshot& snap) = 0;
  // Queued: `done` runs on a store thread once the snapshot is durable (or failed).
  virtual void write_snapshot(const std::string& user, const journal::snapshot& snap,
                              journal::status_callback done) = 0;

  // For each chunk, its size in the user's store, or nothing when the store lacks it.
  virtual result<std::vector<std::optional<std::uint64_t>>> chunk_sizes(
      const std::string& user, const std::vector<sha256_digest>& ids) const = 0;
  // Every chunk the user has (id, size, when stored), in id order.
  virtual status list_chunks(const std::string& user,
                             const std::function<bool(const journal::stored_chunk&)>& visit) const = 0;
  // Forgets those of `ids` stored before `stored_before_us` and gives their space back;
  // `done` runs on a store thread once that is durable (or failed).
  virtual void reclaim_chunks(const std::string& user, std::vector<sha256_digest> ids,
                              std::int64_t stored_before_us, journal::reclaim_callback done) = 0;
};

// The single-node store: the journal itself.
class journal_event_store final : public event_store {
public:
  explicit journal_event_store(journal::journal& j) : journal_(j) {}

  void append(const std::string& user,
              std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events,
              std::uint64_t expected_next_seq, journal::append_callback done) override;
  status read(const std::string& user, std::uint64_t from, std::uint64_t to,
              const std::function<bool(journal::stored_event&&)>& visit,
              journal::chain_check check = journal::chain_check::by_journal) const override;
  result<std::optional<journal::snapshot>> latest_snapshot(const std::string& user) const override;
  result<std::optional<journal::snapshot>> snapshot_at(const std::string& user,
                                                       std::uint64_t at_or_below) const override;
  status write_snapshot(const std::string& user, const journal::snapshot& snap) override;
  void write_snapshot(const std::string& user, const journal::snapshot& snap,
                      journal::status_callback done) override;
  result<std::vector<std::optional<std::uint64_t>>> chunk_sizes(
      const std::string& user, const std::vector<sha256_digest>& ids) const override;
  status list_chunks(const std::string& user,
                     const std::function<bool(const journal::stored_chunk&)>& visit) const override;
  void reclaim_chunks(const std::string& user, std::vector<sha256_digest> ids,
                      std::int64_t stored_before_us, journal::reclaim_callback done) override;

private:
  journal::journal& journal_;
};

}  // namespace autosync::actors
