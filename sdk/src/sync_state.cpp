#include "sync_state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace autosync::sdk::internal {

namespace {

using json = nlohmann::json;

std::string errno_text(int e) {
  return std::strerror(e);
}

std::string hex_or_empty(bool folder, const sha256_digest& hash) {
  return folder ? std::string() : hash.hex();
}

json to_json(const remote_tree& tree) {
  json out = json::object();
  for (const auto& [path, item] : tree) {
    out[path] = json::array({item.folder ? 1 : 0, item.id, item.revision, item.size,
                             hex_or_empty(item.folder, item.hash), item.mtime_us});
  }
  return out;
}

json to_json(const local_tree& tree) {
  json out = json::object();
  for (const auto& [path, item] : tree) {
    out[path] = json::array({item.folder ? 1 : 0, item.size, item.mtime_ns, item.inode,
                             hex_or_empty(item.folder, item.hash)});
  }
  return out;
}

// Reads a hash field: empty for folders, else 64 hex digits. Throws like json's get<>().
sha256_digest hash_of(const json& field) {
  const auto text = field.get<std::string>();
  if (text.empty()) return {};
  auto digest = sha256_digest::from_hex(text);
  if (!digest) throw std::runtime_error("bad hash \"" + text + "\"");
  return *digest;
}

remote_tree remote_tree_of(const json& in) {
  remote_tree tree;
  for (const auto& [path, a] : in.items()) {
    remote_item item;
    item.folder = a.at(0).get<int>() != 0;
    item.id = a.at(1).get<std::uint64_t>();
    item.revision = a.at(2).get<std::uint64_t>();
    item.size = a.at(3).get<std::uint64_t>();
    item.hash = hash_of(a.at(4));
    item.mtime_us = a.at(5).get<std::int64_t>();
    tree.emplace(path, item);
  }
  return tree;
}

local_tree local_tree_of(const json& in) {
  local_tree tree;
  for (const auto& [path, a] : in.items()) {
    local_item item;
    item.folder = a.at(0).get<int>() != 0;
    item.size = a.at(1).get<std::uint64_t>();
    item.mtime_ns = a.at(2).get<std::int64_t>();
    item.inode = a.at(3).get<std::uint64_t>();
    item.hash = hash_of(a.at(4));
    tree.emplace(path, item);
  }
  return tree;
}

error damaged(const std::filesystem::path& file, const std::string& why) {
  return error(error_kind::corruption,
               "the sync state " + file.string() + " cannot be read (" + why +
                   "); delete it to start afresh: the next sync compares both sides again and "
                   "keeps both versions of any file that differs");
}

// Writes all of `data` to `fd`, then fsyncs it.
status write_all(int fd, const std::string& data, const std::filesystem::path& file) {
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return error(error_kind::local_io,
                   "cannot write " + file.string() + ": " + errno_text(errno) + "; check the disk");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return error(error_kind::local_io,
                 "cannot sync " + file.string() + ": " + errno_text(errno) + "; check the disk");
  }
  return status::ok();
}

}  // namespace

result<sync_state> load_state(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec) && !ec) {
    return error(error_kind::not_found, "no sync state " + file.string());
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return error(error_kind::local_io,
                 "cannot read " + file.string() + ": " + errno_text(errno) + "; check the disk");
  }
  try {
    const json j = json::parse(in);
    if (j.at("format").get<int>() != sync_state::format) {
      return damaged(file, "format " + j.at("format").dump() +
                               " is not the one this build "
                               "knows (" +
                               std::to_string(sync_state::format) + ")");
    }
    sync_state state;
    state.user = j.at("user").get<std::string>();
    state.remote_root = j.at("remote_root").get<std::string>();
    state.cursor = j.at("cursor").get<std::uint64_t>();
    // Written by later builds: older state files have none (checked from the next page on).
    if (auto h = j.find("cursor_hash"); h != j.end()) {
      if (auto d = sha256_digest::from_hex(h->get<std::string>())) state.cursor_hash = *d;
    }
    state.remote_listed = j.at("remote_listed").get<bool>();
    state.scanned_at_ns = j.at("scanned_at_ns").get<std::int64_t>();
    state.remote = remote_tree_of(j.at("remote"));
    state.synced = remote_tree_of(j.at("synced"));
    state.scanned = local_tree_of(j.at("scanned"));
    return state;
  } catch (const std::exception& e) {
    return damaged(file, e.what());
  }
}

status save_state(const std::filesystem::path& file, const sync_state& state) {
  json j;
  j["format"] = sync_state::format;
  j["user"] = state.user;
  j["remote_root"] = state.remote_root;
  j["cursor"] = state.cursor;
  j["cursor_hash"] = state.cursor_hash.hex();
  j["remote_listed"] = state.remote_listed;
  j["scanned_at_ns"] = state.scanned_at_ns;
  j["remote"] = to_json(state.remote);
  j["synced"] = to_json(state.synced);
  j["scanned"] = to_json(state.scanned);
  // Paths are whatever bytes the file system holds: never fail on invalid UTF-8.
  const std::string data = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";

  const auto temp = file.string() + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return error(error_kind::local_io,
                 "cannot create " + temp + ": " + errno_text(errno) + "; check the disk");
  auto written = write_all(fd, data, temp);
  ::close(fd);
  if (!written) return written;
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    return error(error_kind::local_io,
                 "cannot replace " + file.string() + ": " + errno_text(errno) + "; check the disk");
  }
  const int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return status::ok();
}

result<folder_lock> folder_lock::take(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return error(error_kind::local_io,
                 "cannot open " + file.string() + ": " + errno_text(errno) + "; check the disk");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return error(error_kind::conflict, "another sync is running on this folder (it holds " +
                                             file.string() + "); stop it first");
    }
    return error(error_kind::local_io,
                 "cannot lock " + file.string() + ": " + errno_text(e) + "; check the disk");
  }
  return folder_lock(fd);
}

folder_lock& folder_lock::operator=(folder_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

folder_lock::~folder_lock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace autosync::sdk::internal
