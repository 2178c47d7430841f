#include "server/config/runtime_config.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cert_san.h"
#include "common/route_settings.h"
#include "common/string_view_compat.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/route_selection.h"

namespace turnpike {
namespace {

// "https://user@api.example.com:8443/v1" -> "api.example.com:8443".
std::string HostOfUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  const size_t at = url.rfind('@');
  if (at != std::string_view::npos) url.remove_prefix(at + 1);
  return std::string(url);
}

using config::v1::Provider;
using config::v1::Snapshot;

constexpr int32_t kDefaultMaxTokens = 1024;

absl::Status FieldError(std::string_view field, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", Absl(field), ": ", Absl(message)));
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// The resilience settings of route `r` (timeouts, RetryPolicy, CircuitBreakerPolicy, CachePolicy,
// DegradationPolicy), defaults filled in. `r` has passed ValidateRouteSettings.
// Per-attempt time limits, defaults filled in (the route's, or one latency class's).
TransferOptions BuildTimeouts(const config::v1::Timeouts& t) {
  namespace l = route_limits;
  const auto ms = [](const SettingLimits& limits, int64_t value) {
    return absl::Milliseconds(limits.Or(value));
  };
  TransferOptions out;
  out.connect_timeout = ms(l::kConnectMs, t.connect_ms());
  out.first_byte_timeout = ms(l::kFirstTokenMs, t.first_token_ms());
  out.idle_timeout = ms(l::kIdleMs, t.idle_ms());
  out.total_timeout = ms(l::kTotalMs, t.total_ms());
  return out;
}

void BuildResilience(const config::v1::Route& r, RouteEntry* route) {
  namespace l = route_limits;
  const auto ms = [](const SettingLimits& limits, int64_t value) {
    return absl::Milliseconds(limits.Or(value));
  };
  route->timeouts = BuildTimeouts(r.timeouts());

  const auto& retry = r.retry();
  route->retry.max_attempts = static_cast<int>(l::kMaxAttempts.Or(retry.max_attempts()));
  route->retry.max_attempts_per_target =
      static_cast<int>(l::kMaxAttemptsPerTarget.Or(retry.max_attempts_per_target()));
  route->retry.base_backoff = ms(l::kBaseBackoffMs, retry.base_backoff_ms());
  route->retry.max_backoff = ms(l::kMaxBackoffMs, retry.max_backoff_ms());
  route->retry.max_retry_after = ms(l::kMaxRetryAfterMs, retry.max_retry_after_ms());

  const auto& cb = r.circuit_breaker();
  route->breaker.consecutive_failures =
      static_cast<int>(l::kConsecutiveFailures.Or(cb.consecutive_failures()));
  route->breaker.failure_rate_window = ms(l::kFailureRateWindowMs, cb.failure_rate_window_ms());
  route->breaker.failure_rate_percent =
      static_cast<int>(l::kFailureRatePercent.Or(cb.failure_rate_percent()));
  route->breaker.minimum_volume = static_cast<int>(l::kMinimumVolume.Or(cb.minimum_volume()));
  route->breaker.base_ejection = ms(l::kBaseEjectionMs, cb.base_ejection_ms());
  route->breaker.max_ejection = ms(l::kMaxEjectionMs, cb.max_ejection_ms());
  route->breaker.half_open_probes = static_cast<int>(l::kHalfOpenProbes.Or(cb.half_open_probes()));
  route->breaker.probe_timeout = ms(l::kProbeTimeoutMs, cb.probe_timeout_ms());

  const auto& cache = r.cache();
  switch (cache.mode()) {
    case config::v1::CACHE_MODE_FALLBACK:
      route->cache.mode = CacheMode::kFallback;
      break;
    case config::v1::CACHE_MODE_FIRST:
      route->cache.mode = CacheMode::kFirst;
      break;
    default:  // unset or CACHE_MODE_OFF
      route->cache.mode = CacheMode::kOff;
      break;
  }
  route->cache.ttl = ms(l::kCacheTtlMs, cache.ttl_ms());
  route->cache.max_stale = ms(l::kCacheMaxStaleMs, cache.max_stale_ms());
  route->cache.max_bytes = static_cast<size_t>(l::kCacheMaxBytes.Or(cache.max_bytes()));

  const auto& degradation = r.degradation();
  route->degradation.force_unavailable =
      degradation.mode() == config::v1::DEGRADATION_MODE_UNAVAILABLE;
  if (degradation.mode() == config::v1::DEGRADATION_MODE_STATIC_RESPONSE) {
    route->degradation.static_response_enabled = true;
    route->degradation.static_response = degradation.static_response();
  }
}

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

}  // namespace

RuntimeConfig::EnvLookup RuntimeConfig::ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<std::shared_ptr<const RuntimeConfig>> RuntimeConfig::Build(const Snapshot& snapshot,
                                                                          const EnvLookup& env,
                                                                          Resilience& resilience,
                                                                          KeyUseTable* key_uses) {
  std::shared_ptr<RuntimeConfig> config(new RuntimeConfig());
  config->version_ = snapshot.version();
  absl::flat_hash_map<std::string, const ProviderEntry*> providers;

  for (int i = 0; i < snapshot.providers_size(); ++i) {
    const Provider& p = snapshot.providers(i);
    const std::string field = absl::StrCat("providers[", i, "]");
    if (!ValidName(p.name())) {
      return FieldError(field + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    }
    if (providers.contains(p.name())) {
      return FieldError(field + ".name", absl::StrCat("duplicate provider \"", p.name(), "\""));
    }
    if (p.kind() == config::v1::PROVIDER_KIND_UNSPECIFIED ||
        !config::v1::ProviderKind_IsValid(p.kind())) {
      return FieldError(field + ".kind", "must be set (e.g. PROVIDER_KIND_OPENAI)");
    }
    if (!absl::StartsWith(p.base_url(), "http://") && !absl::StartsWith(p.base_url(), "https://")) {
      return FieldError(field + ".base_url", "must start with http:// or https://");
    }
    if (p.kind() == config::v1::PROVIDER_KIND_AZURE_OPENAI && p.api_version().empty()) {
      return FieldError(field + ".api_version",
                        "is required for Azure OpenAI (e.g. \"2024-10-21\")");
    }
    std::string key = p.api_key();
    if (key.empty() && !p.api_key_env().empty()) {
      std::optional<std::string> value = env(p.api_key_env());
      if (!value.has_value() || value->empty()) {
        return FieldError(field + ".api_key_env",
                          absl::StrCat("environment variable ", p.api_key_env(), " is not set"));
      }
      key = *std::move(value);
    }
    if (key.empty() && p.kind() != config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE) {
      return FieldError(field + ".api_key_env",
                        "this provider kind needs an API key (set api_key_env)");
    }
    absl::StatusOr<std::unique_ptr<ProviderAdapter>> adapter = MakeProviderAdapter(p, key);
    if (!adapter.ok()) return FieldError(field, Std(adapter.status().message()));
    auto entry = std::make_unique<ProviderEntry>();
    entry->name = p.name();
    entry->kind = p.kind();
    entry->features = FeaturesOf(p);
    entry->adapter = *std::move(adapter);
    entry->host = HostOfUrl(p.base_url());
    if (!p.credential().empty()) {
      entry->credential = absl::StrCat(p.credential(), "@", p.credential_version());
    }
    providers[p.name()] = entry.get();
    config->providers_.push_back(std::move(entry));
  }

  absl::flat_hash_map<std::pair<std::string, std::string>, PriceRates> prices;
  for (int i = 0; i < snapshot.prices_size(); ++i) {
    const auto& price = snapshot.prices(i);
    const std::string field = absl::StrCat("prices[", i, "]");
    const PriceRates rates = PriceRates::FromProto(price);
    if (rates.input < 0 || rates.output < 0 || rates.cached_input < 0 || rates.cache_write < 0) {
      return FieldError(field, "prices must not be negative");
    }
    prices[{price.provider(), price.model()}] = rates;
  }

  // Fills `route.targets` and `route.tiers` from one chain of targets.
  auto build_targets = [&providers, &prices](
                           const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                           const std::string& field, RouteEntry& route) -> absl::Status {
    if (targets.empty()) return FieldError(field, "needs at least one target");
    // Tiers: all targets set one, or none does (then each target is its own tier, in order).
    const bool with_tier = targets[0].has_tier();
    std::vector<int32_t> tiers;
    for (int j = 0; j < targets.size(); ++j) tiers.push_back(with_tier ? targets[j].tier() : j);
    std::vector<int32_t> distinct = tiers;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    route.tiers = static_cast<int>(distinct.size());
    route.targets.clear();
    for (int j = 0; j < targets.size(); ++j) {
      const auto& target = targets[j];
      const std::string tfield = absl::StrCat(field, "[", j, "]");
      auto it = providers.find(target.provider());
      if (it == providers.end()) {
        return FieldError(tfield + ".provider",
                          absl::StrCat("unknown provider \"", target.provider(), "\""));
      }
      if (target.model().empty()) return FieldError(tfield + ".model", "must be set");
      TargetEntry entry;
      entry.provider = it->second;
      entry.model = target.model();
      entry.fallback_position = static_cast<int>(
          std::lower_bound(distinct.begin(), distinct.end(), tiers[static_cast<size_t>(j)]) -
          distinct.begin());
      entry.weight = target.weight() == 0 ? 1 : target.weight();
      entry.features = it->second->features;
      const config::v1::TargetFeatures& f = target.features();
      if (f.has_tools()) entry.features.tools = f.tools();
      if (f.has_images()) entry.features.images = f.images();
      if (f.has_json_object()) entry.features.json_object = f.json_object();
      if (f.has_json_schema()) entry.features.json_schema = f.json_schema();
      auto price = prices.find(std::make_pair(target.provider(), target.model()));
      if (price != prices.end()) entry.price = price->second;
      route.targets.push_back(std::move(entry));
    }
    return absl::OkStatus();
  };
  // The tier chains and variants, built once their routes' limits are attached.
  struct PendingChain {
    std::string capability;
    std::string tier;
    std::string variant;
    uint32_t bucket_begin = 0;
    uint32_t bucket_end = 0;
    std::vector<std::string> callers;
    RouteEntry route;  // targets and tiers only
  };
  std::vector<PendingChain> pending;
  // The latency classes a route gives settings, built once its chains are.
  struct PendingClass {
    std::string capability;
    LatencyClass latency_class = LatencyClass::kInteractive;
    std::optional<TransferOptions> timeouts;
    bool own_chain = false;
    RouteEntry route;  // targets and tiers only, when own_chain
  };
  std::vector<PendingClass> pending_classes;
  for (int i = 0; i < snapshot.routes_size(); ++i) {
    const auto& r = snapshot.routes(i);
    const std::string field = absl::StrCat("routes[", i, "]");
    if (!ValidName(r.capability())) {
      return FieldError(field + ".capability", "must be 1-128 characters of [A-Za-z0-9._-]");
    }
    if (config->routes_.contains(r.capability())) {
      return FieldError(field + ".capability",
                        absl::StrCat("duplicate route for capability \"", r.capability(), "\""));
    }
    if (r.targets_size() == 0) return FieldError(field + ".targets", "needs at least one target");
    if (r.default_max_tokens() < 0)
      return FieldError(field + ".default_max_tokens", "must be >= 0");
    // Timeouts, retry, breaker, cache, degradation, tiers and weights: the same check the control
    // plane's admin API makes (common/route_settings.h).
    const std::vector<FieldViolation> violations = ValidateRouteSettings(r, field);
    if (!violations.empty()) return FieldError(violations[0].field, violations[0].description);
    RouteEntry route;
    route.capability = r.capability();
    route.allow_unauthenticated = r.allow_unauthenticated();
    route.classification = r.task() == config::v1::ROUTE_TASK_CLASSIFICATION;
    route.default_max_tokens =
        r.default_max_tokens() > 0 ? r.default_max_tokens() : kDefaultMaxTokens;
    BuildResilience(r, &route);
    route.content_policy = r.content_policy() == config::v1::CONTENT_POLICY_UNSPECIFIED
                               ? config::v1::CONTENT_POLICY_NONE
                               : r.content_policy();
    if (r.redaction_patterns_size() == 0) {
      route.redactor = Redactor::Default();
    } else {
      absl::StatusOr<std::shared_ptr<const Redactor>> redactor =
          Redactor::Create({r.redaction_patterns().begin(), r.redaction_patterns().end()});
      if (!redactor.ok())
        return FieldError(field + ".redaction_patterns", std::string(redactor.status().message()));
      route.redactor = *std::move(redactor);
    }
    route.least_latency = r.target_selection() == config::v1::TARGET_SELECTION_LEAST_LATENCY;
    if (absl::Status st = build_targets(r.targets(), field + ".targets", route); !st.ok()) {
      return st;
    }
    for (int c = 0; c < r.tier_chains_size(); ++c) {
      PendingChain chain;
      chain.capability = r.capability();
      chain.tier = r.tier_chains(c).tier();
      if (absl::Status st =
              build_targets(r.tier_chains(c).targets(),
                            absl::StrCat(field, ".tier_chains[", c, "].targets"), chain.route);
          !st.ok()) {
        return st;
      }
      pending.push_back(std::move(chain));
    }
    uint32_t bucket = 0;
    for (int v = 0; v < r.variants_size(); ++v) {
      const auto& variant = r.variants(v);
      PendingChain chain;
      chain.capability = r.capability();
      chain.variant = variant.name();
      chain.bucket_begin = bucket;
      bucket += variant.percent() * (kVariantBuckets / 100);
      chain.bucket_end = bucket;
      chain.callers.assign(variant.callers().begin(), variant.callers().end());
      if (absl::Status st = build_targets(
              variant.targets(), absl::StrCat(field, ".variants[", v, "].targets"), chain.route);
          !st.ok()) {
        return st;
      }
      pending.push_back(std::move(chain));
    }
    const auto add_class = [&](LatencyClass cls, bool has,
                               const config::v1::LatencyClassRoute& settings,
                               const std::string& cfield) -> absl::Status {
      if (!has) return absl::OkStatus();
      PendingClass pc;
      pc.capability = r.capability();
      pc.latency_class = cls;
      if (settings.has_timeouts()) pc.timeouts = BuildTimeouts(settings.timeouts());
      if (!settings.targets().empty()) {
        pc.own_chain = true;
        if (absl::Status st = build_targets(settings.targets(), cfield + ".targets", pc.route);
            !st.ok()) {
          return st;
        }
      }
      pending_classes.push_back(std::move(pc));
      return absl::OkStatus();
    };
    const auto& classes = r.latency_classes();
    if (absl::Status st = add_class(LatencyClass::kInteractive, classes.has_interactive(),
                                    classes.interactive(), field + ".latency_classes.interactive");
        !st.ok()) {
      return st;
    }
    if (absl::Status st = add_class(LatencyClass::kBatch, classes.has_batch(), classes.batch(),
                                    field + ".latency_classes.batch");
        !st.ok()) {
      return st;
    }
    config->routes_.emplace(r.capability(), std::move(route));
  }

  for (int i = 0; i < snapshot.callers_size(); ++i) {
    const auto& c = snapshot.callers(i);
    const std::string field = absl::StrCat("callers[", i, "]");
    if (!ValidName(c.name()))
      return FieldError(field + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    auto caller = std::make_unique<CallerEntry>();
    caller->name = c.name();
    caller->tier = c.tier();
    for (const std::string& cap : c.allowed_capabilities()) {
      if (cap == "*") caller->all_capabilities = true;
      caller->capabilities.insert(cap);
    }
    for (int j = 0; j < c.key_sha256_size(); ++j) {
      const std::string& hex = c.key_sha256(j);
      if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
            return absl::ascii_isdigit(ch) || (ch >= 'a' && ch <= 'f');
          })) {
        return FieldError(absl::StrCat(field, ".key_sha256[", j, "]"),
                          "must be 64 lowercase hex characters");
      }
      config->keys_by_digest_[absl::HexStringToBytes(hex)].caller = caller.get();
    }
    for (int j = 0; j < c.keys_size(); ++j) {
      const config::v1::CallerKey& k = c.keys(j);
      const std::string kfield = absl::StrCat(field, ".keys[", j, "]");
      const std::string& hex = k.key_sha256();
      if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
            return absl::ascii_isdigit(ch) || (ch >= 'a' && ch <= 'f');
          })) {
        return FieldError(kfield + ".key_sha256", "must be 64 lowercase hex characters");
      }
      if (k.expire_unix_seconds() < 0) {
        return FieldError(kfield + ".expire_unix_seconds", "must not be negative");
      }
      CallerKeyEntry& entry = config->keys_by_digest_[absl::HexStringToBytes(hex)];
      if (entry.caller != nullptr && entry.caller != caller.get()) {
        return FieldError(kfield + ".key_sha256",
                          absl::StrCat("is also a key of caller \"", entry.caller->name, "\""));
      }
      entry.caller = caller.get();
      entry.key_id = k.key_id();
      entry.expire_time = k.expire_unix_seconds() == 0
                              ? absl::InfiniteFuture()
                              : absl::FromUnixSeconds(k.expire_unix_seconds());
    }
    for (int j = 0; j < c.cert_sans_size(); ++j) {
      const std::string san_field = absl::StrCat(field, ".cert_sans[", j, "]");
      if (!IsValidCertSan(c.cert_sans(j))) return FieldError(san_field, kCertSanForm);
      auto [it, inserted] = config->callers_by_san_.emplace(c.cert_sans(j), caller.get());
      if (!inserted && it->second != caller.get()) {
        return FieldError(san_field,
                          absl::StrCat("also identifies caller \"", it->second->name, "\""));
      }
    }
    config->callers_.push_back(std::move(caller));
  }
  if (absl::Status s = BuildLimits(snapshot, *config); !s.ok()) return s;
  // Valid: resolve the shared state now, so requests never look it up by name.
  if (key_uses != nullptr) {
    for (auto& [digest, entry] : config->keys_by_digest_) {
      if (!entry.key_id.empty()) entry.last_used = &key_uses->SlotFor(entry.key_id);
    }
  }
  for (auto& [capability, route] : config->routes_) {
    route.response_cache = &resilience.Cache(capability, route.cache.max_bytes);
    for (TargetEntry& t : route.targets) {
      t.upstream = &resilience.Upstream(t.provider->name, t.model, t.provider->credential);
    }
  }
  // Each chain: a copy of its route (limits, cache, settings) with its own targets.
  for (PendingChain& chain : pending) {
    RouteEntry& base = config->routes_.at(chain.capability);
    auto route = std::make_unique<RouteEntry>(base);
    route->tier_chains.clear();
    route->variants.clear();
    route->targets = std::move(chain.route.targets);
    route->tiers = chain.route.tiers;
    route->tier_chain = chain.tier;
    route->variant = chain.variant;
    for (TargetEntry& t : route->targets) {
      t.upstream = &resilience.Upstream(t.provider->name, t.model, t.provider->credential);
    }
    if (!chain.tier.empty()) {
      base.tier_chains.emplace_back(chain.tier, route.get());
    } else {
      base.variants.push_back(RouteEntry::VariantChain{route.get(), chain.bucket_begin,
                                                       chain.bucket_end, std::move(chain.callers)});
    }
    config->chain_routes_.push_back(std::move(route));
  }
  // Each latency class with settings: a copy of its route with the class's timeouts, serving its
  // own chain, or copies of the route's chains with the class's timeouts.
  for (PendingClass& pc : pending_classes) {
    RouteEntry& base = config->routes_.at(pc.capability);
    const auto class_copy = [&pc, &config](const RouteEntry& from) {
      auto route = std::make_unique<RouteEntry>(from);
      route->latency_classes = {};
      if (pc.timeouts.has_value()) route->timeouts = *pc.timeouts;
      RouteEntry* out = route.get();
      config->chain_routes_.push_back(std::move(route));
      return out;
    };
    RouteEntry* view = class_copy(base);
    if (pc.own_chain) {
      view->tier_chains.clear();
      view->variants.clear();
      view->targets = std::move(pc.route.targets);
      view->tiers = pc.route.tiers;
      for (TargetEntry& t : view->targets) {
        t.upstream = &resilience.Upstream(t.provider->name, t.model, t.provider->credential);
      }
    } else {
      for (auto& [tier, chain] : view->tier_chains) chain = class_copy(*chain);
      for (RouteEntry::VariantChain& v : view->variants) v.route = class_copy(*v.route);
    }
    base.latency_classes[static_cast<size_t>(pc.latency_class)] = view;
  }
  return std::shared_ptr<const RuntimeConfig>(std::move(config));
}

absl::Status RuntimeConfig::BuildLimits(const Snapshot& snapshot, RuntimeConfig& config) {
  for (int i = 0; i < snapshot.routes_size(); ++i) {
    const auto& r = snapshot.routes(i);
    const std::string field = absl::StrCat("routes[", i, "]");
    RouteEntry& route = config.routes_.at(r.capability());
    if (r.on_rate_limited() == config::v1::OVER_LIMIT_ACTION_DEGRADE) {
      return FieldError(field + ".on_rate_limited", "degrade applies to budgets only");
    }
    route.admission.on_rate_limited = r.on_rate_limited();
    const auto& queue = r.admission_queue();
    if (queue.max_wait_ms() < 0 || queue.max_wait_ms() > 60000) {
      return FieldError(field + ".admission_queue.max_wait_ms", "must be 0 to 60,000");
    }
    if (queue.max_length() < 0 || queue.max_length() > 10000) {
      return FieldError(field + ".admission_queue.max_length", "must be 0 to 10,000");
    }
    if (queue.max_wait_ms() > 0)
      route.admission.queue_max_wait = absl::Milliseconds(queue.max_wait_ms());
    if (queue.max_length() > 0) route.admission.queue_max_length = queue.max_length();
  }
  auto attach = [&config](const LimitRule& rule, const std::string& capability) {
    for (auto& [name, route] : config.routes_) {
      if (capability.empty() || capability == name) route.limits.push_back(&rule);
    }
  };
  for (int i = 0; i < snapshot.rate_limits_size(); ++i) {
    const auto& l = snapshot.rate_limits(i);
    const std::string field = absl::StrCat("rate_limits[", i, "]");
    if (!ValidName(l.name())) {
      return FieldError(field + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    }
    if (l.requests_per_minute() < 0 || l.tokens_per_minute() < 0) {
      return FieldError(field, "limits must not be negative");
    }
    if (l.requests_per_minute() == 0 && l.tokens_per_minute() == 0) {
      return FieldError(field, "needs requests_per_minute or tokens_per_minute");
    }
    if (!config::v1::RateLimitKey_IsValid(l.key()))
      return FieldError(field + ".key", "unknown key");
    auto rule = std::make_unique<LimitRule>();
    rule->kind = LimitRule::Kind::kRateLimit;
    rule->name = l.name();
    rule->caller = l.caller();
    rule->tier = l.tier();
    rule->key = l.key() == config::v1::RATE_LIMIT_KEY_UNSPECIFIED
                    ? config::v1::RATE_LIMIT_KEY_SHARED
                    : l.key();
    rule->requests_per_minute = l.requests_per_minute();
    rule->tokens_per_minute = l.tokens_per_minute();
    rule->fail_open = l.fail_open();
    attach(*rule, l.capability());
    config.limits_.push_back(std::move(rule));
  }
  for (int i = 0; i < snapshot.budgets_size(); ++i) {
    const auto& b = snapshot.budgets(i);
    const std::string field = absl::StrCat("budgets[", i, "]");
    if (!ValidName(b.name())) {
      return FieldError(field + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    }
    if (b.capability().empty() || !config.routes_.contains(b.capability())) {
      // A budget for a capability this snapshot does not route limits nothing here.
      continue;
    }
    if (b.limit_usd_micros() <= 0) return FieldError(field + ".limit_usd_micros", "must be > 0");
    auto rule = std::make_unique<LimitRule>();
    rule->kind = LimitRule::Kind::kBudget;
    rule->name = b.name();
    rule->caller = b.caller();
    rule->tier = b.tier();
    rule->limit_usd_micros = b.limit_usd_micros();
    rule->window = b.window();
    rule->on_exhausted = b.on_exhausted();
    rule->fail_open = b.fail_open();
    if (b.on_exhausted() == config::v1::OVER_LIMIT_ACTION_DEGRADE) {
      auto to = config.routes_.find(b.degrade_to());
      if (to == config.routes_.end() || b.degrade_to() == b.capability()) {
        return FieldError(field + ".degrade_to", "must name another routed capability");
      }
      rule->degrade_to = &to->second;
    }
    attach(*rule, b.capability());
    config.limits_.push_back(std::move(rule));
  }
  // Rate limits before budgets on every route: a request refused for its rate never holds money.
  for (auto& [name, route] : config.routes_) {
    std::stable_sort(route.limits.begin(), route.limits.end(),
                     [](const LimitRule* a, const LimitRule* b) { return a->kind < b->kind; });
  }
  return absl::OkStatus();
}

const LimitRule* RuntimeConfig::FindLimit(LimitRule::Kind kind, std::string_view name) const {
  for (const auto& rule : limits_) {
    if (rule->kind == kind && rule->name == name) return rule.get();
  }
  return nullptr;
}

const RouteEntry* RuntimeConfig::FindRoute(std::string_view capability) const {
  auto it = routes_.find(std::string(capability));
  return it == routes_.end() ? nullptr : &it->second;
}

std::vector<std::string> RuntimeConfig::Capabilities() const {
  std::vector<std::string> out;
  out.reserve(routes_.size());
  for (const auto& [capability, route] : routes_) out.push_back(capability);
  std::sort(out.begin(), out.end());
  return out;
}

const CallerKeyEntry* RuntimeConfig::FindKey(std::string_view key) const {
  const std::string digest = Sha256(key);  // std::string_view in, raw bytes out
  auto it = keys_by_digest_.find(digest);
  if (it == keys_by_digest_.end()) return nullptr;
  // The map lookup is on a digest of the key; confirm the match in constant time as well.
  if (CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) != 0) return nullptr;
  return &it->second;
}

const CallerEntry* RuntimeConfig::FindCallerByCertSan(std::string_view san) const {
  auto it = callers_by_san_.find(std::string(san));
  return it == callers_by_san_.end() ? nullptr : it->second;
}

Cost RuntimeConfig::CostOf(const TargetEntry& target, const TokenCounts& tokens) {
  if (!target.price.has_value()) return Cost();
  return ComputeCost(*target.price, tokens);
}

int64_t RuntimeConfig::CostMicros(const TargetEntry& target, int64_t input_tokens,
                                  int64_t output_tokens) {
  return CostOf(target, TokenCounts{.input = input_tokens, .output = output_tokens}).total;
}

absl::StatusOr<Snapshot> ParseSnapshotJson(std::string_view json) {
  Snapshot snapshot;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &snapshot, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", status.message().as_string()));
  }
  return snapshot;
}

absl::StatusOr<Snapshot> LoadSnapshotFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<Snapshot> snapshot = ParseSnapshotJson(buffer.str());
  if (!snapshot.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", snapshot.status().message()));
  }
  return snapshot;
}

}  // namespace turnpike
