// LeaseLedger is the authority on budgets and global rate limits across gateways
// (docs/budgets.md, the Envoy RLQS model): it grants each gateway leases, slices of a quota's
// limit in its current window, and keeps the invariant
//   settled + sum(granted of live leases) <= limit   in every window
// by checking and granting in one BEGIN IMMEDIATE transaction (schema in
// migrations/0003_leases.sql). A gateway spends a lease locally, renews it with reports of what it
// spent and holds, and releases it with what it spent; a lease not renewed within the TTL expires
// and is charged its last reported spent + reserved, the rest returns. Limits are read from the
// config tables at grant time, so a changed limit applies to the next grant. Expiry is lazy (the
// next grant of a quota) and swept (ExpireDue, called periodically). All time comes from the
// injected Clock. Errors are absl::Status with google.rpc details (common/status.h).
// Thread-safe: the Store serialises transactions; counters are atomics; the change listener is
// set before serving and constant afterwards.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_LEASE_LEDGER_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_LEASE_LEDGER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/store.h"
#include "turnpike/budget/v1/budget.pb.h"

namespace turnpike::controlplane {

class LeaseLedger {
 public:
  struct Options {
    // How long a lease lives unless renewed (--lease_ttl).
    absl::Duration lease_ttl = absl::Seconds(30);
    // Closed leases and rate-limit minute windows are pruned this long after they ended; budget
    // windows are kept (they are the spend history).
    absl::Duration closed_retention = absl::Hours(24);
  };
  // Told the name of a budget whose state a commit changed (grant, report, release, expiry),
  // after the commit and outside every lock of the ledger.
  using ChangeFn = std::function<void(const std::string& budget)>;

  // INVALID_ARGUMENT if the options are out of range (lease_ttl 1 s to 1 h).
  static absl::StatusOr<std::unique_ptr<LeaseLedger>> Create(Store& store, Clock& clock,
                                                             Options options);
  static absl::Status ValidateOptions(const Options& options);

  // Call before the first request.
  void SetChangeListener(ChangeFn fn) { on_change_ = std::move(fn); }

  // Opens a lease (no lease_id) or renews and tops up one (lease_id; a report of spent/reserved).
  // A lease whose window has ended can still be renewed with requested 0 (a heartbeat with a
  // report, while its requests settle), not topped up.
  // Errors: INVALID_ARGUMENT (BadRequest) for a malformed request; NOT_FOUND for an unknown
  // budget, rate limit or lease; PERMISSION_DENIED for another node's lease; FAILED_PRECONDITION
  // with ErrorInfo reason LEASE_EXPIRED, LEASE_RELEASED, LEASE_WINDOW_ENDED, or
  // QUOTA_UNIT_NOT_LIMITED (a rate limit without a limit in that unit); UNAVAILABLE when the
  // database stays locked.
  // `capabilities`: the node's restriction (its token's; empty for none). Opening a lease of a
  // budget or rate limit of a capability outside it, and outside the capabilities its budgets
  // degrade to, is PERMISSION_DENIED naming the capability (a rate limit of every capability is
  // allowed). Renewals are not checked again: the lease was opened by the same node.
  absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request,
      const std::vector<std::string>& capabilities = {});
  // Closes a lease, charging its window the reported spend. Idempotent: releasing a released
  // lease changes nothing. Releasing an expired lease corrects its charge to the reported spend.
  // Errors as Acquire (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT).
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request);
  // Expires every live lease whose expires_at has passed; returns how many.
  absl::StatusOr<int> ExpireDue();
  // Deletes closed leases and rate-limit windows that ended more than closed_retention ago.
  absl::StatusOr<int64_t> PruneClosed();

  // One budget's state in its current window. NOT_FOUND if there is no such budget.
  absl::StatusOr<budget::v1::BudgetStatus> GetBudget(const std::string& name);
  struct Page {
    std::vector<budget::v1::BudgetStatus> budgets;
    std::string next_page_token;
  };
  // Budgets by name, paginated like the admin List RPCs.
  absl::StatusOr<Page> ListBudgets(int page_size, const std::string& page_token);
  // The states of the named budgets that exist (every budget when `names` is empty), in one
  // consistent read.
  absl::StatusOr<std::vector<budget::v1::BudgetStatus>> Budgets(
      const std::vector<std::string>& names);

  // For /metrics, per unit (QUOTA_UNIT_USD_MICROS, _REQUESTS, _TOKENS).
  struct Counters {
    int64_t grants = 0;   // acquisitions that granted more than 0
    int64_t refused = 0;  // acquisitions that asked for more than 0 and got 0
    int64_t expired = 0;  // leases that expired unreleased
    int64_t overrun = 0;  // amount closed leases spent beyond what they were granted
  };
  Counters counters(budget::v1::QuotaUnit unit) const;

  absl::Duration lease_ttl() const { return options_.lease_ttl; }

 private:
  struct AtomicCounters {
    std::atomic<int64_t> grants{0};
    std::atomic<int64_t> refused{0};
    std::atomic<int64_t> expired{0};
    std::atomic<int64_t> overrun{0};
  };
  LeaseLedger(Store& store, Clock& clock, Options options)
      : store_(store), clock_(clock), options_(options) {}
  AtomicCounters& CountersFor(budget::v1::QuotaUnit unit);
  void Notify(const std::vector<std::string>& budgets) const;

  // Constant after construction.
  Store& store_;
  Clock& clock_;
  const Options options_;
  ChangeFn on_change_;

  // Indexed by QuotaUnit (1..3; 0 unused).
  std::array<AtomicCounters, 4> counters_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_LEASE_LEDGER_H_
