// A lease ledger inside the gateway, for a gateway that runs from a config file with no control
// plane: the same semantics as the control plane's (docs/limits.md, "Leases"), kept in memory,
// so limits and budgets hold exactly for that one process (its settled spend starts from zero at
// each start). Thread-safe (one mutex; only the lease manager's thread calls it).
#ifndef TURNPIKE_SERVER_ADMISSION_LOCAL_LEASE_SOURCE_H_
#define TURNPIKE_SERVER_ADMISSION_LOCAL_LEASE_SOURCE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/quota_window.h"
#include "server/admission/lease_source.h"

namespace turnpike {

// What a quota is limited to now, from the current config.
struct QuotaSpec {
  int64_t limit = 0;
  QuotaWindow window;
};

class LocalLeaseSource final : public LeaseSource {
 public:
  // `spec` answers the limit and current window of a quota (NOT_FOUND when the config no longer
  // has it). `ttl` is how long a lease lives without renewal.
  using SpecLookup = std::function<absl::StatusOr<QuotaSpec>(const budget::v1::Quota&, absl::Time)>;
  LocalLeaseSource(SpecLookup spec, Clock& clock, absl::Duration ttl = absl::Seconds(30));

  absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request) override;
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request) override;

 private:
  struct Lease {
    std::string counter;  // key of the window counter
    absl::Time window_end;
    int64_t granted = 0;
    int64_t spent = 0;     // last reported
    int64_t reserved = 0;  // last reported
    absl::Time expires;
  };
  struct Counter {
    int64_t settled = 0;
    int64_t leased = 0;  // granted of live leases
    absl::Time window_end;
  };
  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SpecLookup spec_;
  Clock& clock_;
  const absl::Duration ttl_;

  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Counter> counters_ ABSL_GUARDED_BY(mu_);
};

// The counter key of a quota ("budget/<name>", "requests/<limit>/<key>", "tokens/<limit>/<key>").
std::string QuotaKey(const budget::v1::Quota& quota);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_LOCAL_LEASE_SOURCE_H_
