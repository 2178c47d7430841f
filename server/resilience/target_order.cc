#include "server/resilience/target_order.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/random/distributions.h"
#include "common/clock.h"
#include "server/config/runtime_config.h"

namespace turnpike {
namespace {

// A least-latency route: orders `tier` by recent time to first token and returns true, or
// returns false (leaving it) when weights decide: for kLatencyExplorePercent of requests, and
// when no target of the tier has recent figures.
bool LeastLatencyFirst(const RouteEntry& route, Clock& clock, absl::BitGenRef rng,
                       std::vector<size_t>& tier) {
  // A share of requests goes by weight, so the slower targets' figures stay fresh.
  if (absl::Uniform<uint32_t>(rng, 0, 100) < kLatencyExplorePercent) return false;
  const absl::Time now = clock.MonotonicNow();
  std::vector<std::pair<absl::Duration, size_t>> by_latency;
  by_latency.reserve(tier.size());
  for (size_t t : tier) {
    std::optional<absl::Duration> recent = route.targets[t].upstream->latency().Recent(now);
    // A target without recent figures goes after those with them (exploration feeds it).
    by_latency.emplace_back(recent.value_or(absl::InfiniteDuration()), t);
  }
  if (std::all_of(by_latency.begin(), by_latency.end(),
                  [](const auto& e) { return e.first == absl::InfiniteDuration(); })) {
    return false;  // no figures at all: weights decide
  }
  std::stable_sort(by_latency.begin(), by_latency.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < tier.size(); ++i) tier[i] = by_latency[i].second;
  return true;
}

}  // namespace

std::vector<size_t> OrderTargets(const RouteEntry& route, Clock& clock, absl::BitGenRef rng) {
  std::vector<size_t> order;
  std::vector<size_t> all(route.targets.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  std::stable_sort(all.begin(), all.end(), [&](size_t a, size_t b) {
    return route.targets[a].fallback_position < route.targets[b].fallback_position;
  });
  // Within a tier: a weighted random order (the first pick is proportional to weight).
  for (size_t begin = 0; begin < all.size();) {
    size_t end = begin;
    while (end < all.size() && route.targets[all[end]].fallback_position ==
                                   route.targets[all[begin]].fallback_position) {
      ++end;
    }
    std::vector<size_t> tier(all.begin() + begin, all.begin() + end);
    if (route.least_latency && tier.size() > 1 && LeastLatencyFirst(route, clock, rng, tier)) {
      order.insert(order.end(), tier.begin(), tier.end());
      begin = end;
      continue;
    }
    while (!tier.empty()) {
      uint64_t total = 0;
      for (size_t t : tier) total += route.targets[t].weight;
      uint64_t pick = total > 1 ? absl::Uniform<uint64_t>(rng, 0, total) : 0;
      size_t chosen = 0;
      for (; chosen + 1 < tier.size(); ++chosen) {
        const uint64_t w = route.targets[tier[chosen]].weight;
        if (pick < w) break;
        pick -= w;
      }
      order.push_back(tier[chosen]);
      tier.erase(tier.begin() + chosen);
    }
    begin = end;
  }
  return order;
}

}  // namespace turnpike
