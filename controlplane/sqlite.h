// Thin RAII wrappers over the SQLite C API: a connection (SqliteDb) and a prepared statement
// (SqliteStatement), with every result code turned into an absl::Status whose code says what the
// caller should do (UNAVAILABLE: busy/locked, retry; DATA_LOSS: corrupt or not a database;
// ALREADY_EXISTS / FAILED_PRECONDITION: constraint violations; RESOURCE_EXHAUSTED: disk full).
// Neither class is thread-safe: the owner (Store) serialises access to each connection.
#ifndef TURNPIKE_CONTROLPLANE_SQLITE_H_
#define TURNPIKE_CONTROLPLANE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace turnpike::controlplane {

class SqliteStatement;

class SqliteDb {
 public:
  // Opens (creating if `create`) the database file at `path`. Nothing is read yet, so a file that
  // is not a database is only detected by the first statement.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool create);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows.
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<SqliteStatement> Prepare(std::string_view sql);
  // Runs a statement that returns one integer (e.g. "PRAGMA user_version").
  absl::StatusOr<int64_t> QueryInt(std::string_view sql);

  // Status for result code `rc` of the last call on this connection; `what` prefixes the message.
  absl::Status Error(int rc, std::string_view what) const;
  int64_t changes() const;
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  const std::string path_;
};

// A prepared statement. Bind* indexes are 1-based; Column* indexes 0-based.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  ~SqliteStatement();

  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& Bind(int index, std::string_view text);
  SqliteStatement& BindBlob(int index, std::string_view bytes);
  SqliteStatement& BindNull(int index);
  SqliteStatement& Bind(int index, std::optional<int64_t> value);

  // Advances: true if a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps a statement that returns no rows.
  absl::Status Run();
  // Makes the statement ready to run again (bindings are kept until re-bound).
  absl::Status Reset();

  int64_t ColumnInt(int index) const;
  std::optional<int64_t> ColumnOptionalInt(int index) const;
  std::string ColumnText(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  friend class SqliteDb;
  SqliteStatement(const SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  const SqliteDb* db_;
  sqlite3_stmt* stmt_;
  // First bind error, reported by Step().
  int bind_rc_ = 0;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SQLITE_H_
