// libFuzzer target: the --config snapshot JSON parser and the RuntimeConfig built from it
// (server/config/runtime_config.h) on arbitrary JSON text. Environment lookups answer with a fixed
// key, so providers that name an api_key_env resolve and the whole of Build() runs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "server/config/runtime_config.h"
#include "server/resilience/resilience.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<turnpike::config::v1::Snapshot> snapshot = turnpike::ParseSnapshotJson(json);
  if (!snapshot.ok()) return 0;
  const turnpike::RuntimeConfig::EnvLookup env =
      [](const std::string&) -> std::optional<std::string> { return "fuzz-key"; };
  // Build() resolves each target's upstream state in the process-wide registry, as the gateway's
  // does; one registry serves every input.
  static turnpike::SimulatedClock clock;
  static std::mt19937_64 gen{1};
  static turnpike::Resilience resilience(turnpike::Resilience::Options(), clock, gen);
  auto config = turnpike::RuntimeConfig::Build(*snapshot, env, resilience);
  if (config.ok()) {
    for (const auto& route : snapshot->routes()) (void)(*config)->FindRoute(route.capability());
    (void)(*config)->FindCallerByKey("Bearer fuzz");
  }
  return 0;
}
