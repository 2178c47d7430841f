// What a route's targets point to, checked and built from a snapshot: the providers (their
// adapters, credentials and hosts), the price table, and each chain of targets (its fallback
// tiers, weights, features and prices). Part of RuntimeConfig::Build; stateless, thread-safe.
#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "server/config/runtime_config_internal.h"

namespace turnpike::runtime_config_internal {
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

}  // namespace

absl::Status BuildProviders(const config::v1::Snapshot& snapshot,
                            const RuntimeConfig::EnvLookup& env,
                            std::vector<std::unique_ptr<ProviderEntry>>& out,
                            ProviderIndex& providers) {
  for (int i = 0; i < snapshot.providers_size(); ++i) {
    const config::v1::Provider& p = snapshot.providers(i);
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
    out.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

absl::StatusOr<PriceTable> BuildPrices(const config::v1::Snapshot& snapshot) {
  PriceTable prices;
  for (int i = 0; i < snapshot.prices_size(); ++i) {
    const auto& price = snapshot.prices(i);
    const std::string field = absl::StrCat("prices[", i, "]");
    const PriceRates rates = PriceRates::FromProto(price);
    if (rates.input < 0 || rates.output < 0 || rates.cached_input < 0 || rates.cache_write < 0) {
      return FieldError(field, "prices must not be negative");
    }
    prices[{price.provider(), price.model()}] = rates;
  }
  return prices;
}

absl::Status BuildTargets(const google::protobuf::RepeatedPtrField<config::v1::Target>& targets,
                          const std::string& field, const ProviderIndex& providers,
                          const PriceTable& prices, RouteEntry& route) {
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
}

}  // namespace turnpike::runtime_config_internal
