// A route's resilience settings, validated and with every default filled in: retries and
// backoff, circuit breaking, the response cache and degradation. RuntimeConfig builds them from
// the snapshot (turnpike.config.v1.Route); the defaults here are the ones docs/resilience.md
// documents. Plain values; immutable once built and safe to share.
#ifndef TURNPIKE_SERVER_RESILIENCE_POLICY_H_
#define TURNPIKE_SERVER_RESILIENCE_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace turnpike {

struct RetrySettings {
  // Upstream attempts per request across the chain, the first included (§1.9: at most 3).
  int max_attempts = 3;
  // Attempts on one target before the chain moves on (Envoy's default: one retry).
  int max_attempts_per_target = 2;
  absl::Duration base_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // A longer provider retry-after is not waited for: the chain moves on (or the request ends).
  absl::Duration max_retry_after = absl::Seconds(10);
};

struct BreakerSettings {
  int consecutive_failures = 5;
  absl::Duration failure_rate_window = absl::Seconds(30);
  int failure_rate_percent = 50;
  int minimum_volume = 20;
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Seconds(300);
  int half_open_probes = 1;
  absl::Duration probe_timeout = absl::Seconds(5);
};

enum class CacheMode { kOff, kFallback, kFirst };

struct CacheSettings {
  CacheMode mode = CacheMode::kOff;
  absl::Duration ttl = absl::Minutes(5);
  absl::Duration max_stale = absl::Hours(24);
  size_t max_bytes = 16 << 20;
};

struct DegradationSettings {
  // Answer with `static_response` as a successful, degraded reply.
  bool static_response_enabled = false;
  std::string static_response;
  // Otherwise answer UNAVAILABLE whatever the last attempt's code (else: that code).
  bool force_unavailable = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_POLICY_H_
