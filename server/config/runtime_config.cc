#include "server/config/runtime_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/route_settings.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/route_selection.h"
#include "server/config/runtime_config_internal.h"

namespace turnpike {
namespace {

using config::v1::Snapshot;
using runtime_config_internal::BuildResilience;
using runtime_config_internal::BuildTimeouts;
using runtime_config_internal::FieldError;
using runtime_config_internal::ValidName;

constexpr int32_t kDefaultMaxTokens = 1024;

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
  runtime_config_internal::ProviderIndex providers;
  if (absl::Status s =
          runtime_config_internal::BuildProviders(snapshot, env, config->providers_, providers);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<runtime_config_internal::PriceTable> prices =
      runtime_config_internal::BuildPrices(snapshot);
  if (!prices.ok()) return prices.status();

  // Fills `route.targets` and `route.tiers` from one chain of targets.
  auto build_targets = [&providers, &prices](
                           const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                           const std::string& field, RouteEntry& route) -> absl::Status {
    return runtime_config_internal::BuildTargets(targets, field, providers, *prices, route);
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

  if (absl::Status s = BuildCallers(snapshot, *config); !s.ok()) return s;
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