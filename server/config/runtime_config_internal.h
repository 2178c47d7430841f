// What the parts of RuntimeConfig::Build share (runtime_config.cc builds the routes from the
// pieces; runtime_config_targets.cc the providers, prices and chains of targets;
// runtime_config_settings.cc a route's timeouts and resilience settings; runtime_config_callers.cc
// and runtime_config_limits.cc the callers and limits): the error every check returns and the
// name rule. Internal to server/config; stateless, thread-safe.
#ifndef TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_INTERNAL_H_
#define TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_INTERNAL_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_compat.h"
#include "server/config/runtime_config.h"

namespace turnpike::runtime_config_internal {

// INVALID_ARGUMENT "config: <field>: <message>".
inline absl::Status FieldError(std::string_view field, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", Absl(field), ": ", Absl(message)));
}

// 1-128 characters of [A-Za-z0-9._-]: provider, capability, caller and limit names.
inline bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// The snapshot's providers by name, and its prices by (provider, model).
using ProviderIndex = absl::flat_hash_map<std::string, const ProviderEntry*>;
using PriceTable = absl::flat_hash_map<std::pair<std::string, std::string>, PriceRates>;

// Checks every provider and builds its adapter (its API key from `env` when it names a
// variable); appends them to `out` and indexes them in `index`.
absl::Status BuildProviders(const config::v1::Snapshot& snapshot,
                            const RuntimeConfig::EnvLookup& env,
                            std::vector<std::unique_ptr<ProviderEntry>>& out, ProviderIndex& index);
// Checks the snapshot's prices.
absl::StatusOr<PriceTable> BuildPrices(const config::v1::Snapshot& snapshot);
// Fills `route.targets` and `route.tiers` from one chain of targets (at `field`).
absl::Status BuildTargets(const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                          const std::string& field, const ProviderIndex& providers,
                          const PriceTable& prices, RouteEntry& route);

// Per-attempt time limits, defaults filled in (the route's, or one latency class's).
TransferOptions BuildTimeouts(const config::v1::Timeouts& t);
// The resilience settings of route `r` (timeouts, RetryPolicy, CircuitBreakerPolicy, CachePolicy,
// DegradationPolicy), defaults filled in. `r` has passed ValidateRouteSettings.
void BuildResilience(const config::v1::Route& r, RouteEntry* route);

}  // namespace turnpike::runtime_config_internal

#endif  // TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_INTERNAL_H_
