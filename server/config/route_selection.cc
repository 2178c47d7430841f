#include "server/config/route_selection.h"

namespace turnpike {

uint32_t VariantBucket(std::string_view request_id) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : request_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // splitmix64's finalizer: FNV alone leaves the low bits of similar ids correlated.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<uint32_t>(h % kVariantBuckets);
}

const RouteEntry& SelectRoute(const RouteEntry& capability_route, LatencyClass latency_class,
                              std::string_view caller, std::string_view caller_tier,
                              std::string_view request_id) {
  const RouteEntry* by_class = capability_route.latency_classes[static_cast<size_t>(latency_class)];
  const RouteEntry& route = by_class != nullptr ? *by_class : capability_route;
  if (!route.variants.empty()) {
    if (!caller.empty()) {
      for (const RouteEntry::VariantChain& v : route.variants) {
        for (const std::string& name : v.callers) {
          if (name == caller) return *v.route;
        }
      }
    }
    const uint32_t bucket = VariantBucket(request_id);
    for (const RouteEntry::VariantChain& v : route.variants) {
      if (bucket >= v.bucket_begin && bucket < v.bucket_end) return *v.route;
    }
  }
  if (!caller_tier.empty()) {
    for (const auto& [tier, chain] : route.tier_chains) {
      if (tier == caller_tier) return *chain;
    }
  }
  return route;
}

}  // namespace turnpike
