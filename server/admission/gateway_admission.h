// How turnpike-gateway assembles its admission layer: leases from the control plane when it has
// one (every gateway shares the same ledger), or from a local ledger over the config file's limits
// when it runs alone; its metrics; and a log line, at most once a minute, while a limit fails open
// or closed for want of a lease. Used by GatewayCore only (server/core/gateway_core.h).
#ifndef TURNPIKE_SERVER_ADMISSION_GATEWAY_ADMISSION_H_
#define TURNPIKE_SERVER_ADMISSION_GATEWAY_ADMISSION_H_

#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "server/admission/admission.h"
#include "server/admission/control_plane_lease_source.h"
#include "server/config/config_store.h"
#include "server/telemetry/gateway_metrics.h"

namespace turnpike {

struct GatewayAdmission {
  std::unique_ptr<Admission> admission;
  // Set when leases come from the control plane: give it the channel once there is one.
  ControlPlaneLeaseSource* control_plane = nullptr;
};

// `store` and `clock` outlive the result.
GatewayAdmission MakeGatewayAdmission(const std::string& node_id, bool from_control_plane,
                                      ConfigStore& store, Clock& clock,
                                      std::function<void(const std::string&)> log_warning);

// Exports the admission counters on `metrics`; `admission` outlives `metrics`' collection.
void AddAdmissionMetrics(GatewayMetrics& metrics, Admission& admission);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_GATEWAY_ADMISSION_H_
