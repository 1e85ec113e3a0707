#include "autosync/server/audit.hpp"

#include "autosync/base/utc_time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>


namespace autosync::server {

result<std::unique_ptr<audit_log>> audit_log::open(const std::filesystem::path& file) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), false);
    // Not registered globally: two logs (tests, several nodes in one process) never clash.
    auto logger = std::make_shared<spdlog::logger>("audit", std::move(sink));
    logger->set_pattern("%v");
    logger->flush_on(spdlog::level::trace);
    return std::unique_ptr<audit_log>(new audit_log(std::move(logger)));
  } catch (const spdlog::spdlog_ex& e) {
    return error(error_kind::unavailable, "cannot open the audit log " + file.string() + ": " +
                                              e.what() + "; check the path and its permissions");
  }
}

audit_log::~audit_log() = default;

void audit_log::write(const audit_record& r) {
  nlohmann::json line = {{"time", format_utc(r.time_us)}, {"action", r.action}};
  if (!r.user.empty()) line["user"] = r.user;
  if (!r.peer.empty()) line["peer"] = r.peer;
  if (!r.target.empty()) line["target"] = r.target;
  if (!r.detail.empty()) line["detail"] = r.detail;
  // Invalid UTF-8 from a client is replaced, not thrown on: the record must be written.
  logger_->info("{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace autosync::server
