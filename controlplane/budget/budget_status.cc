#include "controlplane/budget/budget_status.h"

#include <algorithm>
#include <vector>

#include "common/status_macros.h"
#include "controlplane/budget/lease_tables.h"
#include "common/quota_window.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {

absl::StatusOr<budget::v1::BudgetStatus> BudgetStatusIn(SqliteDb& db,
                                                        const config::v1::Budget& spec,
                                                        absl::Time now) {
  budget::v1::BudgetStatus s;
  s.set_name(spec.name());
  s.set_capability(spec.capability());
  s.set_caller(spec.caller());
  s.set_tier(spec.tier());
  s.set_limit_usd_micros(spec.limit_usd_micros());
  const QuotaWindow w = BudgetWindowAt(spec.window(), now);
  *s.mutable_window_start() = ToTimestamp(w.start);
  *s.mutable_window_end() = ToTimestamp(w.end);
  QuotaRef ref;
  ref.budget = spec.name();
  const std::string key = ref.ToKey();
  TP_ASSIGN_OR_RETURN(std::optional<QuotaWindowRow> row, GetQuotaWindow(db, key, w.start));
  int64_t spent = row.has_value() ? row->settled : 0;
  int64_t leased = 0;
  TP_ASSIGN_OR_RETURN(std::vector<LeaseRow> leases, LiveLeases(db, key, w.start));
  for (const LeaseRow& l : leases) {
    if (l.expires_at <= now) {
      spent += l.spent + l.reserved;
      continue;
    }
    spent += l.spent;
    leased += std::max<int64_t>(0, l.granted - l.spent);
    budget::v1::LeaseStatus* ls = s.add_leases();
    ls->set_lease_id(l.lease_id);
    ls->set_node_id(l.node_id);
    ls->set_granted_usd_micros(l.granted);
    ls->set_spent_usd_micros(l.spent);
    ls->set_reserved_usd_micros(l.reserved);
    *ls->mutable_expires_at() = ToTimestamp(l.expires_at);
  }
  s.set_spent_usd_micros(spent);
  s.set_leased_usd_micros(leased);
  s.set_remaining_usd_micros(std::max<int64_t>(0, spec.limit_usd_micros() - spent - leased));
  return s;
}

absl::StatusOr<budget::v1::BudgetStatus> BudgetStatusOfRow(SqliteDb& db, const SpecRow& row,
                                                           absl::Time now) {
  config::v1::Budget spec;
  TP_RETURN_IF_ERROR(FromJson(row.spec_json, &spec));
  return BudgetStatusIn(db, spec, now);
}

}  // namespace turnpike::controlplane
