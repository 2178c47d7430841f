// Store owns the control plane's SQLite database: one writer connection (every write transaction
// is BEGIN IMMEDIATE, so a read-modify-write never fails on a lock upgrade) and one read-only
// connection for reads that must not queue behind writers (WAL lets them run concurrently).
// Open() checks the file (lock file, not-a-database, integrity_check, schema version) and runs
// migrations before anything else touches it. Thread-safe: each connection has its own mutex,
// so writes are serialised and reads are serialised among themselves.
#ifndef TURNPIKE_CONTROLPLANE_STORE_H_
#define TURNPIKE_CONTROLPLANE_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "controlplane/migrations.h"
#include "controlplane/sqlite.h"

namespace turnpike::controlplane {

class Store {
 public:
  struct Options {
    std::string path;
    // How long a write waits for a lock held by another connection before UNAVAILABLE.
    absl::Duration busy_timeout = absl::Seconds(5);
    // Full integrity_check at start (quick_check when false).
    bool full_integrity_check = true;
  };

  // Opens or creates the database and migrates it with `migrations` (EmbeddedMigrations() in
  // production). Errors: FAILED_PRECONDITION when another turnpike-control holds the file or
  // the schema is newer than `migrations`; DATA_LOSS when the file is not a database or is
  // corrupt; UNAVAILABLE when another process keeps it locked past busy_timeout.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const Options& options,
                                                     absl::Span<const Migration> migrations);
  ~Store();

  // Runs `fn` in a BEGIN IMMEDIATE transaction on the writer connection; commits if it returns
  // OK, rolls back otherwise (and returns its status).
  absl::Status Write(absl::FunctionRef<absl::Status(SqliteDb&)> fn);
  // Runs `fn` in a read transaction (one consistent view) on the read-only connection.
  absl::Status Read(absl::FunctionRef<absl::Status(SqliteDb&)> fn);

  int64_t schema_version() const { return schema_version_; }
  const std::string& path() const { return path_; }

 private:
  Store(std::string path, int lock_fd, int64_t schema_version, std::unique_ptr<SqliteDb> writer,
        std::unique_ptr<SqliteDb> reader);

  // Constant after construction.
  const std::string path_;
  const int lock_fd_;
  const int64_t schema_version_;

  absl::Mutex write_mu_;
  std::unique_ptr<SqliteDb> writer_ ABSL_GUARDED_BY(write_mu_);
  absl::Mutex read_mu_;
  std::unique_ptr<SqliteDb> reader_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_STORE_H_
