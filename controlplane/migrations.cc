#include "controlplane/migrations.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turnpike::controlplane {

absl::Status CheckMigrationList(absl::Span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int64_t>(i) + 1) {
      return absl::InternalError(absl::StrCat("migration ", migrations[i].name, " has version ",
                                              migrations[i].version, ", expected ", i + 1));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RunMigrations(SqliteDb& db, absl::Span<const Migration> migrations) {
  TP_RETURN_IF_ERROR(CheckMigrationList(migrations));
  const int64_t newest = static_cast<int64_t>(migrations.size());
  TP_ASSIGN_OR_RETURN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  TP_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (app_id != 0 && app_id != kApplicationId) {
    return absl::FailedPreconditionError(
        absl::StrCat(db.path(), " is a SQLite database of another application (application_id ",
                     app_id, "); refusing to modify it"));
  }
  if (app_id == 0 && version != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        db.path(), " is a SQLite database not created by turnpike-control (user_version ", version,
        ", no application_id); refusing to modify it"));
  }
  if (version > newest) {
    return absl::FailedPreconditionError(
        absl::StrCat("database ", db.path(), " has schema version ", version,
                     ", newer than this turnpike-control supports (", newest,
                     "); run a newer turnpike-control or restore a backup made by this version"));
  }
  for (int64_t next = version + 1; next <= newest; ++next) {
    const Migration& m = migrations[next - 1];
    TP_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    absl::Status s = [&]() -> absl::Status {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      TP_ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
      if (current >= next) return absl::OkStatus();
      if (current != next - 1) {
        return absl::AbortedError(
            absl::StrCat("schema version changed to ", current, " while migrating; restart"));
      }
      absl::Status applied = db.Exec(m.sql);
      if (!applied.ok()) {
        return absl::Status(applied.code(),
                            absl::StrCat("migration ", m.name, " failed: ", applied.message()));
      }
      TP_RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
      return db.Exec(absl::StrCat("PRAGMA user_version = ", next));
    }();
    if (!s.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return s;
    }
    TP_RETURN_IF_ERROR(db.Exec("COMMIT"));
  }
  return db.QueryInt("PRAGMA user_version");
}

}  // namespace turnpike::controlplane
