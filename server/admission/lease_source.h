// Where a gateway's leases come from: the control plane's BudgetService (every gateway of a fleet
// carves its slices from one SQLite ledger), or, for a gateway run from a config file, a local
// ledger with the same semantics. The messages are turnpike.budget.v1's AcquireLease and
// ReleaseLease, whose comments are the contract. Calls block (one round trip); only the lease
// manager's thread makes them. Implementations are thread-safe.
#ifndef TURNPIKE_SERVER_ADMISSION_LEASE_SOURCE_H_
#define TURNPIKE_SERVER_ADMISSION_LEASE_SOURCE_H_

#include "absl/status/statusor.h"
#include "turnpike/budget/v1/budget.pb.h"

namespace turnpike {

class LeaseSource {
 public:
  virtual ~LeaseSource() = default;
  virtual absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request) = 0;
  virtual absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request) = 0;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_LEASE_SOURCE_H_
