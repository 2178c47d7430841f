// A budget's state as dashboards see it (turnpike.budget.v1.BudgetStatus), computed from the
// config and lease tables inside the caller's transaction: limit, spent (settled plus what live
// leases reported spent), leased (live grants beyond their reported spend), remaining (clamped at
// 0), the current window and each live lease. A live lease already past its expiry counts as the
// sweep will charge it (spent + reserved) and is not listed. Stateless; thread-safe given
// exclusive use of `db`.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_STATUS_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_STATUS_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/config_tables.h"
#include "controlplane/sqlite.h"
#include "turnpike/budget/v1/budget.pb.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

absl::StatusOr<budget::v1::BudgetStatus> BudgetStatusIn(SqliteDb& db,
                                                        const config::v1::Budget& spec,
                                                        absl::Time now);
// The same for a row of the budgets table.
absl::StatusOr<budget::v1::BudgetStatus> BudgetStatusOfRow(SqliteDb& db, const SpecRow& row,
                                                           absl::Time now);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_STATUS_H_
