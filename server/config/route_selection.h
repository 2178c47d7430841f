// Which chain of a route serves one request (docs/routing.md): the request's latency class first
// picks the route as that class is served (its own chain, or the route's chains with the class's
// timeouts); then a variant named for the caller, else the variant whose share of the variant
// buckets holds the request id's bucket, else the chain of the caller's tier, else the route's own
// targets. The bucket is a fixed hash of the
// request id, so the split is the same on every gateway and for every retry of a request.
// Pure functions over an immutable RouteEntry: thread-safe, no lock, no allocation.
#ifndef TURNPIKE_SERVER_CONFIG_ROUTE_SELECTION_H_
#define TURNPIKE_SERVER_CONFIG_ROUTE_SELECTION_H_

#include <cstdint>
#include <string_view>

#include "server/config/runtime_config.h"

namespace turnpike {

// Variant buckets: a percentage point is 100 buckets.
inline constexpr uint32_t kVariantBuckets = 10'000;

// The request id's bucket in [0, kVariantBuckets): FNV-1a over its bytes, then a 64-bit mix.
uint32_t VariantBucket(std::string_view request_id);

// The route (the capability's own, or one of its chains) that serves a request of latency class
// `latency_class` of `caller` (empty when unauthenticated) of tier `caller_tier` with id
// `request_id`. Returns `route` itself when it has no routing rules.
const RouteEntry& SelectRoute(const RouteEntry& route, LatencyClass latency_class,
                              std::string_view caller, std::string_view caller_tier,
                              std::string_view request_id);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_ROUTE_SELECTION_H_
