// The audit log: one JSON object per line for what security reviews ask about — logins
// (and failed ones), deletes, restores, admin actions. Lines are JSON-escaped, so nothing a
// client sends (a path, a user name) can forge a line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "autosync/base/error.hpp"

namespace autosync::server {

struct audit_record {
  std::int64_t time_us = 0;  // the caller's clock
  std::string action;        // "login", "login_failed", "delete", "restore", "admin"
  std::string user;          // who (empty when unknown, e.g. a refused token)
  std::string peer;          // the client's address
  std::string target;        // what it touched (a path), if anything
  std::string detail;        // why it failed, what changed
};

// Lines are written by a thread of the log's own, in the order they were given: the
// callers are the RPC loop (logins) and the user actors (deletes, restores), which must
// never wait for a disk (a write into the page cache can sleep for as long as the kernel
// throttles dirty pages, and a full pipe or a stuck network file system for ever).
class audit_log {
public:
 // Appends to `file` (created, with its folder, if missing).
 static result<std::unique_ptr<audit_log>> open(const std::filesystem::path& file);
 // Writes every line given before, then closes.
 ~audit_log();
 audit_log(const audit_log&) = delete;
 audit_log& operator=(const audit_log&) = delete;

 // Queues the record's line and returns; waits only while 65,536 lines are queued
 // (the file takes nothing for that long: the callers slow down rather than the memory
 // grow without bound). Thread safe.
 void write(const audit_record& record);
 // Returns once every line given before is written (or failed: see stderr).
 void flush();

 struct impl;

private:
 explicit audit_log(std::unique_ptr<impl> impl);
 std::unique_ptr<impl> impl_;
};

}  // namespace autosync::server
