// The write path a user actor will run, minus the actor: decide, append through the real
// journal (fsync), then apply what the journal stored.
#pragma once

#include <stdexcept>
#include <string>

#include "autosync/actors/decide.hpp"
#include "autosync/journal/journal.hpp"

namespace autosync::test {

class journaled_user {
public:
  journaled_user(journal::journal& j, std::string user) : journal_(j), user_(std::move(user)) {}

  std::string device_id = "phone";
  std::string operation_prefix = "op-";

  bool run(actors::command_body body) {
    actors::command cmd;
    cmd.device_id = device_id;
    cmd.operation_id = operation_prefix + std::to_string(++ops_);
    cmd.timestamp_us = static_cast<std::int64_t>(ops_);
    cmd.body = std::move(body);
    auto result = actors::decide(state, cmd, [this](const std::vector<sha256_digest>& ids) {
      auto sizes = journal_.chunk_sizes(user_, ids);
      return sizes ? *sizes : std::vector<std::optional<std::uint64_t>>(ids.size());
    });
    auto* d = std::get_if<actors::decision>(&result);
    if (d == nullptr || d->events.empty()) return false;
    journal::append_request request;
    request.user = user_;
    request.events = std::move(d->events);
    request.expected_next_seq = state.last_seq() + 1;
    const auto first = state.last_seq() + 1;
    auto appended = journal_.append_and_wait(std::move(request));
    if (!appended) throw std::runtime_error(appended.err().to_string());
    auto s = journal_.read_events(user_, first, appended->last_seq, [&](journal::stored_event&& e) {
      auto applied = state.apply(e.seq(), e.hash(), e.event());
      if (!applied) throw std::runtime_error(applied.to_string());
      return true;
    });
    if (!s) throw std::runtime_error(s.to_string());
    return true;
  }

  actors::namespace_state state;

private:
  journal::journal& journal_;
  std::string user_;
  std::uint64_t ops_ = 0;
};

}  // namespace autosync::test
