#include "controlplane/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace turnpike::controlplane {
namespace {

absl::Status Configure(SqliteDb& db, absl::Duration busy_timeout) {
  sqlite3_busy_timeout(db.raw(), static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
  int enabled = 0;
  sqlite3_db_config(db.raw(), SQLITE_DBCONFIG_DEFENSIVE, 1, &enabled);
  sqlite3_db_config(db.raw(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &enabled);
  return db.Exec(
      "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
      "PRAGMA journal_size_limit = 67108864;");
}

// Reads the header through SQLite: NOTADB / CORRUPT surface here, before any write.
absl::Status CheckReadable(SqliteDb& db) {
  absl::StatusOr<int64_t> v = db.QueryInt("PRAGMA schema_version");
  if (!v.ok()) {
    return absl::Status(v.status().code(), absl::StrCat("cannot read database ", db.path(), ": ",
                                                        v.status().message()));
  }
  return absl::OkStatus();
}

absl::Status CheckIntegrity(SqliteDb& db, bool full) {
  TP_ASSIGN_OR_RETURN(SqliteStatement stmt,
                      db.Prepare(full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)"));
  std::vector<std::string> problems;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) {
      return absl::DataLossError(
          absl::StrCat("integrity check of ", db.path(), " failed: ", row.status().message()));
    }
    if (!*row) break;
    std::string line = stmt.ColumnText(0);
    if (line != "ok") problems.push_back(std::move(line));
  }
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat(
        "database ", db.path(), " is corrupt (integrity_check: ", absl::StrJoin(problems, "; "),
        "); restore it from a backup"));
  }
  return absl::OkStatus();
}

absl::Status CheckForeignKeys(SqliteDb& db) {
  TP_ASSIGN_OR_RETURN(SqliteStatement stmt, db.Prepare("PRAGMA foreign_key_check"));
  TP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (row) {
    return absl::DataLossError(
        absl::StrCat("database ", db.path(), " breaks referential integrity (", stmt.ColumnText(0),
                     " row ", stmt.ColumnInt(1), "); restore it from a backup"));
  }
  return absl::OkStatus();
}

absl::Status SetWal(SqliteDb& db) {
  TP_ASSIGN_OR_RETURN(SqliteStatement stmt, db.Prepare("PRAGMA journal_mode = WAL"));
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return row.status();
  std::string mode = *row ? stmt.ColumnText(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot switch ", db.path(), " to WAL mode (journal_mode is '", mode, "')"));
  }
  return absl::OkStatus();
}

// An advisory lock next to the database so that two control planes never share one file: each
// keeps an in-memory view (config cache, data planes) that a second writer would invalidate.
absl::StatusOr<int> AcquireLockFile(const std::string& db_path) {
  std::string lock_path = db_path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create lock file ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat("database ", db_path,
                                                        " is in use by another turnpike-control (",
                                                        lock_path, " is locked); stop it first"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(err)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const Options& options,
                                                   absl::Span<const Migration> migrations) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path is empty");
  TP_ASSIGN_OR_RETURN(int lock_fd, AcquireLockFile(options.path));
  auto fail = [lock_fd](absl::Status s) {
    close(lock_fd);
    return s;
  };

  absl::StatusOr<std::unique_ptr<SqliteDb>> writer = SqliteDb::Open(options.path, true);
  if (!writer.ok()) return fail(writer.status());
  if (absl::Status s = Configure(**writer, options.busy_timeout); !s.ok()) return fail(s);
  if (absl::Status s = CheckReadable(**writer); !s.ok()) return fail(s);
  if (absl::Status s = SetWal(**writer); !s.ok()) return fail(s);
  if (absl::Status s = CheckIntegrity(**writer, options.full_integrity_check); !s.ok()) {
    return fail(s);
  }
  absl::StatusOr<int64_t> version = RunMigrations(**writer, migrations);
  if (!version.ok()) return fail(version.status());
  if (absl::Status s = CheckForeignKeys(**writer); !s.ok()) return fail(s);

  absl::StatusOr<std::unique_ptr<SqliteDb>> reader = SqliteDb::Open(options.path, false);
  if (!reader.ok()) return fail(reader.status());
  if (absl::Status s = Configure(**reader, options.busy_timeout); !s.ok()) return fail(s);
  if (absl::Status s = (*reader)->Exec("PRAGMA query_only = ON"); !s.ok()) return fail(s);

  return std::unique_ptr<Store>(
      new Store(options.path, lock_fd, *version, *std::move(writer), *std::move(reader)));
}

Store::Store(std::string path, int lock_fd, int64_t schema_version,
             std::unique_ptr<SqliteDb> writer, std::unique_ptr<SqliteDb> reader)
    : path_(std::move(path)),
      lock_fd_(lock_fd),
      schema_version_(schema_version),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {}

Store::~Store() {
  {
    absl::MutexLock r(&read_mu_);
    reader_.reset();
  }
  {
    absl::MutexLock w(&write_mu_);
    writer_.reset();
  }
  close(lock_fd_);
}

absl::Status Store::Write(absl::FunctionRef<absl::Status(SqliteDb&)> fn) {
  absl::MutexLock lock(&write_mu_);
  TP_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  absl::Status s = fn(*writer_);
  if (s.ok()) s = writer_->Exec("COMMIT");
  if (!s.ok() && !sqlite3_get_autocommit(writer_->raw())) {
    writer_->Exec("ROLLBACK").IgnoreError();
  }
  return s;
}

absl::Status Store::Read(absl::FunctionRef<absl::Status(SqliteDb&)> fn) {
  absl::MutexLock lock(&read_mu_);
  TP_RETURN_IF_ERROR(reader_->Exec("BEGIN"));
  absl::Status s = fn(*reader_);
  reader_->Exec("COMMIT").IgnoreError();
  return s;
}

}  // namespace turnpike::controlplane
