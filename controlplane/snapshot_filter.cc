#include "controlplane/snapshot_filter.h"

#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_join.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {

std::vector<std::string> ReachableCapabilities(const config::v1::Snapshot& full,
                                               const std::vector<std::string>& capabilities) {
  absl::flat_hash_set<std::string> routes;
  for (const config::v1::Route& r : full.routes()) routes.insert(r.capability());
  std::set<std::string> reached;
  for (const std::string& c : capabilities) {
    if (routes.contains(c)) reached.insert(c);
  }
  for (bool grew = true; grew;) {  // a fixpoint: degrade_to chains are short
    grew = false;
    for (const config::v1::Budget& b : full.budgets()) {
      if (reached.count(b.capability()) == 0 || b.degrade_to().empty()) continue;
      if (routes.contains(b.degrade_to()) && reached.insert(b.degrade_to()).second) grew = true;
    }
  }
  return {reached.begin(), reached.end()};
}

config::v1::Snapshot FilterSnapshot(const config::v1::Snapshot& full,
                                    const std::vector<std::string>& capabilities) {
  const std::vector<std::string> reachable = ReachableCapabilities(full, capabilities);
  const absl::flat_hash_set<std::string> caps(reachable.begin(), reachable.end());
  config::v1::Snapshot out;
  out.set_version(full.version());
  absl::flat_hash_set<std::string> providers;
  for (const config::v1::Route& r : full.routes()) {
    if (!caps.contains(r.capability())) continue;
    for (const auto& [field, target] : AllRouteTargets(r, "")) providers.insert(target->provider());
    *out.add_routes() = r;
  }
  for (const config::v1::Provider& p : full.providers()) {
    if (providers.contains(p.name())) *out.add_providers() = p;
  }
  *out.mutable_callers() = full.callers();
  for (const config::v1::Price& p : full.prices()) {
    if (providers.contains(p.provider())) *out.add_prices() = p;
  }
  for (const config::v1::RateLimit& l : full.rate_limits()) {
    if (l.capability().empty() || caps.contains(l.capability())) *out.add_rate_limits() = l;
  }
  for (const config::v1::Budget& b : full.budgets()) {
    if (caps.contains(b.capability())) *out.add_budgets() = b;
  }
  return out;
}

VersionedSnapshot FilteredSnapshots::For(const VersionedSnapshot& full,
                                         const std::vector<std::string>& capabilities) {
  if (capabilities.empty() || full.snapshot == nullptr) return full;
  const std::string key = absl::StrJoin(capabilities, ",");
  absl::MutexLock lock(&mu_);
  VersionedSnapshot& view = views_[key];
  if (view.snapshot != nullptr && view.version > full.version) {  // a stream behind: not cached
    return VersionedSnapshot{full.version, std::make_shared<const config::v1::Snapshot>(
                                               FilterSnapshot(*full.snapshot, capabilities))};
  }
  if (view.snapshot == nullptr || view.version != full.version) {
    view = VersionedSnapshot{full.version, std::make_shared<const config::v1::Snapshot>(
                                               FilterSnapshot(*full.snapshot, capabilities))};
  }
  return view;
}

}  // namespace turnpike::controlplane
