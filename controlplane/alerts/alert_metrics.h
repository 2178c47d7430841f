// The control plane's alert gauges on /metrics (docs/metrics.md, "Alerts"): each alert the engine
// holds (pending, firing, or resolved and not yet dropped) as one series whose `state` label is its
// state, and the value its rule last observed; read at scrape time from AlertEngine::Alerts, the
// same list ListAlerts answers with; and the count of completed evaluations, which says the engine
// is running. Thread-safe: the engine is.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_METRICS_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_METRICS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "common/metrics.h"
#include "turnpike/alert/v1/alert.pb.h"

namespace turnpike::controlplane {

// Registers the alert families in `registry`; `alerts` (e.g. AlertEngine::Alerts) is called once
// per family per scrape and must stay callable for every Render(); so must `evaluations` (e.g.
// AlertEngine::evaluations), when given.
void AddAlertMetrics(MetricsRegistry& registry,
                     std::function<std::vector<alert::v1::Alert>()> alerts,
                     std::function<int64_t()> evaluations = nullptr);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_METRICS_H_
