// The limits and defaults of a route's resilience settings (turnpike.config.v1.Route: timeouts,
// retry, circuit_breaker, cache, degradation, and each target's tier and weight), and the one
// check of them. The gateway (RuntimeConfig, which NACKs a snapshot that fails it) and the control
// plane (the admin API, which rejects such a route with INVALID_ARGUMENT) both call
// ValidateRouteSettings, so an admin can store exactly the routes every gateway accepts and the
// limits cannot drift apart. Stateless functions and constants; thread-safe.
#ifndef TURNPIKE_COMMON_ROUTE_SETTINGS_H_
#define TURNPIKE_COMMON_ROUTE_SETTINGS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

// One bad field: its path (e.g. "routes[0].retry.max_attempts") and what is wrong with it.
struct FieldViolation {
  std::string field;
  std::string description;
};

// An optional integer setting: 0 means `default_value`; any other value must be in [min, max].
struct SettingLimits {
  int64_t min;
  int64_t max;
  int64_t default_value;
  // The value in force: `value`, or the default for 0. Only for values that passed validation.
  constexpr int64_t Or(int64_t value) const { return value == 0 ? default_value : value; }
};

namespace route_limits {
// Timeouts, per attempt (total: the whole request), in milliseconds.
inline constexpr SettingLimits kConnectMs{1, 86'400'000, 2'000};
inline constexpr SettingLimits kFirstTokenMs{1, 86'400'000, 30'000};
inline constexpr SettingLimits kIdleMs{1, 86'400'000, 30'000};
inline constexpr SettingLimits kTotalMs{1, 86'400'000, 300'000};
// RetryPolicy.
inline constexpr SettingLimits kMaxAttempts{1, 10, 3};
inline constexpr SettingLimits kMaxAttemptsPerTarget{1, 5, 2};
inline constexpr SettingLimits kBaseBackoffMs{1, 60'000, 100};
inline constexpr SettingLimits kMaxBackoffMs{1, 300'000, 2'000};
inline constexpr SettingLimits kMaxRetryAfterMs{1, 3'600'000, 10'000};
// CircuitBreakerPolicy.
inline constexpr SettingLimits kConsecutiveFailures{1, 1'000, 5};
inline constexpr SettingLimits kFailureRateWindowMs{10, 3'600'000, 30'000};
inline constexpr SettingLimits kFailureRatePercent{1, 100, 50};
inline constexpr SettingLimits kMinimumVolume{1, 1'000'000, 20};
inline constexpr SettingLimits kBaseEjectionMs{1, 3'600'000, 30'000};
inline constexpr SettingLimits kMaxEjectionMs{1, 86'400'000, 300'000};
inline constexpr SettingLimits kHalfOpenProbes{1, 100, 1};
inline constexpr SettingLimits kProbeTimeoutMs{1, 600'000, 5'000};
// CachePolicy.
inline constexpr SettingLimits kCacheTtlMs{1, 2'147'483'647, 300'000};
inline constexpr SettingLimits kCacheMaxStaleMs{1, int64_t{365} * 86'400'000, 86'400'000};
inline constexpr SettingLimits kCacheMaxBytes{1'024, int64_t{1} << 30, 16 << 20};
// DegradationPolicy.static_response, for DEGRADATION_MODE_STATIC_RESPONSE.
inline constexpr size_t kMaxStaticResponseBytes = 65'536;
// Target.weight (0 means 1).
inline constexpr uint32_t kMaxWeight = 1'000;
// Routing rules (docs/routing.md): tier chains and variants per route, targets per chain.
inline constexpr size_t kMaxTierChains = 16;
inline constexpr size_t kMaxVariants = 8;
inline constexpr size_t kMaxChainTargets = 16;
}  // namespace route_limits

// Checks the resilience settings and routing rules (tier chains, variants: names unique and
// well formed, chains non-empty, percentages adding up to at most 100; each latency class's
// timeouts and chain; the task, and that a classification route has no static degradation
// answer) of `route` against the
// limits above: every bad field, in field
// order, with paths under `path` (the route's own path, e.g. "routes[0]" or "route.spec").
// Empty if they are all valid. Does not check the capability, the targets' providers and models,
// or default_max_tokens (each service checks those against what it knows).
std::vector<FieldViolation> ValidateRouteSettings(const config::v1::Route& route,
                                                  std::string_view path);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_ROUTE_SETTINGS_H_
