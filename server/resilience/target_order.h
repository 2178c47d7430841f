// The order in which one request tries a route's targets (docs/routing.md): by fallback tier;
// within a tier a weighted random order (the first pick proportional to weight), or on a
// least-latency route the target with the lowest recent time to first token first, except for
// kLatencyExplorePercent of requests, which go by weight so the slower targets' figures stay
// fresh. No I/O; thread-safe as long as `rng` is not drawn from concurrently.
#ifndef TURNPIKE_SERVER_RESILIENCE_TARGET_ORDER_H_
#define TURNPIKE_SERVER_RESILIENCE_TARGET_ORDER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/random/bit_gen_ref.h"

namespace turnpike {

class Clock;
struct RouteEntry;

// Share (percent) of a least-latency route's requests whose tiers are ordered by weight.
inline constexpr uint32_t kLatencyExplorePercent = 10;

// Indexes into `route.targets`, in the order to try them. `route`'s targets have their
// `upstream` set (RuntimeConfig::Build); `clock` reads the time their latency figures are
// judged at.
std::vector<size_t> OrderTargets(const RouteEntry& route, Clock& clock, absl::BitGenRef rng);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_TARGET_ORDER_H_
