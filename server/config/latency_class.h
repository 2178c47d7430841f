// A request's latency class (CompleteRequest.latency_class, docs/routing.md): how quickly the
// caller needs an answer, which picks the route's timeouts and chain for that class. A value type
// with no state; thread-safe.
#ifndef TURNPIKE_SERVER_CONFIG_LATENCY_CLASS_H_
#define TURNPIKE_SERVER_CONFIG_LATENCY_CLASS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnpike {

// The value indexes RouteEntry::latency_classes.
enum class LatencyClass : uint8_t { kInteractive = 0, kBatch = 1 };
inline constexpr size_t kLatencyClassCount = 2;

// "interactive" or "batch": the class's name in usage records and the CSV export.
constexpr std::string_view LatencyClassName(LatencyClass latency_class) {
  return latency_class == LatencyClass::kBatch ? "batch" : "interactive";
}

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_LATENCY_CLASS_H_
