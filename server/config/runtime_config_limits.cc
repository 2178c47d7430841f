// The rate limits and budgets of a RuntimeConfig (docs/limits.md): checked when a snapshot is
// built, with each route's admission settings, and attached to the routes they apply to (rate
// limits before budgets). Immutable once built; lookups are thread-safe.
#include <algorithm>

#include "server/config/runtime_config_internal.h"

namespace turnpike {

using runtime_config_internal::FieldError;
using runtime_config_internal::ValidName;

absl::Status RuntimeConfig::BuildLimits(const config::v1::Snapshot& snapshot,
                                        RuntimeConfig& config) {
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

}  // namespace turnpike
