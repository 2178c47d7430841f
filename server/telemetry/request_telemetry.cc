#include "server/telemetry/request_telemetry.h"

#include "spdlog/spdlog.h"

namespace turnpike {
namespace {

const std::string& OrDash(const std::string& s) {
  static const std::string kDash = "-";
  return s.empty() ? kDash : s;
}

}  // namespace

// The OpenTelemetry GenAI view: only requests a provider's model answered or failed (not the
// refused, the cached, the degraded). Time to first token for successful streams; token usage when
// the request used any (input for both operations, output for chat).
void RequestTelemetry::RecordGenAi(const RequestFinished& event) {
  if (event.provider_kind == config::v1::PROVIDER_KIND_UNSPECIFIED) return;
  GatewayMetrics::GenAiRequest r;
  const bool chat = event.method != RequestMethod::kEmbed;
  r.operation = chat ? GatewayMetrics::GenAiRequest::Operation::kChat
                     : GatewayMetrics::GenAiRequest::Operation::kEmbeddings;
  r.provider_kind = event.provider_kind;
  r.model = &event.model;
  r.code = event.status.code();
  r.duration_nanos = absl::ToInt64Nanoseconds(event.latency);
  if (event.method == RequestMethod::kStreamCompletion && event.status.ok() &&
      event.time_to_first_token != absl::InfiniteDuration()) {
    r.time_to_first_token_nanos = absl::ToInt64Nanoseconds(event.time_to_first_token);
  }
  if (event.input_tokens > 0 || event.output_tokens > 0) {
    r.input_tokens = event.input_tokens;
    if (chat) r.output_tokens = event.output_tokens;
  }
  metrics_->RecordGenAi(r);
}

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
    RecordGenAi(event);
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
