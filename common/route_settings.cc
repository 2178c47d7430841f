#include "common/route_settings.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/redactor.h"

namespace turnpike {
namespace {

namespace l = route_limits;

class Checker {
 public:
  explicit Checker(std::vector<FieldViolation>& out) : out_(out) {}

  void Add(std::string field, std::string description) {
    out_.push_back({std::move(field), std::move(description)});
  }
  // An optional setting (see SettingLimits); returns whether it is valid.
  bool Bounded(const std::string& field, int64_t value, const SettingLimits& limits) {
    if (value == 0 || (value >= limits.min && value <= limits.max)) return true;
    Add(field, absl::StrCat("must be between ", limits.min, " and ", limits.max,
                            " (0 for the default, ", limits.default_value, ")"));
    return false;
  }

 private:
  std::vector<FieldViolation>& out_;
};

void CheckTimeouts(const config::v1::Timeouts& t, const std::string& path, Checker& c) {
  c.Bounded(path + ".connect_ms", t.connect_ms(), l::kConnectMs);
  c.Bounded(path + ".first_token_ms", t.first_token_ms(), l::kFirstTokenMs);
  c.Bounded(path + ".idle_ms", t.idle_ms(), l::kIdleMs);
  c.Bounded(path + ".total_ms", t.total_ms(), l::kTotalMs);
}

void CheckRetry(const config::v1::RetryPolicy& r, const std::string& path, Checker& c) {
  c.Bounded(path + ".max_attempts", r.max_attempts(), l::kMaxAttempts);
  c.Bounded(path + ".max_attempts_per_target", r.max_attempts_per_target(),
            l::kMaxAttemptsPerTarget);
  const bool base_ok = c.Bounded(path + ".base_backoff_ms", r.base_backoff_ms(), l::kBaseBackoffMs);
  const bool max_ok = c.Bounded(path + ".max_backoff_ms", r.max_backoff_ms(), l::kMaxBackoffMs);
  if (base_ok && max_ok &&
      l::kMaxBackoffMs.Or(r.max_backoff_ms()) < l::kBaseBackoffMs.Or(r.base_backoff_ms())) {
    c.Add(path + ".max_backoff_ms", "must not be less than base_backoff_ms");
  }
  c.Bounded(path + ".max_retry_after_ms", r.max_retry_after_ms(), l::kMaxRetryAfterMs);
}

void CheckBreaker(const config::v1::CircuitBreakerPolicy& b, const std::string& path, Checker& c) {
  c.Bounded(path + ".consecutive_failures", b.consecutive_failures(), l::kConsecutiveFailures);
  c.Bounded(path + ".failure_rate_window_ms", b.failure_rate_window_ms(), l::kFailureRateWindowMs);
  c.Bounded(path + ".failure_rate_percent", b.failure_rate_percent(), l::kFailureRatePercent);
  c.Bounded(path + ".minimum_volume", b.minimum_volume(), l::kMinimumVolume);
  const bool base_ok =
      c.Bounded(path + ".base_ejection_ms", b.base_ejection_ms(), l::kBaseEjectionMs);
  const bool max_ok = c.Bounded(path + ".max_ejection_ms", b.max_ejection_ms(), l::kMaxEjectionMs);
  if (base_ok && max_ok &&
      l::kMaxEjectionMs.Or(b.max_ejection_ms()) < l::kBaseEjectionMs.Or(b.base_ejection_ms())) {
    c.Add(path + ".max_ejection_ms", "must not be less than base_ejection_ms");
  }
  c.Bounded(path + ".half_open_probes", b.half_open_probes(), l::kHalfOpenProbes);
  c.Bounded(path + ".probe_timeout_ms", b.probe_timeout_ms(), l::kProbeTimeoutMs);
}

void CheckCache(const config::v1::CachePolicy& cache, const std::string& path, Checker& c) {
  if (!config::v1::CacheMode_IsValid(cache.mode())) c.Add(path + ".mode", "unknown cache mode");
  c.Bounded(path + ".ttl_ms", cache.ttl_ms(), l::kCacheTtlMs);
  c.Bounded(path + ".max_stale_ms", cache.max_stale_ms(), l::kCacheMaxStaleMs);
  c.Bounded(path + ".max_bytes", cache.max_bytes(), l::kCacheMaxBytes);
}

void CheckDegradation(const config::v1::DegradationPolicy& d, const std::string& path, Checker& c) {
  switch (d.mode()) {
    case config::v1::DEGRADATION_MODE_UNSPECIFIED:
    case config::v1::DEGRADATION_MODE_UNAVAILABLE:
      if (!d.static_response().empty()) {
        c.Add(path + ".static_response", "is set but mode is not DEGRADATION_MODE_STATIC_RESPONSE");
      }
      break;
    case config::v1::DEGRADATION_MODE_STATIC_RESPONSE:
      if (d.static_response().empty() || d.static_response().size() > l::kMaxStaticResponseBytes) {
        c.Add(path + ".static_response",
              "must be 1 to 65,536 bytes for DEGRADATION_MODE_STATIC_RESPONSE");
      }
      break;
    default:
      c.Add(path + ".mode", "unknown degradation mode");
  }
}

void CheckTargets(const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                  const std::string& path, Checker& c) {
  int with_tier = 0;
  for (const auto& target : targets) with_tier += target.has_tier() ? 1 : 0;
  if (with_tier != 0 && with_tier != targets.size()) {
    c.Add(path, "either every target sets a tier or none does");
  }
  for (int j = 0; j < targets.size(); ++j) {
    const std::string tp = absl::StrCat(path, "[", j, "]");
    if (targets[j].tier() < 0) c.Add(tp + ".tier", "must be >= 0");
    if (targets[j].weight() > l::kMaxWeight) {
      c.Add(tp + ".weight", "must be at most 1,000 (0 means 1)");
    }
  }
}

// A chain of a routing rule (tier chain or variant): non-empty, bounded, no target twice, and
// the tier and weight rules of Route.targets. Providers are checked by each service.
void CheckChain(const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                const std::string& path, Checker& c) {
  if (targets.empty()) {
    c.Add(path, "needs at least one target");
    return;
  }
  if (targets.size() > static_cast<int>(l::kMaxChainTargets)) {
    c.Add(path, absl::StrCat("has more than ", l::kMaxChainTargets, " targets"));
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (int j = 0; j < targets.size(); ++j) {
    const std::string tp = absl::StrCat(path, "[", j, "]");
    if (targets[j].provider().empty()) c.Add(tp + ".provider", "must be set");
    if (targets[j].model().empty()) c.Add(tp + ".model", "must be set");
    if (!seen.emplace(targets[j].provider(), targets[j].model()).second) {
      c.Add(tp, "repeats an earlier target");
    }
  }
  CheckTargets(targets, path, c);
}

bool ValidRuleName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char ch : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' &&
        ch != '-') {
      return false;
    }
  }
  return true;
}

// Tier chains, variants and the target selection (docs/routing.md).
void CheckRoutingRules(const config::v1::Route& r, const std::string& p, Checker& c) {
  if (r.tier_chains_size() > static_cast<int>(l::kMaxTierChains)) {
    c.Add(p + ".tier_chains", absl::StrCat("at most ", l::kMaxTierChains, " tier chains"));
  }
  std::set<std::string> tiers;
  for (int i = 0; i < r.tier_chains_size(); ++i) {
    const auto& chain = r.tier_chains(i);
    const std::string cp = absl::StrCat(p, ".tier_chains[", i, "]");
    if (!ValidRuleName(chain.tier())) {
      c.Add(cp + ".tier", "must be 1-128 characters of [A-Za-z0-9._-]");
    } else if (!tiers.insert(chain.tier()).second) {
      c.Add(cp + ".tier", absl::StrCat("repeats tier \"", chain.tier(), "\""));
    }
    CheckChain(chain.targets(), cp + ".targets", c);
  }
  if (r.variants_size() > static_cast<int>(l::kMaxVariants)) {
    c.Add(p + ".variants", absl::StrCat("at most ", l::kMaxVariants, " variants"));
  }
  std::set<std::string> names;
  std::set<std::string> callers;
  uint64_t percent = 0;
  for (int i = 0; i < r.variants_size(); ++i) {
    const auto& variant = r.variants(i);
    const std::string vp = absl::StrCat(p, ".variants[", i, "]");
    if (!ValidRuleName(variant.name())) {
      c.Add(vp + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    } else if (!names.insert(variant.name()).second) {
      c.Add(vp + ".name", absl::StrCat("repeats variant \"", variant.name(), "\""));
    }
    CheckChain(variant.targets(), vp + ".targets", c);
    if (variant.percent() > 100) c.Add(vp + ".percent", "must be between 0 and 100");
    percent += variant.percent();
    for (int j = 0; j < variant.callers_size(); ++j) {
      const std::string kp = absl::StrCat(vp, ".callers[", j, "]");
      if (!ValidRuleName(variant.callers(j))) {
        c.Add(kp, "must be 1-128 characters of [A-Za-z0-9._-]");
      } else if (!callers.insert(variant.callers(j)).second) {
        c.Add(kp, absl::StrCat("caller \"", variant.callers(j), "\" is already in a variant"));
      }
    }
    if (variant.percent() == 0 && variant.callers_size() == 0) {
      c.Add(vp, "receives no traffic: set percent or callers");
    }
  }
  if (percent > 100) {
    c.Add(p + ".variants", absl::StrCat("percentages add up to ", percent, "; at most 100"));
  }
  // Latency classes: each class's timeouts follow the rules of Route.timeouts; its chain, when
  // it has one, those of a tier chain's.
  const auto check_class = [&](bool has, const config::v1::LatencyClassRoute& lc,
                               const std::string& cp) {
    if (!has) return;
    CheckTimeouts(lc.timeouts(), cp + ".timeouts", c);
    if (!lc.targets().empty()) CheckChain(lc.targets(), cp + ".targets", c);
  };
  const auto& classes = r.latency_classes();
  check_class(classes.has_interactive(), classes.interactive(), p + ".latency_classes.interactive");
  check_class(classes.has_batch(), classes.batch(), p + ".latency_classes.batch");
  if (!config::v1::TargetSelection_IsValid(r.target_selection())) {
    c.Add(p + ".target_selection",
          "must be TARGET_SELECTION_WEIGHTED or TARGET_SELECTION_LEAST_LATENCY");
  }
}

// The content policy (docs/request-log.md) and the route's custom redaction patterns.
void CheckContent(const config::v1::Route& route, const std::string& p, Checker& c) {
  if (!config::v1::ContentPolicy_IsValid(route.content_policy())) {
    c.Add(p + ".content_policy",
          "must be CONTENT_POLICY_NONE, CONTENT_POLICY_HASH, CONTENT_POLICY_REDACTED or "
          "CONTENT_POLICY_FULL");
  }
  if (route.redaction_patterns_size() > static_cast<int>(Redactor::kMaxCustomPatterns)) {
    c.Add(p + ".redaction_patterns",
          absl::StrCat("at most ", Redactor::kMaxCustomPatterns, " patterns"));
    return;
  }
  for (int i = 0; i < route.redaction_patterns_size(); ++i) {
    if (absl::Status s = Redactor::CheckCustomPattern(route.redaction_patterns(i)); !s.ok()) {
      c.Add(absl::StrCat(p, ".redaction_patterns[", i, "]"), std::string(s.message()));
    }
  }
}

void CheckTask(const config::v1::Route& route, const std::string& p, Checker& c) {
  if (!config::v1::RouteTask_IsValid(route.task())) {
    c.Add(p + ".task", "must be ROUTE_TASK_UNSPECIFIED or ROUTE_TASK_CLASSIFICATION");
    return;
  }
  // A static degradation answer is free text, never one of a request's labels
  // (docs/classification.md).
  if (route.task() == config::v1::ROUTE_TASK_CLASSIFICATION &&
      route.degradation().mode() == config::v1::DEGRADATION_MODE_STATIC_RESPONSE) {
    c.Add(p + ".degradation.mode",
          "a classification route cannot answer with a static response (it is not a label)");
  }
}

}  // namespace

std::vector<FieldViolation> ValidateRouteSettings(const config::v1::Route& route,
                                                  std::string_view path) {
  std::vector<FieldViolation> out;
  Checker c(out);
  const std::string p(path);
  CheckTargets(route.targets(), p + ".targets", c);
  CheckTimeouts(route.timeouts(), p + ".timeouts", c);
  CheckRetry(route.retry(), p + ".retry", c);
  CheckBreaker(route.circuit_breaker(), p + ".circuit_breaker", c);
  CheckCache(route.cache(), p + ".cache", c);
  CheckDegradation(route.degradation(), p + ".degradation", c);
  CheckContent(route, p, c);
  CheckRoutingRules(route, p, c);
  CheckTask(route, p, c);
  return out;
}

}  // namespace turnpike
