#include "server/telemetry/request_telemetry.h"

#include "spdlog/spdlog.h"

namespace turnpike {
namespace {

const std::string& OrDash(const std::string& s) {
  static const std::string kDash = "-";
  return s.empty() ? kDash : s;
}

}  // namespace

void RequestTelemetry::OnRequestFinished(const RequestFinished& event) {
  if (metrics_ != nullptr) {
    const auto method = static_cast<GatewayMetrics::Method>(event.method);
    metrics_->RecordRequest(method, event.capability, event.status.code(),
                            absl::ToInt64Nanoseconds(event.latency));
    if (event.method == RequestMethod::kStreamCompletion &&
        event.time_to_first_token != absl::InfiniteDuration()) {
      metrics_->RecordTimeToFirstToken(absl::ToInt64Nanoseconds(event.time_to_first_token));
    }
    if (!event.provider.empty()) {
      metrics_->RecordUsage(
          event.capability, event.provider, event.model,
          TokenCounts{event.input_tokens, event.cached_input_tokens, event.cache_write_input_tokens,
                      event.output_tokens, event.reasoning_output_tokens},
          event.cost_usd_micros);
    }
    if (!event.tier_chain.empty() || !event.variant.empty()) {
      metrics_->RecordRouted(event.capability, event.tier_chain, event.variant, event.provider,
                             event.model, event.status.code());
    }
    for (const v1::Attempt& a : event.attempts) {
      metrics_->RecordAttempt(a.provider(), a.model(),
                              v1::AttemptDisposition_Name(a.disposition()));
    }
    // A refused request never reached the driver: all of its time was the gateway's own.
    if (event.refused) metrics_->RecordOverhead(method, absl::ToInt64Nanoseconds(event.latency));
  }
  if (!access_log_) return;
  spdlog::info(
      "access method={} request_id={} capability={} caller={} provider={} model={} status={} "
      "input_tokens={} output_tokens={} cost_usd_micros={} attempts={} latency_ms={:.3f} "
      "trace_id={}",
      RequestMethodName(event.method), OrDash(event.request_id), OrDash(event.capability),
      OrDash(event.caller), OrDash(event.provider), OrDash(event.model),
      absl::StatusCodeToString(event.status.code()), event.input_tokens, event.output_tokens,
      event.cost_usd_micros, event.attempts.size(), absl::ToDoubleMilliseconds(event.latency),
      OrDash(event.trace_id));
}

}  // namespace turnpike
