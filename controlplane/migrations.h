// Schema migrations: numbered plain-SQL files (migrations/NNNN_name.sql at the repository root),
// embedded into the binary at build time, applied in order at start-up, one transaction each,
// tracked by PRAGMA user_version. A database whose user_version is newer than the newest
// migration this binary knows is refused (no silent downgrade). Stateless functions; the caller
// owns the connection and must not use it concurrently.
#ifndef TURNPIKE_CONTROLPLANE_MIGRATIONS_H_
#define TURNPIKE_CONTROLPLANE_MIGRATIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "controlplane/sqlite.h"

namespace turnpike::controlplane {

struct Migration {
  int64_t version;   // NNNN from the file name; versions are 1, 2, 3, ... without gaps
  const char* name;  // file name, e.g. "0001_initial.sql"
  const char* sql;
};

// The migrations compiled into this binary (generated from migrations/*.sql), in order.
absl::Span<const Migration> EmbeddedMigrations();

// PRAGMA application_id stamped on every Turnpike database ("TPK1").
inline constexpr int64_t kApplicationId = 0x54504b31;

// Checks that `migrations` are numbered 1..N without gaps.
absl::Status CheckMigrationList(absl::Span<const Migration> migrations);

// Brings `db` to the newest version in `migrations`. Each migration runs in its own
// BEGIN IMMEDIATE transaction together with its user_version bump, so a crash leaves either the
// old schema or the new one. Returns the resulting user_version. FAILED_PRECONDITION if the
// database is newer than `migrations` or belongs to another application.
absl::StatusOr<int64_t> RunMigrations(SqliteDb& db, absl::Span<const Migration> migrations);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_MIGRATIONS_H_
