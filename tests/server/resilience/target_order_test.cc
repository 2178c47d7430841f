// The order one request tries a route's targets in (OrderTargets,
// server/resilience/target_order.h): tiers first, weights within a tier, and on a least-latency
// route the fastest recent target first except for the share of requests that explore by weight.
// Seeded generator and simulated clock, so every count below is deterministic.
#include "server/resilience/target_order.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/config/runtime_config.h"
#include "server/resilience/resilience.h"

namespace turnpike {
namespace {

class TargetOrderTest : public ::testing::Test {
 protected:
  // Providers a, b and c; `route` is the JSON of one Route for capability "r".
  void Load(const std::string& route) {
    auto snapshot = ParseSnapshotJson(absl::StrCat(R"({"providers":[
      {"name":"a","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:1/v1"},
      {"name":"b","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:2/v1"},
      {"name":"c","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:3/v1"}],
      "routes":[)",
                                                   route, "]}"));
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    auto config = RuntimeConfig::Build(
        *snapshot, [](const std::string&) { return std::nullopt; }, resilience_);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    route_ = config_->FindRoute("r");
    ASSERT_NE(route_, nullptr);
  }

  // One order, as provider names ("bac").
  std::string Order() {
    std::string names;
    for (size_t t : OrderTargets(*route_, clock_, gen_)) {
      names += route_->targets[t].provider->name;
    }
    return names;
  }

  UpstreamState& Upstream(size_t target) { return *route_->targets[target].upstream; }

  SimulatedClock clock_;
  std::mt19937_64 gen_{7};
  Resilience resilience_{Resilience::Options(), clock_, gen_};
  std::shared_ptr<const RuntimeConfig> config_;
  const RouteEntry* route_ = nullptr;
};

TEST_F(TargetOrderTest, TiersComeInOrderAndWeightsSplitTheFirstPick) {
  Load(R"({"capability":"r","targets":[{"provider":"c","model":"m","tier":1},
           {"provider":"a","model":"m","tier":0,"weight":3},
           {"provider":"b","model":"m","tier":0,"weight":1}]})");
  int a_first = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string order = Order();
    ASSERT_TRUE(order == "abc" || order == "bac") << order;
    a_first += order[0] == 'a' ? 1 : 0;
  }
  EXPECT_GE(a_first, 2700);  // 75 % ± 7.5 %
  EXPECT_LE(a_first, 3300);
}

TEST_F(TargetOrderTest, LeastLatencyPutsTheFastestFirstAndExploresByWeight) {
  Load(R"({"capability":"r","targetSelection":"TARGET_SELECTION_LEAST_LATENCY",
           "targets":[{"provider":"a","model":"m","tier":0},{"provider":"b","model":"m","tier":0},
                      {"provider":"c","model":"m","tier":0}]})");
  Upstream(0).latency().Record(absl::Milliseconds(300), clock_.MonotonicNow());
  Upstream(1).latency().Record(absl::Milliseconds(100), clock_.MonotonicNow());
  // c has no figure: it goes last, unless the request explores by weight.
  int by_latency = 0;
  int c_first = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string order = Order();
    by_latency += order == "bac" ? 1 : 0;
    c_first += order[0] == 'c' ? 1 : 0;
  }
  // 90 % by latency, plus the explorations that happen to draw "bac" (1 in 6 of 10 %).
  EXPECT_GE(by_latency, 1750);
  EXPECT_LE(by_latency, 1900);
  EXPECT_GE(c_first, 30);  // a third of the 10 % that explore
  EXPECT_LE(c_first, 110);
}

TEST_F(TargetOrderTest, StaleFiguresLeaveTheOrderToWeights) {
  Load(R"({"capability":"r","targetSelection":"TARGET_SELECTION_LEAST_LATENCY",
           "targets":[{"provider":"a","model":"m","tier":0},{"provider":"b","model":"m","tier":0}]})");
  Upstream(0).latency().Record(absl::Milliseconds(300), clock_.MonotonicNow());
  Upstream(1).latency().Record(absl::Milliseconds(100), clock_.MonotonicNow());
  clock_.Advance(LatencyEstimate::kFreshFor + absl::Seconds(1));
  int b_first = 0;
  for (int i = 0; i < 2000; ++i) b_first += Order()[0] == 'b' ? 1 : 0;
  EXPECT_GE(b_first, 850);  // 50 % ± 7.5 %
  EXPECT_LE(b_first, 1150);
}

}  // namespace
}  // namespace turnpike
