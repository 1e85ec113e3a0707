// Checkpoints and backups. RocksDB's engines copy a consistent state of every column
// family; the chunk packs beside it are append-only, so copying them after the database
// always yields every byte the copied index names. Reclaiming only punches ranges the index
// no longer names, and lists them beside the pack first: the lists are copied whole, after
// the packs, so a copy's list is at least as new as its pack, and a walk steps over what
// the copy may hold either way (as it was, or zeros). No release happens during a copy.
//
// Backup folder layout:  <backup>/db/      RocksDB BackupEngine (checksummed, incremental)
//                        <backup>/chunks/  copies of the packs, extended by each backup
#include <fcntl.h>
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/utilities/checkpoint.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "journal_impl.hpp"

namespace autosync::journal {

namespace fs = std::filesystem;

namespace {

error backup_error(const rocksdb::IOStatus& s, const std::string& what) {
  return storage_error(rocksdb::Status(s), what);
}

error file_error(const std::string& what, const fs::path& file, int err) {
  return error(error_kind::unavailable,
               what + " " + file.string() + ": " + std::strerror(err) + "; check the disk and retry");
}

// Makes `to` hold the first `length` bytes of `from`, copying only what `to` lacks (packs
// only ever grow, so an existing copy is a prefix), then syncs it.
status copy_prefix(const fs::path& from, const fs::path& to, std::uint64_t length) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return file_error("opening", from, errno);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return file_error("creating", to, err);
  }
  status result;
  const off_t existing = ::lseek(out, 0, SEEK_END);
  if (existing < 0 || static_cast<std::uint64_t>(existing) > length) {
    result = error(error_kind::corruption, "backup copy " + to.string() +
                                               " is longer than the pack it copies: it is not a "
                                               "copy of this journal; use an empty backup folder");
  }
  std::vector<char> buffer(1 << 20);
  auto offset = static_cast<std::uint64_t>(std::max<off_t>(existing, 0));
  while (result && offset < length) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - offset));
    ssize_t n = ::pread(in, buffer.data(), want, static_cast<off_t>(offset));
    if (n <= 0) {
      result = file_error("reading", from, n < 0 ? errno : EIO);
      break;
    }
    if (::pwrite(out, buffer.data(), static_cast<std::size_t>(n), static_cast<off_t>(offset)) != n) {
      result = file_error("writing", to, errno);
      break;
    }
    offset += static_cast<std::uint64_t>(n);
  }
  if (result && ::fsync(out) != 0) result = file_error("syncing", to, errno);
  ::close(in);
  ::close(out);
  return result;
}

// Replaces `to` with a copy of `from` (when `from` exists), atomically and durably.
status copy_whole(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::exists(from, ec)) return status::ok();
  const fs::path temporary = to.string() + ".copying";
  fs::copy_file(from, temporary, fs::copy_options::overwrite_existing, ec);
  if (ec) return error(error_kind::unavailable, "cannot copy " + from.string() + ": " + ec.message());
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) return file_error("syncing", temporary, errno);
  fs::rename(temporary, to, ec);
  if (ec) return error(error_kind::unavailable, "cannot replace " + to.string() + ": " + ec.message());
  return status::ok();
}

// Copies (or hard-links, when `link` and the file system allow) every pack of `from` into
// `to`, and copies their lists of reclaimed ranges.
status copy_packs(const fs::path& from, const fs::path& to, bool link) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return error(error_kind::unavailable, "cannot create " + to.string() + ": " + ec.message());
  // The lists first: a copy that stops half way then never holds a pack newer than its
  // list (zeros a walk would take for the end of the pack, and stop at).
  for (const auto& pack : pack_store::list(from)) {
    if (auto s = copy_whole(reclaimed_path(pack), reclaimed_path(to / pack.filename())); !s) {
      return s;
    }
  }
  for (const auto& pack : pack_store::list(from)) {
    const fs::path target = to / pack.filename();
    if (link) {
      fs::create_hard_link(pack, target, ec);
      if (!ec) continue;
    }
    const auto length = fs::file_size(pack, ec);
    if (ec) return error(error_kind::unavailable, "cannot read " + pack.string() + ": " + ec.message());
    if (auto s = copy_prefix(pack, target, length); !s) return s;
  }
  int dir = ::open(to.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return status::ok();
}

// A backup is complete once its packs are copied: <backup>/complete/<id> marks it. One whose
// copy failed (or whose process died) is not listed, verified or restored: a later backup
// copies pack bytes as they are then, and reclaimed ones read as zeros by then.
fs::path completion_marker(const fs::path& backup_dir, std::uint32_t id) {
  return backup_dir / "complete" / std::to_string(id);
}

status write_marker(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return file_error("writing", file, err);
  }
  ::close(fd);
  const int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return status::ok();
}

bool is_complete(const fs::path& backup_dir, std::uint32_t id) {
  std::error_code ec;
  // Backup folders from builds before markers: every backup counts as complete (packs
  // were never punched then, and each backup extended what an interrupted one missed).
  if (!fs::exists(backup_dir / "complete", ec)) return true;
  return fs::exists(completion_marker(backup_dir, id), ec);
}

error incomplete(const fs::path& backup_dir, std::uint32_t id) {
  return error(error_kind::not_found,
               "backup " + std::to_string(id) + " in " + backup_dir.string() +
                   " is incomplete (copying its chunks did not finish): use another backup");
}

result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> open_backups(const fs::path& backup_dir) {
  if (!fs::exists(backup_dir / "db")) {
    return error(error_kind::not_found, "no backups in " + backup_dir.string() +
                                            " (it should hold a db/ folder)");
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::Env::Default(), rocksdb::BackupEngineOptions((backup_dir / "db").string()), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(raw);
}

}  // namespace

status journal::create_checkpoint(const fs::path& dir) {
  // No release of reclaimed space between the index copy and the pack links.
  std::lock_guard lock(impl_->release_mutex);
  rocksdb::Checkpoint* raw = nullptr;
  auto s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw);
  if (!s.ok()) return storage_error(s, "preparing a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  s = checkpoint->CreateCheckpoint(dir.string());
  if (!s.ok()) return storage_error(s, "creating checkpoint " + dir.string());
  // Hard links are safe for packs: appends never rewrite a byte, and reclaiming leaves
  // alone every pack with a second link.
  return copy_packs(impl_->packs->dir(), dir / "chunks", /*link=*/true);
}

result<std::uint32_t> journal::create_backup(const fs::path& backup_dir) {
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) {
    return error(error_kind::unavailable, "cannot create backup folder " + backup_dir.string() +
                                              ": " + ec.message());
  }
  rocksdb::BackupEngine* raw = nullptr;
  auto s = rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions((backup_dir / "db").string()),
                                       rocksdb::Env::Default(), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = true;  // the backup then needs no WAL replay to be complete
  rocksdb::BackupID id = 0;
  // No release of reclaimed space between the index backup and the pack copies: the copies
  // hold every byte the backed-up index names.
  std::lock_guard lock(impl_->release_mutex);
  if (!fs::exists(backup_dir / "complete", ec)) {
    // The first backup here that marks completion: those before it count as complete.
    std::vector<rocksdb::BackupInfo> before;
    engine->GetBackupInfo(&before);
    fs::create_directories(backup_dir / "complete", ec);
    if (ec) return error(error_kind::unavailable, "cannot create " + (backup_dir / "complete").string());
    for (const auto& info : before) {
      if (auto w = write_marker(completion_marker(backup_dir, info.backup_id)); !w) return w.err();
    }
  }
  s = engine->CreateNewBackup(create, impl_->db.get(), &id);
  if (!s.ok()) return backup_error(s, "creating a backup in " + backup_dir.string());
  if (auto copied = copy_packs(impl_->packs->dir(), backup_dir / "chunks", /*link=*/false); !copied) {
    (void)engine->DeleteBackup(id);  // its index names bytes its copies may lack
    return std::move(copied).err();
  }
  if (auto marked = write_marker(completion_marker(backup_dir, id)); !marked) return marked.err();
  return id;
}

result<std::vector<std::uint32_t>> list_backups(const fs::path& backup_dir) {
  auto engine = open_backups(backup_dir);
  if (!engine) return std::move(engine).err();
  std::vector<rocksdb::BackupInfo> infos;
  (*engine)->GetBackupInfo(&infos);
  std::vector<std::uint32_t> ids;
  for (const auto& info : infos) {
    if (is_complete(backup_dir, info.backup_id)) ids.push_back(info.backup_id);
  }
  return ids;
}

status verify_backup(const fs::path& backup_dir, std::uint32_t backup_id) {
  if (!is_complete(backup_dir, backup_id)) return incomplete(backup_dir, backup_id);
  auto engine = open_backups(backup_dir);
  if (!engine) return std::move(engine).err();
  auto s = (*engine)->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    return backup_error(s, "verifying backup " + std::to_string(backup_id) + " in " +
                               backup_dir.string());
  }
  for (const auto& pack : pack_store::list(backup_dir / "chunks")) {
    auto records = pack_store::verify_file(pack);
    if (!records) return std::move(records).err();
  }
  return status::ok();
}

status restore_backup(const fs::path& backup_dir, std::uint32_t backup_id,
                      const fs::path& target_dir) {
  std::error_code ec;
  if (fs::exists(target_dir / "CURRENT", ec)) {
    // Restoring over a journal would replace files under whatever uses it.
    return error(error_kind::conflict,
                 "restore target " + target_dir.string() +
                     " already holds a journal: stop the node and restore into an empty folder");
  }
  if (!is_complete(backup_dir, backup_id)) return incomplete(backup_dir, backup_id);
  auto engine = open_backups(backup_dir);
  if (!engine) return std::move(engine).err();
  auto s = (*engine)->RestoreDBFromBackup(backup_id, target_dir.string(), target_dir.string());
  if (!s.ok()) {
    return backup_error(s, "restoring backup " + std::to_string(backup_id) + " into " +
                               target_dir.string());
  }
  return copy_packs(backup_dir / "chunks", target_dir / "chunks", /*link=*/false);
}

}  // namespace autosync::journal
