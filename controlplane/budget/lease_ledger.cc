#include "controlplane/budget/lease_ledger.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/quota_window.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/thread_bit_gen.h"
#include "controlplane/budget/budget_status.h"
#include "controlplane/budget/lease_tables.h"
#include "controlplane/config_tables.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {
namespace {

namespace b = ::turnpike::budget::v1;

constexpr size_t kMaxNodeIdLength = 256;
constexpr size_t kMaxQuotaKeyLength = 512;
constexpr size_t kMaxLeaseIdLength = 64;

// A quota as the config tables define it at one moment.
struct ResolvedQuota {
  QuotaRef ref;
  std::string capability;  // the budget's or rate limit's; empty: every capability
  std::string key;         // ref.ToKey()
  int64_t limit = 0;
  QuotaWindow window;  // the window containing now
};

// What one transaction did, applied to the counters and told to the listener only once it has
// committed.
struct TxEffects {
  std::array<int64_t, 4> grants{};
  std::array<int64_t, 4> refused{};
  std::array<int64_t, 4> expired{};
  std::array<int64_t, 4> overrun{};
  std::vector<std::string> budgets;

  void Changed(const QuotaRef& ref) {
    if (!ref.budget.empty() &&
        std::find(budgets.begin(), budgets.end(), ref.budget) == budgets.end()) {
      budgets.push_back(ref.budget);
    }
  }
};

absl::Status NotFound(const char* type, const std::string& name) {
  return ErrorWithReason(absl::StatusCode::kNotFound,
                         absl::StrCat(type, " \"", name, "\" does not exist"), "NOT_FOUND");
}

absl::Status LeaseError(absl::StatusCode code, const std::string& lease_id, const char* what,
                        const char* reason) {
  return ErrorWithReason(code, absl::StrCat("lease \"", lease_id, "\" ", what), reason);
}

// PERMISSION_DENIED unless a node restricted to `allowed` (empty: unrestricted) may lease `q`:
// q covers every capability, or one of `allowed`, or one their budgets degrade to (the node's
// snapshot holds those budgets: controlplane/snapshot_filter.h).
absl::Status CheckNodeMayLease(SqliteDb& db, const ResolvedQuota& q,
                               const std::vector<std::string>& allowed) {
  if (allowed.empty() || q.capability.empty()) return absl::OkStatus();
  std::vector<std::string> reached = allowed;
  if (std::find(reached.begin(), reached.end(), q.capability) != reached.end()) {
    return absl::OkStatus();
  }
  TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows, ListSpecRows(db, kBudgetsTable, "", 0));
  std::vector<config::v1::Budget> budgets(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    TP_RETURN_IF_ERROR(FromJson(rows[i].spec_json, &budgets[i]));
  }
  for (size_t i = 0; i < reached.size(); ++i) {  // grows to the degrade_to closure
    for (const config::v1::Budget& b : budgets) {
      if (b.capability() != reached[i] || b.degrade_to().empty()) continue;
      if (b.degrade_to() == q.capability) return absl::OkStatus();
      if (std::find(reached.begin(), reached.end(), b.degrade_to()) == reached.end()) {
        reached.push_back(b.degrade_to());
      }
    }
  }
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         absl::StrCat(q.ref.budget.empty() ? "rate limit \"" : "budget \"",
                                      q.ref.budget.empty() ? q.ref.rate_limit : q.ref.budget,
                                      "\" covers capability \"", q.capability,
                                      "\", which this node's credential does not allow (it serves ",
                                      absl::StrJoin(allowed, ", "), ")"),
                         "CAPABILITY_NOT_ALLOWED");
}

std::string NewLeaseId() {
  absl::BitGenRef gen = ThisThreadBitGen();
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

int UnitIndex(b::QuotaUnit unit) {
  return unit >= b::QUOTA_UNIT_USD_MICROS && unit <= b::QUOTA_UNIT_TOKENS
             ? unit
             : b::QUOTA_UNIT_USD_MICROS;
}

// The limit and current window of `ref`. With `normalize_key`, a shared rate limit's counter key
// is cleared (a gateway on an older snapshot may still send one).
absl::StatusOr<ResolvedQuota> Resolve(SqliteDb& db, QuotaRef ref, absl::Time now,
                                      bool normalize_key) {
  ResolvedQuota out;
  if (!ref.budget.empty()) {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kBudgetsTable, ref.budget));
    if (!row.has_value()) return NotFound("budget", ref.budget);
    config::v1::Budget spec;
    TP_RETURN_IF_ERROR(FromJson(row->spec_json, &spec));
    out.limit = spec.limit_usd_micros();
    out.window = BudgetWindowAt(spec.window(), now);
    out.capability = spec.capability();
  } else {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row,
                        GetSpecRow(db, kRateLimitsTable, ref.rate_limit));
    if (!row.has_value()) return NotFound("rate limit", ref.rate_limit);
    config::v1::RateLimit spec;
    TP_RETURN_IF_ERROR(FromJson(row->spec_json, &spec));
    out.capability = spec.capability();
    const bool tokens = ref.unit == b::QUOTA_UNIT_TOKENS;
    out.limit = tokens ? spec.tokens_per_minute() : spec.requests_per_minute();
    if (out.limit <= 0) {
      return ErrorWithReason(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat("rate limit \"", ref.rate_limit, "\" has no ",
                       tokens ? "tokens_per_minute" : "requests_per_minute", " limit"),
          "QUOTA_UNIT_NOT_LIMITED");
    }
    if (normalize_key && (spec.key() == config::v1::RATE_LIMIT_KEY_UNSPECIFIED ||
                          spec.key() == config::v1::RATE_LIMIT_KEY_SHARED)) {
      ref.key.clear();
    }
    out.window = MinuteWindowAt(now);
  }
  out.key = ref.ToKey();
  out.ref = std::move(ref);
  return out;
}

// The quota a request names (`quota`, or the legacy `budget` field), checked for shape.
QuotaRef RequestedQuota(const b::AcquireLeaseRequest& r, Violations& v) {
  b::Quota q = r.quota();
  if (!r.has_quota()) q.set_budget(r.budget());
  if (r.has_quota() && !r.budget().empty() && r.budget() != q.budget()) {
    v.Add("budget", "names a different budget than quota.budget; set one of them");
  }
  QuotaRef ref;
  if (q.budget().empty() == q.rate_limit().empty()) {
    v.Add("quota", "must name either a budget or a rate limit");
    return ref;
  }
  if (!q.budget().empty()) {
    ValidateName(q.budget(), "quota.budget", v);
    if (q.unit() != b::QUOTA_UNIT_UNSPECIFIED && q.unit() != b::QUOTA_UNIT_USD_MICROS) {
      v.Add("quota.unit", "a budget is leased in QUOTA_UNIT_USD_MICROS");
    }
    if (!q.key().empty()) v.Add("quota.key", "applies to rate limits only");
    ref.budget = q.budget();
    ref.unit = b::QUOTA_UNIT_USD_MICROS;
    return ref;
  }
  ValidateName(q.rate_limit(), "quota.rate_limit", v);
  if (q.unit() != b::QUOTA_UNIT_REQUESTS && q.unit() != b::QUOTA_UNIT_TOKENS) {
    v.Add("quota.unit", "a rate limit is leased in QUOTA_UNIT_REQUESTS or QUOTA_UNIT_TOKENS");
  }
  if (q.key().size() > kMaxQuotaKeyLength) v.Add("quota.key", "must be at most 512 bytes");
  ref.rate_limit = q.rate_limit();
  ref.unit = q.unit();
  ref.key = q.key();
  return ref;
}

void ValidateNodeId(const std::string& node_id, Violations& v) {
  if (node_id.empty() || node_id.size() > kMaxNodeIdLength) {
    v.Add("node_id", "must be 1-256 characters");
  }
}

// The grant: as much of `requested` as is available, or nothing when that is below `minimum`.
int64_t Grant(int64_t requested, int64_t minimum, int64_t available) {
  int64_t g = std::min(requested, std::max<int64_t>(0, available));
  if (g < minimum || g <= 0) return 0;
  return g;
}

// Closes `leases` as expired: each charges its window its last reported spent + reserved, plus
// what was granted since (counted in `reserved`). Gateways report ahead, so this covers all they
// admitted (docs/budgets.md, "A gateway that dies").
absl::Status ExpireLeases(SqliteDb& db, std::vector<LeaseRow> leases, absl::Time now,
                          TxEffects& fx) {
  for (LeaseRow& l : leases) {
    const int64_t charge = l.spent + l.reserved;
    TP_RETURN_IF_ERROR(AddSettled(db, l.quota_key, l.window_start, charge));
    l.state = LeaseState::kExpired;
    l.charged = charge;
    l.close_time = now;
    TP_RETURN_IF_ERROR(UpdateLease(db, l));
    std::optional<QuotaRef> ref = QuotaRef::Parse(l.quota_key);
    const int unit = ref.has_value() ? UnitIndex(ref->unit) : b::QUOTA_UNIT_USD_MICROS;
    fx.expired[unit] += 1;
    fx.overrun[unit] += std::max<int64_t>(0, charge - l.granted);
    if (ref.has_value()) fx.Changed(*ref);
  }
  return absl::OkStatus();
}

struct Headroom {
  int64_t settled = 0;
  int64_t leased = 0;
  int64_t Available(int64_t limit) const { return limit - settled - leased; }
};

absl::StatusOr<Headroom> ReadHeadroom(SqliteDb& db, const std::string& key, absl::Time start) {
  Headroom h;
  TP_ASSIGN_OR_RETURN(std::optional<QuotaWindowRow> row, GetQuotaWindow(db, key, start));
  if (row.has_value()) h.settled = row->settled;
  TP_ASSIGN_OR_RETURN(h.leased, LiveGranted(db, key, start));
  return h;
}

void FillResponse(const ResolvedQuota& q, const QuotaWindow& window, int64_t granted,
                  int64_t remaining, b::AcquireLeaseResponse& out) {
  out.set_granted(granted);
  if (!q.ref.budget.empty()) out.set_granted_usd_micros(granted);
  *out.mutable_window_start() = ToTimestamp(window.start);
  *out.mutable_window_end() = ToTimestamp(window.end);
  out.set_limit(q.limit);
  out.set_remaining(std::max<int64_t>(0, remaining));
}

}  // namespace

absl::Status LeaseLedger::ValidateOptions(const Options& options) {
  if (options.lease_ttl < absl::Seconds(1) || options.lease_ttl > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat("lease TTL must be between 1s and 1h, not ",
                                                   absl::FormatDuration(options.lease_ttl)));
  }
  if (options.closed_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("closed lease retention must not be negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LeaseLedger>> LeaseLedger::Create(Store& store, Clock& clock,
                                                                 Options options) {
  TP_RETURN_IF_ERROR(ValidateOptions(options));
  return std::unique_ptr<LeaseLedger>(new LeaseLedger(store, clock, options));
}

LeaseLedger::AtomicCounters& LeaseLedger::CountersFor(b::QuotaUnit unit) {
  return counters_[UnitIndex(unit)];
}

LeaseLedger::Counters LeaseLedger::counters(b::QuotaUnit unit) const {
  const AtomicCounters& c = counters_[UnitIndex(unit)];
  Counters out;
  out.grants = c.grants.load(std::memory_order_relaxed);
  out.refused = c.refused.load(std::memory_order_relaxed);
  out.expired = c.expired.load(std::memory_order_relaxed);
  out.overrun = c.overrun.load(std::memory_order_relaxed);
  return out;
}

void LeaseLedger::Notify(const std::vector<std::string>& budgets) const {
  if (!on_change_) return;
  for (const std::string& name : budgets) on_change_(name);
}

namespace {
// Applies committed effects to the counters (a free function so the .h keeps TxEffects private).
template <class CountersFn>
void Apply(const TxEffects& fx, CountersFn counters_for) {
  for (int unit = 1; unit <= 3; ++unit) {
    auto& c = counters_for(static_cast<b::QuotaUnit>(unit));
    c.grants.fetch_add(fx.grants[unit], std::memory_order_relaxed);
    c.refused.fetch_add(fx.refused[unit], std::memory_order_relaxed);
    c.expired.fetch_add(fx.expired[unit], std::memory_order_relaxed);
    c.overrun.fetch_add(fx.overrun[unit], std::memory_order_relaxed);
  }
}
}  // namespace

absl::StatusOr<b::AcquireLeaseResponse> LeaseLedger::Acquire(
    const b::AcquireLeaseRequest& r, const std::vector<std::string>& capabilities) {
  Violations v;
  ValidateNodeId(r.node_id(), v);
  const bool renew = !r.lease_id().empty();
  const bool names_quota = r.has_quota() || !r.budget().empty();
  QuotaRef asked;
  if (!renew || names_quota) asked = RequestedQuota(r, v);
  int64_t requested = r.requested();
  if (requested == 0 && !asked.budget.empty()) requested = r.requested_usd_micros();
  if (requested < 0 || r.requested_usd_micros() < 0) v.Add("requested", "must not be negative");
  if (!renew && requested == 0) v.Add("requested", "must be positive to open a lease");
  if (r.minimum() < 0) {
    v.Add("minimum", "must not be negative");
  } else if (r.minimum() > requested && requested >= 0) {
    v.Add("minimum", "must not exceed requested");
  }
  if (r.spent() < 0) v.Add("spent", "must not be negative");
  if (r.reserved() < 0) v.Add("reserved", "must not be negative");
  if (!renew && (r.spent() != 0 || r.reserved() != 0)) {
    v.Add("spent", "spent and reserved report on a lease; set lease_id");
  }
  if (r.lease_id().size() > kMaxLeaseIdLength) v.Add("lease_id", "is not a lease id");
  TP_RETURN_IF_ERROR(v.ToStatus());

  b::AcquireLeaseResponse out;
  TxEffects fx;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    fx = TxEffects{};
    out.Clear();
    const absl::Time now = clock_.Now();
    if (!renew) {
      TP_ASSIGN_OR_RETURN(ResolvedQuota q, Resolve(db, asked, now, /*normalize_key=*/true));
      TP_RETURN_IF_ERROR(CheckNodeMayLease(db, q, capabilities));
      const int unit = UnitIndex(q.ref.unit);
      TP_ASSIGN_OR_RETURN(std::vector<LeaseRow> due, DueLeases(db, q.key, now));
      TP_RETURN_IF_ERROR(ExpireLeases(db, std::move(due), now, fx));
      TP_RETURN_IF_ERROR(EnsureQuotaWindow(db, q.key, q.window));
      TP_ASSIGN_OR_RETURN(Headroom h, ReadHeadroom(db, q.key, q.window.start));
      const int64_t available = h.Available(q.limit);
      const int64_t g = Grant(requested, r.minimum(), available);
      if (g > 0) {
        LeaseRow l;
        l.lease_id = NewLeaseId();
        l.node_id = r.node_id();
        l.quota_key = q.key;
        l.window_start = q.window.start;
        l.granted = g;
        // Until the gateway reports, all of the grant may have been admitted against.
        l.reserved = g;
        l.expires_at = now + options_.lease_ttl;
        l.create_time = now;
        TP_RETURN_IF_ERROR(InsertLease(db, l));
        out.set_lease_id(l.lease_id);
        *out.mutable_expires_at() = ToTimestamp(l.expires_at);
        out.set_lease_total(g);
        fx.grants[unit] += 1;
        fx.Changed(q.ref);
      } else {
        fx.refused[unit] += 1;
      }
      FillResponse(q, q.window, g, available - g, out);
      return absl::OkStatus();
    }

    TP_ASSIGN_OR_RETURN(std::optional<LeaseRow> found, GetLease(db, r.lease_id()));
    if (!found.has_value()) {
      return LeaseError(absl::StatusCode::kNotFound, r.lease_id(), "does not exist",
                        "LEASE_NOT_FOUND");
    }
    LeaseRow l = *std::move(found);
    if (l.node_id != r.node_id()) {
      return LeaseError(absl::StatusCode::kPermissionDenied, r.lease_id(),
                        "is held by another node", "LEASE_NOT_OWNED");
    }
    if (l.state == LeaseState::kReleased) {
      return LeaseError(absl::StatusCode::kFailedPrecondition, r.lease_id(),
                        "was released; open a new lease", "LEASE_RELEASED");
    }
    if (l.state == LeaseState::kExpired || l.expires_at <= now) {
      return LeaseError(absl::StatusCode::kFailedPrecondition, r.lease_id(),
                        "expired; open a new lease", "LEASE_EXPIRED");
    }
    std::optional<QuotaRef> ref = QuotaRef::Parse(l.quota_key);
    if (!ref.has_value()) {
      return absl::DataLossError(absl::StrCat("lease ", l.lease_id, " has a malformed quota"));
    }
    if (names_quota && (asked.budget != ref->budget || asked.rate_limit != ref->rate_limit ||
                        asked.unit != ref->unit)) {
      return InvalidFieldError("quota", "is not the quota of the lease");
    }
    TP_ASSIGN_OR_RETURN(ResolvedQuota q, Resolve(db, *ref, now, /*normalize_key=*/false));
    if (q.window.start != l.window_start) {
      if (requested > 0) {
        return LeaseError(absl::StatusCode::kFailedPrecondition, r.lease_id(),
                          "belongs to a window that has ended; open a lease for the new window "
                          "and release this one once its requests have settled",
                          "LEASE_WINDOW_ENDED");
      }
      // A heartbeat keeps reporting on the old window's lease while its requests settle.
      TP_ASSIGN_OR_RETURN(std::optional<QuotaWindowRow> old,
                          GetQuotaWindow(db, l.quota_key, l.window_start));
      if (!old.has_value()) {
        return absl::DataLossError(absl::StrCat("lease ", l.lease_id, " has no window row"));
      }
      l.spent = r.spent();
      l.reserved = r.reserved();
      l.expires_at = now + options_.lease_ttl;
      TP_RETURN_IF_ERROR(UpdateLease(db, l));
      out.set_lease_id(l.lease_id);
      *out.mutable_expires_at() = ToTimestamp(l.expires_at);
      out.set_lease_total(l.granted);
      fx.Changed(q.ref);
      FillResponse(q, old->window, 0, 0, out);
      return absl::OkStatus();
    }
    const int unit = UnitIndex(q.ref.unit);
    TP_ASSIGN_OR_RETURN(std::vector<LeaseRow> due, DueLeases(db, q.key, now));
    TP_RETURN_IF_ERROR(ExpireLeases(db, std::move(due), now, fx));
    TP_ASSIGN_OR_RETURN(Headroom h, ReadHeadroom(db, q.key, q.window.start));
    const int64_t available = h.Available(q.limit);
    const int64_t g = requested > 0 ? Grant(requested, r.minimum(), available) : 0;
    l.spent = r.spent();
    // The report covers what the gateway could admit until its next one; a top-up counts in
    // full until then.
    l.reserved = r.reserved() + g;
    l.expires_at = now + options_.lease_ttl;
    l.granted += g;
    TP_RETURN_IF_ERROR(UpdateLease(db, l));
    out.set_lease_id(l.lease_id);
    *out.mutable_expires_at() = ToTimestamp(l.expires_at);
    out.set_lease_total(l.granted);
    if (g > 0) fx.grants[unit] += 1;
    if (requested > 0 && g == 0) fx.refused[unit] += 1;
    fx.Changed(q.ref);
    FillResponse(q, q.window, g, available - g, out);
    return absl::OkStatus();
  }));
  Apply(fx, [this](b::QuotaUnit u) -> AtomicCounters& { return CountersFor(u); });
  Notify(fx.budgets);
  return out;
}

absl::StatusOr<b::ReleaseLeaseResponse> LeaseLedger::Release(const b::ReleaseLeaseRequest& r) {
  Violations v;
  if (r.lease_id().empty() || r.lease_id().size() > kMaxLeaseIdLength) {
    v.Add("lease_id", "must name a lease");
  }
  ValidateNodeId(r.node_id(), v);
  const int64_t spent = r.spent() != 0 ? r.spent() : r.spent_usd_micros();
  if (r.spent() < 0 || r.spent_usd_micros() < 0) v.Add("spent", "must not be negative");
  TP_RETURN_IF_ERROR(v.ToStatus());

  b::ReleaseLeaseResponse out;
  TxEffects fx;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    fx = TxEffects{};
    out.Clear();
    const absl::Time now = clock_.Now();
    TP_ASSIGN_OR_RETURN(std::optional<LeaseRow> found, GetLease(db, r.lease_id()));
    if (!found.has_value()) {
      return LeaseError(absl::StatusCode::kNotFound, r.lease_id(), "does not exist",
                        "LEASE_NOT_FOUND");
    }
    LeaseRow l = *std::move(found);
    if (l.node_id != r.node_id()) {
      return LeaseError(absl::StatusCode::kPermissionDenied, r.lease_id(),
                        "is held by another node", "LEASE_NOT_OWNED");
    }
    std::optional<QuotaRef> ref = QuotaRef::Parse(l.quota_key);
    if (!ref.has_value()) {
      return absl::DataLossError(absl::StrCat("lease ", l.lease_id, " has a malformed quota"));
    }
    const int unit = UnitIndex(ref->unit);
    if (l.state != LeaseState::kReleased) {
      // Live: charge the reported spend. Expired: the truth replaces the conservative charge.
      // Overrun: beyond the grant for a live lease; for an expired one, beyond its charge (the
      // rest of the grant returned at expiry and may have been granted again).
      fx.overrun[unit] +=
          std::max<int64_t>(0, spent - (l.state == LeaseState::kExpired ? l.charged : l.granted));
      TP_RETURN_IF_ERROR(AddSettled(db, l.quota_key, l.window_start, spent - l.charged));
      l.state = LeaseState::kReleased;
      l.charged = spent;
      l.spent = spent;
      l.reserved = 0;
      l.close_time = now;
      TP_RETURN_IF_ERROR(UpdateLease(db, l));
      fx.Changed(*ref);
    }
    absl::StatusOr<ResolvedQuota> q = Resolve(db, *ref, now, /*normalize_key=*/false);
    if (q.ok()) {
      TP_ASSIGN_OR_RETURN(Headroom h, ReadHeadroom(db, l.quota_key, l.window_start));
      out.set_remaining(std::max<int64_t>(0, h.Available(q->limit)));
    } else if (q.status().code() != absl::StatusCode::kNotFound &&
               q.status().code() != absl::StatusCode::kFailedPrecondition) {
      return q.status();
    }  // else the budget or limit is gone: nothing remains to grant
    if (!ref->budget.empty()) {
      TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kBudgetsTable, ref->budget));
      if (row.has_value()) {
        TP_ASSIGN_OR_RETURN(*out.mutable_budget(), BudgetStatusOfRow(db, *row, now));
      }
    }
    return absl::OkStatus();
  }));
  Apply(fx, [this](b::QuotaUnit u) -> AtomicCounters& { return CountersFor(u); });
  Notify(fx.budgets);
  return out;
}

absl::StatusOr<int> LeaseLedger::ExpireDue() {
  TxEffects fx;
  int expired = 0;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    fx = TxEffects{};
    TP_ASSIGN_OR_RETURN(std::vector<LeaseRow> due, DueLeases(db, "", clock_.Now()));
    expired = static_cast<int>(due.size());
    return ExpireLeases(db, std::move(due), clock_.Now(), fx);
  }));
  Apply(fx, [this](b::QuotaUnit u) -> AtomicCounters& { return CountersFor(u); });
  Notify(fx.budgets);
  return expired;
}

absl::StatusOr<int64_t> LeaseLedger::PruneClosed() {
  int64_t pruned = 0;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(pruned, PruneClosedRows(db, clock_.Now() - options_.closed_retention));
    return absl::OkStatus();
  }));
  return pruned;
}

absl::StatusOr<b::BudgetStatus> LeaseLedger::GetBudget(const std::string& name) {
  b::BudgetStatus out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kBudgetsTable, name));
    if (!row.has_value()) return NotFound("budget", name);
    TP_ASSIGN_OR_RETURN(out, BudgetStatusOfRow(db, *row, clock_.Now()));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<LeaseLedger::Page> LeaseLedger::ListBudgets(int page_size,
                                                           const std::string& page_token) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  Page page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    const absl::Time now = clock_.Now();
    TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows,
                        ListSpecRows(db, kBudgetsTable, after, limit + 1));
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
      TP_ASSIGN_OR_RETURN(b::BudgetStatus s, BudgetStatusOfRow(db, rows[i], now));
      page.budgets.push_back(std::move(s));
    }
    if (rows.size() > static_cast<size_t>(limit)) {
      page.next_page_token = EncodePageToken(rows[limit - 1].name);
    }
    return absl::OkStatus();
  }));
  return page;
}

absl::StatusOr<std::vector<b::BudgetStatus>> LeaseLedger::Budgets(
    const std::vector<std::string>& names) {
  std::vector<b::BudgetStatus> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    out.clear();
    const absl::Time now = clock_.Now();
    std::vector<SpecRow> rows;
    if (names.empty()) {
      TP_ASSIGN_OR_RETURN(rows, ListSpecRows(db, kBudgetsTable, "", 0));
    } else {
      for (const std::string& name : names) {
        TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kBudgetsTable, name));
        if (row.has_value()) rows.push_back(*std::move(row));
      }
    }
    for (const SpecRow& row : rows) {
      TP_ASSIGN_OR_RETURN(b::BudgetStatus s, BudgetStatusOfRow(db, row, now));
      out.push_back(std::move(s));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace turnpike::controlplane
