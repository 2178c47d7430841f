// RequestTelemetry turns every finished request (RequestFinished, from the attempt driver or a
// refused call) into the gateway's access-log line and its per-request metrics: requests by
// method, capability and code, duration, time to first token, and each upstream attempt's
// disposition, and the same request in the OpenTelemetry GenAI names (docs/metrics.md). It is the
// first RequestFinishedSink; usage, admission settlement and audit hook in beside it
// (docs/architecture.md, "Where a request ends"). Thread-safe: called from completion-queue and
// transport threads at once; it only logs (spdlog, asynchronous-safe) and updates lock-free
// metrics.
#ifndef TURNPIKE_SERVER_TELEMETRY_REQUEST_TELEMETRY_H_
#define TURNPIKE_SERVER_TELEMETRY_REQUEST_TELEMETRY_H_

#include "server/exchange/request_finished.h"
#include "server/telemetry/gateway_metrics.h"

namespace turnpike {

class RequestTelemetry final : public RequestFinishedSink {
 public:
  // `metrics` may be null (no metrics) and must outlive this object.
  RequestTelemetry(bool access_log, GatewayMetrics* metrics)
      : access_log_(access_log), metrics_(metrics) {}

  void OnRequestFinished(const RequestFinished& event) override;

 private:
  void RecordGenAi(const RequestFinished& event);

  const bool access_log_;
  GatewayMetrics* const metrics_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_TELEMETRY_REQUEST_TELEMETRY_H_
