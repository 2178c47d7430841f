// Typed access to the lease ledger's tables (migrations/0003_leases.sql) and the quota keys that
// name their rows. Like config_tables.h, every function runs on a connection the caller has put
// in a transaction; none begins or ends one. Stateless; the connection is not thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_LEASE_TABLES_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_LEASE_TABLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/quota_window.h"
#include "controlplane/sqlite.h"
#include "turnpike/budget/v1/budget.pb.h"

namespace turnpike::controlplane {

// What a quota key names: a budget, or one counter (unit, key) of a rate limit.
struct QuotaRef {
  std::string budget;      // set for a budget
  std::string rate_limit;  // set for a rate limit
  budget::v1::QuotaUnit unit = budget::v1::QUOTA_UNIT_USD_MICROS;
  std::string key;  // the rate-limit counter's key; empty for a shared counter

  // "budget:<name>" or "rate_limit:<name>:requests|tokens:<key>".
  std::string ToKey() const;
  static std::optional<QuotaRef> Parse(const std::string& quota_key);
};

enum class LeaseState : int64_t { kLive = 1, kReleased = 2, kExpired = 3 };

struct LeaseRow {
  std::string lease_id;
  std::string node_id;
  std::string quota_key;
  absl::Time window_start;
  int64_t granted = 0;
  int64_t spent = 0;     // as last reported
  int64_t reserved = 0;  // as last reported
  absl::Time expires_at;
  LeaseState state = LeaseState::kLive;
  int64_t charged = 0;  // added to the window's settled when closed
  absl::Time create_time;
  std::optional<absl::Time> close_time;
};

struct QuotaWindowRow {
  QuotaWindow window;
  int64_t settled = 0;
};

// Creates the (quota, window) row with nothing settled unless it exists.
absl::Status EnsureQuotaWindow(SqliteDb& db, const std::string& quota_key,
                               const QuotaWindow& window);
absl::StatusOr<std::optional<QuotaWindowRow>> GetQuotaWindow(SqliteDb& db,
                                                             const std::string& quota_key,
                                                             absl::Time window_start);
absl::Status AddSettled(SqliteDb& db, const std::string& quota_key, absl::Time window_start,
                        int64_t delta);
// Sum of `granted` over the window's live leases.
absl::StatusOr<int64_t> LiveGranted(SqliteDb& db, const std::string& quota_key,
                                    absl::Time window_start);
// The window's live leases, by lease id.
absl::StatusOr<std::vector<LeaseRow>> LiveLeases(SqliteDb& db, const std::string& quota_key,
                                                 absl::Time window_start);
// Live leases whose expires_at is at or before `now`: of one quota, or of all when empty.
absl::StatusOr<std::vector<LeaseRow>> DueLeases(SqliteDb& db, const std::string& quota_key,
                                                absl::Time now);
absl::StatusOr<std::optional<LeaseRow>> GetLease(SqliteDb& db, const std::string& lease_id);
absl::Status InsertLease(SqliteDb& db, const LeaseRow& row);
// Updates everything but the ids, quota, window and create time.
absl::Status UpdateLease(SqliteDb& db, const LeaseRow& row);
// Deletes leases closed before `before` and rate-limit windows that ended before it with no live
// lease; returns the rows deleted.
absl::StatusOr<int64_t> PruneClosedRows(SqliteDb& db, absl::Time before);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_LEASE_TABLES_H_
