#include "controlplane/validation.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cert_san.h"
#include "common/route_settings.h"

namespace turnpike::controlplane {
namespace {

using config::v1::Provider;

constexpr int kMaxTargets = 16;
constexpr int kMaxCapabilitiesPerCaller = 1000;
constexpr int64_t kMaxPriceMicros = 1'000'000'000'000LL;  // $1M per 1M tokens
constexpr size_t kMaxSecretBytes = 8192;
constexpr int64_t kMaxRequestsPerMinute = 1'000'000'000;
constexpr int64_t kMaxTokensPerMinute = 1'000'000'000'000LL;
constexpr int64_t kMaxBudgetMicros = 1'000'000'000'000'000LL;  // $1 billion
constexpr int32_t kMaxAdmissionWaitMs = 60'000;
constexpr int32_t kMaxAdmissionQueueLength = 10'000;

std::string At(const std::string& path, int i) { return absl::StrCat(path, "[", i, "]"); }
std::string F(const std::string& path, const char* field) { return absl::StrCat(path, ".", field); }

bool IsPrintableNoSpace(std::string_view s) {
  for (unsigned char ch : s) {
    if (ch <= 0x20 || ch >= 0x7f) return false;
  }
  return true;
}

bool IsLowerHex(std::string_view s) {
  for (char ch : s) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

void ValidateOptionalName(std::string_view name, const std::string& path, Violations& v) {
  if (!name.empty()) ValidateName(name, path, v);
}

void ValidateModel(std::string_view model, const std::string& path, Violations& v) {
  if (model.empty()) {
    v.Add(path, "is required");
  } else if (model.size() > 256 || !IsPrintableNoSpace(model)) {
    v.Add(path, "must be 1-256 printable ASCII characters without spaces");
  }
}

void ValidateBaseUrl(const std::string& url, const std::string& path, Violations& v) {
  std::string_view rest;
  if (absl::StartsWith(url, "https://")) {
    rest = std::string_view(url).substr(8);
  } else if (absl::StartsWith(url, "http://")) {
    rest = std::string_view(url).substr(7);
  } else {
    v.Add(path, "must be an http:// or https:// URL");
    return;
  }
  if (url.size() > 2048 || !IsPrintableNoSpace(url)) {
    v.Add(path, "must be at most 2048 printable characters without spaces");
  } else if (rest.empty() || rest[0] == '/') {
    v.Add(path, "must name a host");
  } else if (rest.substr(0, rest.find('/')).find('@') != std::string_view::npos) {
    v.Add(path, "must not carry user information; put secrets in a credential");
  } else if (rest.find_first_of("?#") != std::string_view::npos) {
    v.Add(path, "must not have a query or fragment");
  }
}

bool IsTokenChar(char ch) {
  return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
}

void ValidateHeaders(const Provider& p, const std::string& path, Violations& v) {
  static const std::set<std::string> kSecretHeaders = {
      "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"};
  for (const auto& [name, value] : p.headers()) {
    std::string hp = absl::StrCat(path, "[\"", name, "\"]");
    bool token = !name.empty() && name.size() <= 128;
    for (char ch : name) token = token && IsTokenChar(ch);
    if (!token) {
      v.Add(path, "header names must be 1-128 characters of [A-Za-z0-9_-]");
      continue;
    }
    if (kSecretHeaders.count(absl::AsciiStrToLower(name)) > 0) {
      v.Add(hp, "carries a secret; put it in a credential and set spec.credential");
    }
    if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos || value.size() > 4096) {
      v.Add(hp, "value must be at most 4096 characters without CR, LF or NUL");
    }
  }
}

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char ch : name) {
    bool ok =
        absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

void ValidateName(std::string_view name, const std::string& path, Violations& v) {
  if (name.empty()) {
    v.Add(path, "is required");
  } else if (!IsValidName(name)) {
    v.Add(path,
          "must be 1-63 characters of letters, digits, '-', '_' or '.', starting with a letter "
          "or digit");
  }
}

void ValidateProvider(const Provider& p, const std::string& path, SpecMode mode, Violations& v) {
  ValidateName(p.name(), F(path, "name"), v);
  if (p.kind() == config::v1::PROVIDER_KIND_UNSPECIFIED ||
      !config::v1::ProviderKind_IsValid(p.kind())) {
    v.Add(F(path, "kind"),
          "must be one of PROVIDER_KIND_OPENAI, PROVIDER_KIND_AZURE_OPENAI, "
          "PROVIDER_KIND_ANTHROPIC, PROVIDER_KIND_GEMINI, "
          "PROVIDER_KIND_OPENAI_COMPATIBLE");
  }
  ValidateBaseUrl(p.base_url(), F(path, "base_url"), v);
  if (p.kind() == config::v1::PROVIDER_KIND_AZURE_OPENAI && p.api_version().empty()) {
    v.Add(F(path, "api_version"), "is required for PROVIDER_KIND_AZURE_OPENAI");
  }
  if (!p.api_version().empty() &&
      (p.api_version().size() > 64 || !IsPrintableNoSpace(p.api_version()))) {
    v.Add(F(path, "api_version"), "must be at most 64 printable characters without spaces");
  }
  if (!config::v1::CompatFlavor_IsValid(p.compat_flavor())) {
    v.Add(F(path, "compat_flavor"), "is not a known CompatFlavor");
  } else if (p.compat_flavor() != config::v1::COMPAT_FLAVOR_UNSPECIFIED &&
             p.kind() != config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE) {
    v.Add(F(path, "compat_flavor"), "applies only to PROVIDER_KIND_OPENAI_COMPATIBLE");
  }
  ValidateHeaders(p, F(path, "headers"), v);
  ValidateOptionalName(p.credential(), F(path, "credential"), v);
  // Gateways refuse hosted providers without a key; refuse them here, before they are pushed.
  if (p.credential().empty() && p.kind() != config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE &&
      p.kind() != config::v1::PROVIDER_KIND_UNSPECIFIED) {
    v.Add(F(path, "credential"),
          "is required for this provider kind (only PROVIDER_KIND_OPENAI_COMPATIBLE servers may "
          "have no key)");
  }
  if (mode == SpecMode::kAdmin) {
    if (!p.api_key().empty()) {
      v.Add(F(path, "api_key"),
            "must be empty; store the key with CreateCredential and set spec.credential");
    }
    if (!p.api_key_env().empty()) {
      v.Add(F(path, "api_key_env"),
            "must be empty; the control plane takes keys from credentials (spec.credential)");
    }
    if (p.credential_version() != 0) {
      v.Add(F(path, "credential_version"), "is output only; leave it unset");
    }
  } else if (!p.credential().empty() && p.api_key().empty()) {
    v.Add(F(path, "api_key"), "credential has no active secret");
  }
}

std::vector<std::pair<std::string, const config::v1::Target*>> AllRouteTargets(
    const config::v1::Route& r, const std::string& path) {
  std::vector<std::pair<std::string, const config::v1::Target*>> out;
  for (int i = 0; i < r.targets_size(); ++i) {
    out.emplace_back(absl::StrCat(path, ".targets[", i, "]"), &r.targets(i));
  }
  for (int c = 0; c < r.tier_chains_size(); ++c) {
    for (int i = 0; i < r.tier_chains(c).targets_size(); ++i) {
      out.emplace_back(absl::StrCat(path, ".tier_chains[", c, "].targets[", i, "]"),
                       &r.tier_chains(c).targets(i));
    }
  }
  for (int v = 0; v < r.variants_size(); ++v) {
    for (int i = 0; i < r.variants(v).targets_size(); ++i) {
      out.emplace_back(absl::StrCat(path, ".variants[", v, "].targets[", i, "]"),
                       &r.variants(v).targets(i));
    }
  }
  for (int i = 0; i < r.latency_classes().interactive().targets_size(); ++i) {
    out.emplace_back(absl::StrCat(path, ".latency_classes.interactive.targets[", i, "]"),
                     &r.latency_classes().interactive().targets(i));
  }
  for (int i = 0; i < r.latency_classes().batch().targets_size(); ++i) {
    out.emplace_back(absl::StrCat(path, ".latency_classes.batch.targets[", i, "]"),
                     &r.latency_classes().batch().targets(i));
  }
  return out;
}

void ValidateRoute(const config::v1::Route& r, const std::string& path, SpecMode mode,
                   Violations& v) {
  ValidateName(r.capability(), F(path, "capability"), v);
  if (r.targets_size() == 0) {
    v.Add(F(path, "targets"), "needs at least one target");
  } else if (r.targets_size() > kMaxTargets) {
    v.Add(F(path, "targets"), absl::StrCat("has more than ", kMaxTargets, " targets"));
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (int i = 0; i < r.targets_size(); ++i) {
    const auto& t = r.targets(i);
    std::string tp = At(F(path, "targets"), i);
    ValidateName(t.provider(), F(tp, "provider"), v);
    ValidateModel(t.model(), F(tp, "model"), v);
    if (!seen.emplace(t.provider(), t.model()).second) {
      v.Add(tp, "repeats an earlier target");
    }
  }
  if (r.default_max_tokens() < 0 || r.default_max_tokens() > 10'000'000) {
    v.Add(F(path, "default_max_tokens"), "must be between 0 (default) and 10000000");
  }
  // Timeouts, retry, circuit breaker, cache, degradation, tiers and weights: the gateway's own
  // check (common/route_settings.h), so nothing is stored that every gateway would NACK. Not in
  // kSnapshot mode: a route stored before a limit existed must not stop the control plane from
  // starting (gateways NACK it naming the field; the admin fixes it with UpdateRoute).
  if (mode == SpecMode::kAdmin) {
    for (FieldViolation& fv : ValidateRouteSettings(r, path)) {
      v.Add(std::move(fv.field), std::move(fv.description));
    }
    // Admission: what a rate limit's "no" does on this route, and the queue's bounds.
    if (!config::v1::OverLimitAction_IsValid(r.on_rate_limited())) {
      v.Add(F(path, "on_rate_limited"),
            "must be OVER_LIMIT_ACTION_REJECT or OVER_LIMIT_ACTION_QUEUE");
    } else if (r.on_rate_limited() == config::v1::OVER_LIMIT_ACTION_DEGRADE) {
      v.Add(F(path, "on_rate_limited"),
            "cannot be OVER_LIMIT_ACTION_DEGRADE: only a budget degrades (set its degrade_to)");
    }
    const std::string q = F(path, "admission_queue");
    if (r.admission_queue().max_wait_ms() < 0 ||
        r.admission_queue().max_wait_ms() > kMaxAdmissionWaitMs) {
      v.Add(F(q, "max_wait_ms"), "must be between 0 (default 5000) and 60000");
    }
    if (r.admission_queue().max_length() < 0 ||
        r.admission_queue().max_length() > kMaxAdmissionQueueLength) {
      v.Add(F(q, "max_length"), "must be between 0 (default 100) and 10000");
    }
  }
}

void ValidateCaller(const config::v1::Caller& c, const std::string& path, SpecMode mode,
                    Violations& v) {
  ValidateName(c.name(), F(path, "name"), v);
  ValidateOptionalName(c.tier(), F(path, "tier"), v);
  if (c.allowed_capabilities_size() > kMaxCapabilitiesPerCaller) {
    v.Add(F(path, "allowed_capabilities"), "has more than 1000 entries");
  }
  std::set<std::string> seen;
  for (int i = 0; i < c.allowed_capabilities_size(); ++i) {
    const std::string& cap = c.allowed_capabilities(i);
    std::string cp = At(F(path, "allowed_capabilities"), i);
    if (cap != "*") ValidateName(cap, cp, v);
    if (!seen.insert(cap).second) v.Add(cp, "is listed twice");
  }
  if (c.cert_sans_size() > kMaxCertSansPerCaller) {
    v.Add(F(path, "cert_sans"), "has more than 100 entries");
  }
  std::set<std::string> sans;
  for (int i = 0; i < c.cert_sans_size(); ++i) {
    const std::string sp = At(F(path, "cert_sans"), i);
    if (!IsValidCertSan(c.cert_sans(i))) v.Add(sp, kCertSanForm);
    if (!sans.insert(c.cert_sans(i)).second) v.Add(sp, "is listed twice");
  }
  if (mode == SpecMode::kAdmin) {
    if (c.key_sha256_size() > 0) {
      v.Add(F(path, "key_sha256"), "must be empty; issue keys with CreateCallerKey");
    }
    if (c.keys_size() > 0) {
      v.Add(F(path, "keys"), "must be empty; issue keys with CreateCallerKey");
    }
  } else {
    for (int i = 0; i < c.key_sha256_size(); ++i) {
      if (c.key_sha256(i).size() != 64 || !IsLowerHex(c.key_sha256(i))) {
        v.Add(At(F(path, "key_sha256"), i), "must be 64 lowercase hex characters");
      }
    }
    for (int i = 0; i < c.keys_size(); ++i) {
      const config::v1::CallerKey& k = c.keys(i);
      if (k.key_sha256().size() != 64 || !IsLowerHex(k.key_sha256())) {
        v.Add(F(At(F(path, "keys"), i), "key_sha256"), "must be 64 lowercase hex characters");
      }
      if (k.expire_unix_seconds() < 0) {
        v.Add(F(At(F(path, "keys"), i), "expire_unix_seconds"), "must not be negative");
      }
    }
  }
}

void ValidatePrice(const config::v1::Price& p, const std::string& path, Violations& v) {
  ValidateName(p.provider(), F(path, "provider"), v);
  ValidateModel(p.model(), F(path, "model"), v);
  if (p.input_usd_micros_per_mtok() < 0 || p.input_usd_micros_per_mtok() > kMaxPriceMicros) {
    v.Add(F(path, "input_usd_micros_per_mtok"), "must be between 0 and 1000000000000");
  }
  if (p.output_usd_micros_per_mtok() < 0 || p.output_usd_micros_per_mtok() > kMaxPriceMicros) {
    v.Add(F(path, "output_usd_micros_per_mtok"), "must be between 0 and 1000000000000");
  }
  // Absent means the input rate; a rate that is set is held to the same bounds.
  if (p.has_cached_input_usd_micros_per_mtok() &&
      (p.cached_input_usd_micros_per_mtok() < 0 ||
       p.cached_input_usd_micros_per_mtok() > kMaxPriceMicros)) {
    v.Add(F(path, "cached_input_usd_micros_per_mtok"), "must be between 0 and 1000000000000");
  }
  if (p.has_cache_write_usd_micros_per_mtok() &&
      (p.cache_write_usd_micros_per_mtok() < 0 ||
       p.cache_write_usd_micros_per_mtok() > kMaxPriceMicros)) {
    v.Add(F(path, "cache_write_usd_micros_per_mtok"), "must be between 0 and 1000000000000");
  }
}

void ValidateRateLimit(const config::v1::RateLimit& r, const std::string& path, SpecMode mode,
                       Violations& v) {
  ValidateName(r.name(), F(path, "name"), v);
  ValidateOptionalName(r.capability(), F(path, "capability"), v);
  ValidateOptionalName(r.caller(), F(path, "caller"), v);
  ValidateOptionalName(r.tier(), F(path, "tier"), v);
  if (r.requests_per_minute() < 0) v.Add(F(path, "requests_per_minute"), "must not be negative");
  if (r.tokens_per_minute() < 0) v.Add(F(path, "tokens_per_minute"), "must not be negative");
  if (r.requests_per_minute() == 0 && r.tokens_per_minute() == 0) {
    v.Add(F(path, "requests_per_minute"),
          "at least one of requests_per_minute and tokens_per_minute must be positive");
  }
  // Not in kSnapshot mode, like the route settings: a limit stored before these bounds existed
  // must not stop the control plane from starting.
  if (mode != SpecMode::kAdmin) return;
  if (r.requests_per_minute() > kMaxRequestsPerMinute) {
    v.Add(F(path, "requests_per_minute"), "must be at most 1000000000");
  }
  if (r.tokens_per_minute() > kMaxTokensPerMinute) {
    v.Add(F(path, "tokens_per_minute"), "must be at most 1000000000000");
  }
  if (!config::v1::RateLimitKey_IsValid(r.key())) {
    v.Add(F(path, "key"),
          "must be one of RATE_LIMIT_KEY_SHARED, RATE_LIMIT_KEY_PER_CALLER, "
          "RATE_LIMIT_KEY_PER_END_USER");
  }
}

void ValidateBudget(const config::v1::Budget& b, const std::string& path, SpecMode mode,
                    Violations& v) {
  ValidateName(b.name(), F(path, "name"), v);
  ValidateName(b.capability(), F(path, "capability"), v);
  if (b.limit_usd_micros() < 0) v.Add(F(path, "limit_usd_micros"), "must not be negative");
  if (b.window() == config::v1::BUDGET_WINDOW_UNSPECIFIED ||
      !config::v1::BudgetWindow_IsValid(b.window())) {
    v.Add(F(path, "window"),
          "must be one of BUDGET_WINDOW_DAILY, BUDGET_WINDOW_MONTHLY, BUDGET_WINDOW_TOTAL");
  }
  if (mode != SpecMode::kAdmin) return;  // as for rate limits
  if (b.limit_usd_micros() == 0) {
    v.Add(F(path, "limit_usd_micros"), "must be positive (micro-dollars; 1 USD = 1000000)");
  } else if (b.limit_usd_micros() > kMaxBudgetMicros) {
    v.Add(F(path, "limit_usd_micros"), "must be at most 1000000000000000 ($1,000,000,000)");
  }
  ValidateOptionalName(b.caller(), F(path, "caller"), v);
  ValidateOptionalName(b.tier(), F(path, "tier"), v);
  if (!config::v1::OverLimitAction_IsValid(b.on_exhausted())) {
    v.Add(F(path, "on_exhausted"),
          "must be one of OVER_LIMIT_ACTION_REJECT, OVER_LIMIT_ACTION_QUEUE, "
          "OVER_LIMIT_ACTION_DEGRADE");
  } else if (b.on_exhausted() == config::v1::OVER_LIMIT_ACTION_DEGRADE) {
    if (b.degrade_to().empty()) {
      v.Add(F(path, "degrade_to"),
            "is required with OVER_LIMIT_ACTION_DEGRADE: name the cheaper capability");
    } else if (b.degrade_to() == b.capability()) {
      v.Add(F(path, "degrade_to"), "must be a capability other than the budget's own");
    }
  } else if (!b.degrade_to().empty()) {
    v.Add(F(path, "degrade_to"), "applies only with on_exhausted OVER_LIMIT_ACTION_DEGRADE");
  }
  ValidateOptionalName(b.degrade_to(), F(path, "degrade_to"), v);
}

void ValidateSecret(std::string_view secret, const std::string& path, Violations& v) {
  if (secret.empty()) {
    v.Add(path, "is required");
  } else if (secret.size() > kMaxSecretBytes) {
    v.Add(path, "must be at most 8192 bytes");
  } else {
    for (unsigned char ch : secret) {
      if (ch < 0x20 || ch == 0x7f) {
        v.Add(path, "must not contain control characters (it is sent as an HTTP header value)");
        break;
      }
    }
  }
}

absl::Status CheckSnapshotConsistency(const config::v1::Snapshot& s) {
  Violations v;
  std::set<std::string> providers, routes, callers, prices, limits, budgets, digests, sans;
  for (int i = 0; i < s.providers_size(); ++i) {
    std::string p = At("providers", i);
    ValidateProvider(s.providers(i), p, SpecMode::kSnapshot, v);
    if (!providers.insert(s.providers(i).name()).second) v.Add(F(p, "name"), "is not unique");
  }
  for (int i = 0; i < s.routes_size(); ++i) {
    std::string p = At("routes", i);
    ValidateRoute(s.routes(i), p, SpecMode::kSnapshot, v);
    if (!routes.insert(s.routes(i).capability()).second) v.Add(F(p, "capability"), "is not unique");
    for (const auto& [field, target] : AllRouteTargets(s.routes(i), p)) {
      if (providers.count(target->provider()) == 0) {
        v.Add(F(field, "provider"), "names no provider in the snapshot");
      }
    }
  }
  for (int i = 0; i < s.callers_size(); ++i) {
    std::string p = At("callers", i);
    ValidateCaller(s.callers(i), p, SpecMode::kSnapshot, v);
    if (!callers.insert(s.callers(i).name()).second) v.Add(F(p, "name"), "is not unique");
    for (int k = 0; k < s.callers(i).key_sha256_size(); ++k) {
      if (!digests.insert(s.callers(i).key_sha256(k)).second) {
        v.Add(At(F(p, "key_sha256"), k), "is not unique");
      }
    }
    for (int k = 0; k < s.callers(i).cert_sans_size(); ++k) {
      if (!sans.insert(s.callers(i).cert_sans(k)).second) {
        v.Add(At(F(p, "cert_sans"), k), "identifies another caller too");
      }
    }
  }
  for (int i = 0; i < s.prices_size(); ++i) {
    std::string p = At("prices", i);
    ValidatePrice(s.prices(i), p, v);
    if (!prices.insert(absl::StrCat(s.prices(i).provider(), "/", s.prices(i).model())).second) {
      v.Add(p, "is not unique");
    }
    if (providers.count(s.prices(i).provider()) == 0) {
      v.Add(F(p, "provider"), "names no provider in the snapshot");
    }
  }
  for (int i = 0; i < s.rate_limits_size(); ++i) {
    std::string p = At("rate_limits", i);
    ValidateRateLimit(s.rate_limits(i), p, SpecMode::kSnapshot, v);
    if (!limits.insert(s.rate_limits(i).name()).second) v.Add(F(p, "name"), "is not unique");
  }
  for (int i = 0; i < s.budgets_size(); ++i) {
    std::string p = At("budgets", i);
    ValidateBudget(s.budgets(i), p, SpecMode::kSnapshot, v);
    if (!budgets.insert(s.budgets(i).name()).second) v.Add(F(p, "name"), "is not unique");
    if (!s.budgets(i).degrade_to().empty() && routes.count(s.budgets(i).degrade_to()) == 0) {
      v.Add(F(p, "degrade_to"), "names no route in the snapshot");
    }
  }
  if (v.empty()) return absl::OkStatus();
  return v.ToStatus(absl::StatusCode::kFailedPrecondition, "inconsistent snapshot: ");
}

}  // namespace turnpike::controlplane
