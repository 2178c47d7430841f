// The control plane's budget gauges on /metrics (docs/metrics.md, "Budgets"): each budget's limit,
// spent, reserved (held by gateways' live leases beyond what they reported spent) and remaining in
// its current window, and when that window ends, labelled by budget, capability, caller and tier.
// Read at scrape time from LeaseLedger::Budgets, the numbers BudgetService answers with and the
// ones that enforce the limits; one read per scrape, shared by the families. Thread-safe: the
// ledger is, and the scrape's read is guarded by its own mutex.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_METRICS_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_METRICS_H_

#include "common/metrics.h"
#include "controlplane/budget/lease_ledger.h"

namespace turnpike::controlplane {

// Registers the budget families in `registry`; `ledger` must outlive every Render().
void AddBudgetMetrics(MetricsRegistry& registry, LeaseLedger& ledger);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_METRICS_H_
