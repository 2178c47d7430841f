#include "controlplane/budget/lease_tables.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turnpike::controlplane {
namespace {

constexpr char kBudgetPrefix[] = "budget:";
constexpr char kRateLimitPrefix[] = "rate_limit:";
constexpr char kLeaseColumns[] =
    "lease_id, node_id, quota_key, window_start, granted, spent, reserved, expires_at, state, "
    "charged, create_time, close_time";

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

LeaseRow ReadLease(const SqliteStatement& s) {
  LeaseRow r;
  r.lease_id = s.ColumnText(0);
  r.node_id = s.ColumnText(1);
  r.quota_key = s.ColumnText(2);
  r.window_start = FromMicros(s.ColumnInt(3));
  r.granted = s.ColumnInt(4);
  r.spent = s.ColumnInt(5);
  r.reserved = s.ColumnInt(6);
  r.expires_at = FromMicros(s.ColumnInt(7));
  r.state = static_cast<LeaseState>(s.ColumnInt(8));
  r.charged = s.ColumnInt(9);
  r.create_time = FromMicros(s.ColumnInt(10));
  std::optional<int64_t> closed = s.ColumnOptionalInt(11);
  if (closed.has_value()) r.close_time = FromMicros(*closed);
  return r;
}

absl::StatusOr<std::vector<LeaseRow>> Leases(SqliteStatement& s) {
  std::vector<LeaseRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadLease(s));
  }
  return out;
}

}  // namespace

std::string QuotaRef::ToKey() const {
  if (!budget.empty()) return absl::StrCat(kBudgetPrefix, budget);
  return absl::StrCat(kRateLimitPrefix, rate_limit, ":",
                      unit == budget::v1::QUOTA_UNIT_TOKENS ? "tokens" : "requests", ":", key);
}

std::optional<QuotaRef> QuotaRef::Parse(const std::string& quota_key) {
  QuotaRef ref;
  if (absl::StartsWith(quota_key, kBudgetPrefix)) {
    ref.budget = quota_key.substr(sizeof(kBudgetPrefix) - 1);
    if (ref.budget.empty()) return std::nullopt;
    return ref;
  }
  if (!absl::StartsWith(quota_key, kRateLimitPrefix)) return std::nullopt;
  std::string rest = quota_key.substr(sizeof(kRateLimitPrefix) - 1);
  size_t colon = rest.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  ref.rate_limit = rest.substr(0, colon);
  rest = rest.substr(colon + 1);
  if (absl::StartsWith(rest, "requests:")) {
    ref.unit = budget::v1::QUOTA_UNIT_REQUESTS;
    ref.key = rest.substr(9);
  } else if (absl::StartsWith(rest, "tokens:")) {
    ref.unit = budget::v1::QUOTA_UNIT_TOKENS;
    ref.key = rest.substr(7);
  } else {
    return std::nullopt;
  }
  return ref;
}

absl::Status EnsureQuotaWindow(SqliteDb& db, const std::string& quota_key,
                               const QuotaWindow& window) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("INSERT INTO quota_windows (quota_key, window_start, window_end, settled) "
                 "VALUES (?, ?, ?, 0) ON CONFLICT (quota_key, window_start) DO NOTHING"));
  s.Bind(1, quota_key).Bind(2, Micros(window.start)).Bind(3, Micros(window.end));
  return s.Run();
}

absl::StatusOr<std::optional<QuotaWindowRow>> GetQuotaWindow(SqliteDb& db,
                                                             const std::string& quota_key,
                                                             absl::Time window_start) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("SELECT window_end, settled FROM quota_windows WHERE "
                                 "quota_key = ? AND window_start = ?"));
  s.Bind(1, quota_key).Bind(2, Micros(window_start));
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<QuotaWindowRow>();
  QuotaWindowRow out;
  out.window = {window_start, FromMicros(s.ColumnInt(0))};
  out.settled = s.ColumnInt(1);
  return std::optional<QuotaWindowRow>(out);
}

absl::Status AddSettled(SqliteDb& db, const std::string& quota_key, absl::Time window_start,
                        int64_t delta) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("UPDATE quota_windows SET settled = settled + ? WHERE "
                                 "quota_key = ? AND window_start = ?"));
  s.Bind(1, delta).Bind(2, quota_key).Bind(3, Micros(window_start));
  TP_RETURN_IF_ERROR(s.Run());
  if (db.changes() != 1) {
    return absl::DataLossError(absl::StrCat("quota window row of ", quota_key, " is missing"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LiveGranted(SqliteDb& db, const std::string& quota_key,
                                    absl::Time window_start) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("SELECT coalesce(sum(granted), 0) FROM leases WHERE "
                                 "quota_key = ? AND window_start = ? AND state = 1"));
  s.Bind(1, quota_key).Bind(2, Micros(window_start));
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.ColumnInt(0) : 0;
}

absl::StatusOr<std::vector<LeaseRow>> LiveLeases(SqliteDb& db, const std::string& quota_key,
                                                 absl::Time window_start) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("SELECT ", kLeaseColumns,
                                              " FROM leases WHERE quota_key = ? AND "
                                              "window_start = ? AND state = 1 ORDER BY lease_id")));
  s.Bind(1, quota_key).Bind(2, Micros(window_start));
  return Leases(s);
}

absl::StatusOr<std::vector<LeaseRow>> DueLeases(SqliteDb& db, const std::string& quota_key,
                                                absl::Time now) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("SELECT ", kLeaseColumns,
                              " FROM leases WHERE state = 1 AND expires_at <= ? AND (? = '' OR "
                              "quota_key = ?) ORDER BY expires_at, lease_id")));
  s.Bind(1, Micros(now)).Bind(2, quota_key).Bind(3, quota_key);
  return Leases(s);
}

absl::StatusOr<std::optional<LeaseRow>> GetLease(SqliteDb& db, const std::string& lease_id) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("SELECT ", kLeaseColumns, " FROM leases WHERE lease_id = ?")));
  s.Bind(1, lease_id);
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<LeaseRow>();
  return std::optional<LeaseRow>(ReadLease(s));
}

absl::Status InsertLease(SqliteDb& db, const LeaseRow& r) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("INSERT INTO leases (", kLeaseColumns,
                                              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")));
  s.Bind(1, r.lease_id).Bind(2, r.node_id).Bind(3, r.quota_key).Bind(4, Micros(r.window_start));
  s.Bind(5, r.granted).Bind(6, r.spent).Bind(7, r.reserved).Bind(8, Micros(r.expires_at));
  s.Bind(9, static_cast<int64_t>(r.state)).Bind(10, r.charged).Bind(11, Micros(r.create_time));
  if (r.close_time.has_value()) {
    s.Bind(12, Micros(*r.close_time));
  } else {
    s.BindNull(12);
  }
  return s.Run();
}

absl::Status UpdateLease(SqliteDb& db, const LeaseRow& r) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("UPDATE leases SET granted = ?, spent = ?, reserved = ?, expires_at = ?, "
                 "state = ?, charged = ?, close_time = ? WHERE lease_id = ?"));
  s.Bind(1, r.granted).Bind(2, r.spent).Bind(3, r.reserved).Bind(4, Micros(r.expires_at));
  s.Bind(5, static_cast<int64_t>(r.state)).Bind(6, r.charged);
  if (r.close_time.has_value()) {
    s.Bind(7, Micros(*r.close_time));
  } else {
    s.BindNull(7);
  }
  s.Bind(8, r.lease_id);
  TP_RETURN_IF_ERROR(s.Run());
  if (db.changes() != 1)
    return absl::DataLossError(absl::StrCat("lease ", r.lease_id, " vanished"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PruneClosedRows(SqliteDb& db, absl::Time before) {
  TP_ASSIGN_OR_RETURN(SqliteStatement leases,
                      db.Prepare("DELETE FROM leases WHERE state <> 1 AND close_time < ?"));
  leases.Bind(1, Micros(before));
  TP_RETURN_IF_ERROR(leases.Run());
  int64_t deleted = db.changes();
  TP_ASSIGN_OR_RETURN(
      SqliteStatement windows,
      db.Prepare("DELETE FROM quota_windows WHERE quota_key LIKE 'rate\\_limit:%' ESCAPE '\\' "
                 "AND window_end < ? AND NOT EXISTS (SELECT 1 FROM leases l WHERE "
                 "l.quota_key = quota_windows.quota_key AND "
                 "l.window_start = quota_windows.window_start)"));
  windows.Bind(1, Micros(before));
  TP_RETURN_IF_ERROR(windows.Run());
  return deleted + db.changes();
}

}  // namespace turnpike::controlplane
