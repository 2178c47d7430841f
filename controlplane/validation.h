// Validation of configuration specs, shared by the admin API (request checks, reported as
// google.rpc.BadRequest field violations) and the snapshot builder (the consistency check every
// snapshot passes before it is published). Paths in violations use the request's field names,
// e.g. "route.spec.targets[0].provider". Stateless functions; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_VALIDATION_H_
#define TURNPIKE_CONTROLPLANE_VALIDATION_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/status.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

// kAdmin: a spec written by an operator (secret-bearing fields must be empty).
// kSnapshot: a spec as shipped to gateways (secrets and key digests filled in).
enum class SpecMode { kAdmin, kSnapshot };

// Resource names: 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit (the
// gateway's config-file rule, so a file config can move to the control plane unchanged).
bool IsValidName(std::string_view name);
void ValidateName(std::string_view name, const std::string& path, Violations& v);

// Every target of `r` with its field path under `path`: the route's own targets, then each tier
// chain's, then each variant's, then each latency class's (docs/routing.md).
std::vector<std::pair<std::string, const config::v1::Target*>> AllRouteTargets(
    const config::v1::Route& r, const std::string& path);

void ValidateProvider(const config::v1::Provider& p, const std::string& path, SpecMode mode,
                      Violations& v);
// kAdmin also checks the resilience settings (timeouts, retry, circuit_breaker, cache,
// degradation, target tiers and weights, and the routing rules: tier chains, variants, target
// selection) with the gateway's limits (common/route_settings.h),
// and the admission settings (on_rate_limited, admission_queue bounds).
void ValidateRoute(const config::v1::Route& r, const std::string& path, SpecMode mode,
                   Violations& v);
void ValidateCaller(const config::v1::Caller& c, const std::string& path, SpecMode mode,
                    Violations& v);
void ValidatePrice(const config::v1::Price& p, const std::string& path, Violations& v);
// kAdmin also checks the bounds (at most 1e9 requests or 1e12 tokens per minute; a budget's
// limit positive and at most 1e15 micro-dollars), the enums, caller/tier names, and that
// degrade_to goes with OVER_LIMIT_ACTION_DEGRADE and names another capability (that it names an
// existing route is a reference check, done by ConfigAdmin and CheckSnapshotConsistency).
void ValidateRateLimit(const config::v1::RateLimit& r, const std::string& path, SpecMode mode,
                       Violations& v);
void ValidateBudget(const config::v1::Budget& b, const std::string& path, SpecMode mode,
                    Violations& v);
// A credential secret: non-empty, at most 8 KiB, usable as an HTTP header value. Descriptions
// never quote it.
void ValidateSecret(std::string_view secret, const std::string& path, Violations& v);

// The whole snapshot: every spec valid, names unique, every reference resolved (route targets
// and prices name providers, providers with a credential carry its key), key digests unique.
// FAILED_PRECONDITION with the violations if not.
absl::Status CheckSnapshotConsistency(const config::v1::Snapshot& snapshot);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_VALIDATION_H_
