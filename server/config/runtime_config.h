// RuntimeConfig is a validated, immutable view of one config snapshot, shaped for the request
// path: routes by capability, provider adapters ready to use, callers by key digest, prices.
// Build() is the single place a snapshot is checked, whether it came from a file or the watch
// stream; an invalid snapshot is rejected whole with an error naming the field. Build() also
// resolves, once per snapshot, the process-wide state each route and target uses (its
// UpstreamState and response cache, owned by Resilience), so a request follows pointers and takes
// no registry lock. Instances are shared as shared_ptr<const RuntimeConfig> and read concurrently
// without locks.
#ifndef TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_H_
#define TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/redactor.h"
#include "server/config/key_use_table.h"
#include "server/config/latency_class.h"
#include "server/config/price.h"
#include "server/providers/provider_adapter.h"
#include "server/resilience/policy.h"
#include "server/resilience/resilience.h"
#include "server/upstream/transport.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

struct ProviderEntry {
  std::string name;
  config::v1::ProviderKind kind;
  std::unique_ptr<ProviderAdapter> adapter;
  // Identifies the credential (never the secret): "name@version" from the control plane, empty
  // for a file config. Part of the upstream key, so a rotated credential starts healthy.
  std::string credential;
  // The host (with its port, if the base URL names one) requests to this provider go to: the
  // audit trail records it (docs/audit.md).
  std::string host;
  // What its API serves beyond text; routing skips it for requests that need more.
  ProviderFeatures features;
};

struct TargetEntry {
  const ProviderEntry* provider = nullptr;
  std::string model;
  // The target's tier rank: 0 for the primary tier, 1 for the first fallback tier, and so on.
  int fallback_position = 0;
  // Share of its tier's traffic (>= 1).
  uint32_t weight = 1;
  // What it serves beyond text: its provider's, with the route's per-target overrides.
  ProviderFeatures features;
  // nullopt when the price table has no entry: the cost is unknown (reported as 0, never
  // recorded as free).
  std::optional<PriceRates> price;
  // The shared state of (provider, model, credential), owned by Resilience and never destroyed:
  // the same object in every snapshot that has this target, so health survives config swaps.
  UpstreamState* upstream = nullptr;
};

class Quota;  // server/admission/quota.h
struct RouteEntry;

// A rate limit or a budget that applies to a route, as the admission layer reads it
// (docs/limits.md). `quotas` caches the gateway's shared counters for a limit keyed
// RATE_LIMIT_KEY_SHARED (and for every budget): the admission layer fills them on first use, so
// later requests reach their counters without a lookup. Counters are owned by the admission layer
// and outlive every snapshot.
struct LimitRule {
  enum class Kind { kRateLimit, kBudget };
  Kind kind = Kind::kRateLimit;
  std::string name;
  std::string caller;  // empty: every caller
  std::string tier;    // empty: every tier
  config::v1::RateLimitKey key = config::v1::RATE_LIMIT_KEY_SHARED;
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  int64_t limit_usd_micros = 0;
  config::v1::BudgetWindow window = config::v1::BUDGET_WINDOW_MONTHLY;
  config::v1::OverLimitAction on_exhausted = config::v1::OVER_LIMIT_ACTION_REJECT;
  const RouteEntry* degrade_to = nullptr;  // set for OVER_LIMIT_ACTION_DEGRADE
  bool fail_open = false;
  // [0] requests or dollars, [1] tokens.
  mutable std::atomic<Quota*> quotas[2] = {nullptr, nullptr};

  bool Matches(std::string_view caller_name, std::string_view caller_tier) const {
    return (caller.empty() || caller == caller_name) && (tier.empty() || tier == caller_tier);
  }
};

struct AdmissionSettings {
  config::v1::OverLimitAction on_rate_limited = config::v1::OVER_LIMIT_ACTION_REJECT;
  absl::Duration queue_max_wait = absl::Seconds(5);
  int queue_max_length = 100;
};

struct RouteEntry {
  std::string capability;
  std::vector<TargetEntry> targets;
  // Routing rules (docs/routing.md). A capability's own route may name other chains of targets;
  // each is built as a whole RouteEntry (a copy of the route with its own targets, its limits,
  // cache and settings shared), so the admission layer, the planner and the driver serve it as
  // any route. SelectRoute (server/config/route_selection.h) picks one per request.
  // For a chain: the caller tier whose chain it is, or the variant it is (one of them is set).
  std::string tier_chain;
  std::string variant;
  // Within a fallback tier, the target with the lowest recent time to first token first
  // (TARGET_SELECTION_LEAST_LATENCY) rather than a weighted random order.
  bool least_latency = false;
  struct VariantChain {
    const RouteEntry* route = nullptr;
    // Requests whose variant bucket (0..9,999, route_selection.h) is in [first, end) land here.
    uint32_t bucket_begin = 0;
    uint32_t bucket_end = 0;
    std::vector<std::string> callers;
  };
  // On a capability's own route only; owned by the RuntimeConfig.
  std::vector<std::pair<std::string, const RouteEntry*>> tier_chains;
  std::vector<VariantChain> variants;
  // On a capability's own route only: per latency class, the route as that class is served (the
  // class's timeouts, and its own chain or copies of the route's chains with those timeouts),
  // null for a class the route gives no settings. Owned by the RuntimeConfig.
  std::array<const RouteEntry*, kLatencyClassCount> latency_classes{};
  bool allow_unauthenticated = false;
  // Route.task is ROUTE_TASK_CLASSIFICATION: the capability serves Classify
  // (docs/classification.md).
  bool classification = false;
  int32_t default_max_tokens = 1024;
  TransferOptions timeouts;
  RetrySettings retry;
  BreakerSettings breaker;
  CacheSettings cache;
  DegradationSettings degradation;
  // Number of fallback tiers (the cache and degradation come after them).
  int tiers = 1;
  // The capability's response cache (owned by Resilience, sized by `cache.max_bytes` when the
  // snapshot was built); set whatever the cache mode.
  ResponseCache* response_cache = nullptr;
  AdmissionSettings admission;
  // The rate limits and budgets whose capability is this route's (or every capability), in the
  // snapshot's order: rate limits first, then budgets. Owned by the RuntimeConfig.
  std::vector<const LimitRule*> limits;
  // What text of this route's requests and replies may reach a sink (docs/request-log.md), never
  // UNSPECIFIED; and the redactor every such text goes through (built-in and custom patterns).
  config::v1::ContentPolicy content_policy = config::v1::CONTENT_POLICY_NONE;
  std::shared_ptr<const Redactor> redactor;
};

struct CallerEntry {
  std::string name;
  std::string tier;
  bool all_capabilities = false;
  absl::flat_hash_set<std::string> capabilities;
  bool Allows(std::string_view capability) const {
    return all_capabilities || capabilities.contains(std::string(capability));
  }
};

// One caller key, found by its digest.
struct CallerKeyEntry {
  const CallerEntry* caller = nullptr;
  // Public id (snapshot CallerKey.key_id); empty for a digest listed only in key_sha256.
  std::string key_id;
  // Refused from this second on; InfiniteFuture() for a key that does not expire.
  absl::Time expire_time = absl::InfiniteFuture();
  // Where its last use is noted (KeyUseTable); null when nothing tracks uses (a file config,
  // tests, or a key without an id).
  KeyUseTable::Slot* last_used = nullptr;
};

class RuntimeConfig {
 public:
  // Looks up environment variables (api_key_env); injectable for tests.
  using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
  static EnvLookup ProcessEnv();

  // `resilience` (and `key_uses`, if given) outlive every snapshot built with them; state is
  // resolved in them only when the whole snapshot is valid.
  static absl::StatusOr<std::shared_ptr<const RuntimeConfig>> Build(
      const config::v1::Snapshot& snapshot, const EnvLookup& env, Resilience& resilience,
      KeyUseTable* key_uses = nullptr);

  const std::string& version() const { return version_; }
  // nullptr if the capability has no route.
  const RouteEntry* FindRoute(std::string_view capability) const;
  // Every routed capability, sorted (GET /v1/models filters them by what the caller may use).
  std::vector<std::string> Capabilities() const;
  // The entry of `key` (a full "Bearer" token), or nullptr. Compares digests in constant time.
  // Expiry is the caller's to check.
  const CallerKeyEntry* FindKey(std::string_view key) const;
  // FindKey's caller, or nullptr (ignores expiry).
  const CallerEntry* FindCallerByKey(std::string_view key) const {
    const CallerKeyEntry* entry = FindKey(key);
    return entry == nullptr ? nullptr : entry->caller;
  }
  // The caller a client certificate SAN ("DNS:claims.internal") identifies, or nullptr.
  const CallerEntry* FindCallerByCertSan(std::string_view san) const;
  // Whether any caller is identified by certificate (else the request path skips reading them).
  bool has_cert_callers() const { return !callers_by_san_.empty(); }

  // The rate limit or budget named `name`, or nullptr (a budget of an unrouted capability too).
  const LimitRule* FindLimit(LimitRule::Kind kind, std::string_view name) const;

  // The cost of `tokens` at the target's price, with its components (server/config/price.h);
  // all zero when the target has no price (then the cost is unknown, not free).
  static Cost CostOf(const TargetEntry& target, const TokenCounts& tokens);
  // The total of CostOf for uncached input and output only (estimates made before a request has
  // usage, e.g. admission's worst case).
  static int64_t CostMicros(const TargetEntry& target, int64_t input_tokens, int64_t output_tokens);

 private:
  RuntimeConfig() = default;
  // Checks the snapshot's rate limits, budgets and route admission settings, and attaches each
  // limit to the routes it applies to. Requires routes_ built (runtime_config_limits.cc).
  static absl::Status BuildLimits(const config::v1::Snapshot& snapshot, RuntimeConfig& config);
  // Checks the snapshot's callers and indexes their keys and certificate SANs
  // (runtime_config_callers.cc).
  static absl::Status BuildCallers(const config::v1::Snapshot& snapshot, RuntimeConfig& config);

  std::string version_;
  std::vector<std::unique_ptr<ProviderEntry>> providers_;
  absl::flat_hash_map<std::string, RouteEntry> routes_;
  std::vector<std::unique_ptr<CallerEntry>> callers_;
  std::vector<std::unique_ptr<LimitRule>> limits_;
  // The tier chains, variants and latency classes of every route (RouteEntry::tier_chains,
  // ::variants, ::latency_classes).
  std::vector<std::unique_ptr<RouteEntry>> chain_routes_;
  absl::flat_hash_map<std::string, CallerKeyEntry> keys_by_digest_;  // raw 32-byte digest
  absl::flat_hash_map<std::string, const CallerEntry*> callers_by_san_;
};

// Parses the JSON form of a Snapshot (the --config file). Errors name the offending field.
absl::StatusOr<config::v1::Snapshot> ParseSnapshotJson(std::string_view json);
// Reads and parses a --config file.
absl::StatusOr<config::v1::Snapshot> LoadSnapshotFile(const std::string& path);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_RUNTIME_CONFIG_H_
