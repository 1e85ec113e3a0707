#include "autosync/actors/event_store.hpp"

namespace autosync::actors {

void journal_event_store::append(const std::string& user,
                                 std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> events,
                                 std::uint64_t expected_next_seq, journal::append_callback done) {
  journal::append_request request;
  request.user = user;
  request.events = std::move(events);
  request.expected_next_seq = expected_next_seq;
  journal_.append(std::move(request), std::move(done));
}

status journal_event_store::read(const std::string& user, std::uint64_t from, std::uint64_t to,
                                 const std::function<bool(journal::stored_event&&)>& visit,
                                 journal::chain_check check) const {
  return journal_.read_events(user, from, to, visit, check);
}

result<std::optional<journal::snapshot>> journal_event_store::latest_snapshot(
    const std::string& user) const {
  return journal_.read_snapshot(user, UINT64_MAX);
}

result<std::optional<journal::snapshot>> journal_event_store::snapshot_at(
    const std::string& user, std::uint64_t at_or_below) const {
  return journal_.read_snapshot(user, at_or_below);
}

status journal_event_store::write_snapshot(const std::string& user, const journal::snapshot& snap) {
  return journal_.write_snapshot(user, snap);
}

void journal_event_store::write_snapshot(const std::string& user, const journal::snapshot& snap,
                                         journal::status_callback done) {
  journal_.write_snapshot(user, snap, std::move(done));
}

result<std::vector<std::optional<std::uint64_t>>> journal_event_store::chunk_sizes(
    const std::string& user, const std::vector<sha256_digest>& ids) const {
  return journal_.chunk_sizes(user, ids);
}

status journal_event_store::list_chunks(
    const std::string& user, const std::function<bool(const journal::stored_chunk&)>& visit) const {
  return journal_.list_chunks(user, visit);
}

void journal_event_store::reclaim_chunks(const std::string& user, std::vector<sha256_digest> ids,
                                         std::int64_t stored_before_us,
                                         journal::reclaim_callback done) {
  journal_.reclaim_chunks(user, std::move(ids), stored_before_us, std::move(done));
}

}  // namespace autosync::actors
