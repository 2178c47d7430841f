// The alert rules over what gateways count and report in their health reports
// (config_discovery.proto: admission refusals per capability, the usage spool's state). Refusals
// are cumulative counters since each gateway's process started; a rule differences them over its
// window, per gateway, the way Prometheus' increase() does (a counter that goes down, or a new
// process start, is a restart: the new value counts whole), then sums the gateways, so ten
// gateways refusing make one alert per capability. Pure functions of their inputs; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_GATEWAY_COUNTERS_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_GATEWAY_COUNTERS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"
#include "controlplane/alerts/alert_signals.h"
#include "controlplane/data_plane_registry.h"
#include "turnpike/alert/v1/alert.pb.h"

namespace turnpike::controlplane {

// How much a counter (read from each sample by `value`) grew after `since`, over `samples`
// (oldest first). The newest sample at or before `since` is the baseline; without one, the first
// later sample counts whole only if its process started after `since` (otherwise it is the
// baseline: what it counted before the window is unknown).
int64_t CounterIncrease(
    const std::vector<CounterSample>& samples, absl::Time since,
    const std::function<int64_t(const config::v1::ReportHealthRequest&)>& value);

// RATE_LIMIT_REFUSALS: one observation per capability any gateway reported refusals for (only
// rule.capability when set): rate-limit refusals per minute over rule.window, summed over every
// gateway, connected or not (their refusals happened).
std::vector<Observation> ObserveRefusals(const alert::v1::AlertRule& rule,
                                         const std::vector<GatewaySignal>& gateways,
                                         absl::Time now);

// USAGE_SPOOL_BACKLOG: one observation per connected gateway whose latest report has a spool
// (a gone gateway's last report is stale; GATEWAY_SILENT covers it).
std::vector<Observation> ObserveSpools(const alert::v1::AlertRule& rule,
                                       const std::vector<GatewaySignal>& gateways);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_GATEWAY_COUNTERS_H_
