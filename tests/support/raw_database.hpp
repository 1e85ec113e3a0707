// The journal's database opened with RocksDB itself, to change it behind the journal's
// back (tampering, deleting events, an unknown format). Handles are indexed like the
// journal's families: 0 metadata, 1 events, 2 snapshots, 3 chunks.
#pragma once

#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace autosync::test {

struct raw_database {
  explicit raw_database(const std::filesystem::path& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", "events", "snapshots", "chunks"})
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(rocksdb::DBOptions(), dir.string(), cfs, &handles, &raw);
    if (!s.ok()) throw std::runtime_error(s.ToString());
    db.reset(raw);
  }
  ~raw_database() {
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  }
  raw_database(const raw_database&) = delete;
  raw_database& operator=(const raw_database&) = delete;

  // The events-family key of a user's event.
  static std::string event_key(const std::string& user, std::uint64_t seq) {
    std::string key(1, static_cast<char>(user.size()));
    key += user;
    for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
    return key;
  }
  void delete_event(const std::string& user, std::uint64_t seq) {
    auto s = db->Delete(rocksdb::WriteOptions(), handles[1], event_key(user, seq));
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }

  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

}  // namespace autosync::test
