// Checkpoints and backups through RocksDB's own engines: both copy a consistent state
// of every column family, and the backup engine checksums every file it keeps.
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/utilities/checkpoint.h>

#include "journal_impl.hpp"

namespace autosync::journal {

namespace {

error backup_error(const rocksdb::IOStatus& s, const std::string& what) {
  return storage_error(rocksdb::Status(s), what);
}

}  // namespace

status journal::create_checkpoint(const std::filesystem::path& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  auto s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw);
  if (!s.ok()) return storage_error(s, "preparing a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  s = checkpoint->CreateCheckpoint(dir.string());
  if (!s.ok()) return storage_error(s, "creating checkpoint " + dir.string());
  return status::ok();
}

result<std::uint32_t> journal::create_backup(const std::filesystem::path& backup_dir) {
  rocksdb::BackupEngine* raw = nullptr;
  auto s = rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions(backup_dir.string()),
                                       rocksdb::Env::Default(), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = true;  // the backup then needs no WAL replay to be complete
  rocksdb::BackupID id = 0;
  s = engine->CreateNewBackup(create, impl_->db.get(), &id);
  if (!s.ok()) return backup_error(s, "creating a backup in " + backup_dir.string());
  return id;
}

result<std::vector<std::uint32_t>> list_backups(const std::filesystem::path& backup_dir) {
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::Env::Default(), rocksdb::BackupEngineOptions(backup_dir.string()), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<std::uint32_t> ids;
  for (const auto& info : infos) ids.push_back(info.backup_id);
  return ids;
}

status verify_backup(const std::filesystem::path& backup_dir, std::uint32_t backup_id) {
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::Env::Default(), rocksdb::BackupEngineOptions(backup_dir.string()), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  s = engine->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    return backup_error(s, "verifying backup " + std::to_string(backup_id) + " in " +
                               backup_dir.string());
  }
  return status::ok();
}

status restore_backup(const std::filesystem::path& backup_dir, std::uint32_t backup_id,
                      const std::filesystem::path& target_dir) {
  std::error_code ec;
  if (std::filesystem::exists(target_dir / "CURRENT", ec)) {
    // Restoring over a journal would replace files under whatever uses it.
    return error(error_kind::conflict,
                 "restore target " + target_dir.string() +
                     " already holds a journal: stop the node and restore into an empty folder");
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::Env::Default(), rocksdb::BackupEngineOptions(backup_dir.string()), &raw);
  if (!s.ok()) return backup_error(s, "opening backup folder " + backup_dir.string());
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  s = engine->RestoreDBFromBackup(backup_id, target_dir.string(), target_dir.string());
  if (!s.ok()) {
    return backup_error(s, "restoring backup " + std::to_string(backup_id) + " into " +
                               target_dir.string());
  }
  return status::ok();
}

}  // namespace autosync::journal
