// A route's own settings as the request path reads them: per-attempt timeouts, retry, circuit
// breaker, cache and degradation, the snapshot's values with the defaults filled in
// (common/route_settings.h holds the limits and defaults, shared with the control plane's check).
// Part of RuntimeConfig::Build; stateless, thread-safe.
#include "common/route_settings.h"
#include "server/config/runtime_config_internal.h"

namespace turnpike::runtime_config_internal {

TransferOptions BuildTimeouts(const config::v1::Timeouts& t) {
  namespace l = route_limits;
  const auto ms = [](const SettingLimits& limits, int64_t value) {
    return absl::Milliseconds(limits.Or(value));
  };
  TransferOptions out;
  out.connect_timeout = ms(l::kConnectMs, t.connect_ms());
  out.first_byte_timeout = ms(l::kFirstTokenMs, t.first_token_ms());
  out.idle_timeout = ms(l::kIdleMs, t.idle_ms());
  out.total_timeout = ms(l::kTotalMs, t.total_ms());
  return out;
}

void BuildResilience(const config::v1::Route& r, RouteEntry* route) {
  namespace l = route_limits;
  const auto ms = [](const SettingLimits& limits, int64_t value) {
    return absl::Milliseconds(limits.Or(value));
  };
  route->timeouts = BuildTimeouts(r.timeouts());

  const auto& retry = r.retry();
  route->retry.max_attempts = static_cast<int>(l::kMaxAttempts.Or(retry.max_attempts()));
  route->retry.max_attempts_per_target =
      static_cast<int>(l::kMaxAttemptsPerTarget.Or(retry.max_attempts_per_target()));
  route->retry.base_backoff = ms(l::kBaseBackoffMs, retry.base_backoff_ms());
  route->retry.max_backoff = ms(l::kMaxBackoffMs, retry.max_backoff_ms());
  route->retry.max_retry_after = ms(l::kMaxRetryAfterMs, retry.max_retry_after_ms());

  const auto& cb = r.circuit_breaker();
  route->breaker.consecutive_failures =
      static_cast<int>(l::kConsecutiveFailures.Or(cb.consecutive_failures()));
  route->breaker.failure_rate_window = ms(l::kFailureRateWindowMs, cb.failure_rate_window_ms());
  route->breaker.failure_rate_percent =
      static_cast<int>(l::kFailureRatePercent.Or(cb.failure_rate_percent()));
  route->breaker.minimum_volume = static_cast<int>(l::kMinimumVolume.Or(cb.minimum_volume()));
  route->breaker.base_ejection = ms(l::kBaseEjectionMs, cb.base_ejection_ms());
  route->breaker.max_ejection = ms(l::kMaxEjectionMs, cb.max_ejection_ms());
  route->breaker.half_open_probes = static_cast<int>(l::kHalfOpenProbes.Or(cb.half_open_probes()));
  route->breaker.probe_timeout = ms(l::kProbeTimeoutMs, cb.probe_timeout_ms());

  const auto& cache = r.cache();
  switch (cache.mode()) {
    case config::v1::CACHE_MODE_FALLBACK:
      route->cache.mode = CacheMode::kFallback;
      break;
    case config::v1::CACHE_MODE_FIRST:
      route->cache.mode = CacheMode::kFirst;
      break;
    default:  // unset or CACHE_MODE_OFF
      route->cache.mode = CacheMode::kOff;
      break;
  }
  route->cache.ttl = ms(l::kCacheTtlMs, cache.ttl_ms());
  route->cache.max_stale = ms(l::kCacheMaxStaleMs, cache.max_stale_ms());
  route->cache.max_bytes = static_cast<size_t>(l::kCacheMaxBytes.Or(cache.max_bytes()));

  const auto& degradation = r.degradation();
  route->degradation.force_unavailable =
      degradation.mode() == config::v1::DEGRADATION_MODE_UNAVAILABLE;
  if (degradation.mode() == config::v1::DEGRADATION_MODE_STATIC_RESPONSE) {
    route->degradation.static_response_enabled = true;
    route->degradation.static_response = degradation.static_response();
  }
}

}  // namespace turnpike::runtime_config_internal
