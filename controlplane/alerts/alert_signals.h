// AlertSignals is what alert rules look at, behind one interface so the evaluator's tests run on
// a fake: request volume, failures and a latency quantile from the usage ledger (the `usage`
// table), a budget's limit and spend from the lease ledger (the numbers that enforce it), and
// each gateway's state from the DataPlaneRegistry (last heard from, NACKs, breaker states, the
// counters it reports: admission refusals and its usage spool), and
// each capability's targets from the current config snapshot.
// ObserveRule() turns one rule and these signals into observations, one per subject, merging what
// every gateway reports so that a problem seen by ten gateways is one observation.
// LiveAlertSignals is thread-safe (its sources are); ObserveRule is a pure function of its inputs.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SIGNALS_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SIGNALS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/budget/lease_ledger.h"
#include "controlplane/data_plane_registry.h"
#include "controlplane/snapshot_cache.h"
#include "controlplane/store.h"
#include "turnpike/alert/v1/alert.pb.h"

namespace turnpike::controlplane {

// Requests that started at or after a time, as the ledger recorded them. Refused requests (never
// sent upstream: rate limits, budgets) are not counted; a request failed if its status is not OK.
struct RequestStats {
  int64_t requests = 0;
  int64_t errors = 0;
  // The requested quantile of latency_us over those requests, in milliseconds (0 when none, or
  // when the quantile asked for is 0: error-rate rules do not read latencies).
  double quantile_ms = 0;
};

struct BudgetUse {
  int64_t limit_usd_micros = 0;
  int64_t spent_usd_micros = 0;
  // The current window (a budget with none known never projects an exhaustion).
  absl::Time window_start = absl::InfinitePast();
  absl::Time window_end = absl::InfiniteFuture();
};

struct UpstreamSignal {
  std::string provider;
  std::string model;
  bool open = false;
};

// A capability's route and its targets ("provider/model"), from the current config snapshot.
struct RouteSignal {
  std::string capability;
  std::vector<std::string> targets;
};

struct GatewaySignal {
  std::string node_id;
  absl::Time last_seen;
  bool connected = false;
  // The version the gateway last NACKed, empty when its latest answer was an ACK.
  std::string nacked_version;
  std::string last_nack;
  std::vector<UpstreamSignal> upstreams;
  // Its reported counters (admission refusals, usage spool), oldest first
  // (DataPlaneRegistry::CounterHistory).
  std::vector<CounterSample> counters;
};

class AlertSignals {
 public:
  virtual ~AlertSignals() = default;
  // Empty capability or model: all of them.
  virtual absl::StatusOr<RequestStats> Requests(const std::string& capability,
                                                const std::string& model, absl::Time since,
                                                double quantile) = 0;
  // nullopt if there is no such budget.
  virtual absl::StatusOr<std::optional<BudgetUse>> Budget(const std::string& name) = 0;
  virtual std::vector<GatewaySignal> Gateways() = 0;
  virtual std::vector<RouteSignal> Routes() = 0;
};

class LiveAlertSignals final : public AlertSignals {
 public:
  LiveAlertSignals(Store& store, LeaseLedger& leases, const DataPlaneRegistry& registry,
                   const SnapshotCache& snapshots)
      : store_(store), leases_(leases), registry_(registry), snapshots_(snapshots) {}

  absl::StatusOr<RequestStats> Requests(const std::string& capability, const std::string& model,
                                        absl::Time since, double quantile) override;
  absl::StatusOr<std::optional<BudgetUse>> Budget(const std::string& name) override;
  std::vector<GatewaySignal> Gateways() override;
  std::vector<RouteSignal> Routes() override;

 private:
  Store& store_;
  LeaseLedger& leases_;
  const DataPlaneRegistry& registry_;
  const SnapshotCache& snapshots_;
};

// What a rule sees now: one observation per subject.
struct Observation {
  std::string subject;
  bool breaching = false;
  double value = 0;
  std::string summary;
};

// The observations of `rule` at `now`. An error (the ledger unreadable) means "unknown": the
// caller keeps the rule's alerts as they are rather than resolving them.
absl::StatusOr<std::vector<Observation>> ObserveRule(const alert::v1::AlertRule& rule,
                                                     AlertSignals& signals, absl::Time now);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SIGNALS_H_
