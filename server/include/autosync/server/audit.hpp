// The audit log: one JSON object per line for what security reviews ask about — logins
// (and failed ones), deletes, restores, admin actions. Lines are JSON-escaped, so nothing a
// client sends (a path, a user name) can forge a line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "autosync/base/error.hpp"

namespace spdlog {
class logger;
}

namespace autosync::server {

struct audit_record {
  std::int64_t time_us = 0;  // the caller's clock
  std::string action;        // "login", "login_failed", "delete", "restore", "admin"
  std::string user;          // who (empty when unknown, e.g. a refused token)
  std::string peer;          // the client's address
  std::string target;        // what it touched (a path), if anything
  std::string detail;        // why it failed, what changed
};

class audit_log {
public:
  // Appends to `file` (created if missing). Every record is flushed as it is written.
  static result<std::unique_ptr<audit_log>> open(const std::filesystem::path& file);
  ~audit_log();

  // Thread safe.
  void write(const audit_record& record);

private:
  explicit audit_log(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace autosync::server
