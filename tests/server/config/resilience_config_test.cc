// Route resilience settings in the snapshot: defaults, explicit values, and errors that name the
// field.
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/config/runtime_config.h"
#include "tests/server/config/test_resilience.h"

namespace turnpike {
namespace {

absl::StatusOr<std::shared_ptr<const RuntimeConfig>> Build(const std::string& route) {
  auto snapshot = ParseSnapshotJson(absl::StrCat(
      R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://x/v1"},
                        {"name":"q","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://y/v1",
                         "credential":"q-key","credentialVersion":"3"}],
         "routes":[)",
      route, "]}"));
  if (!snapshot.ok()) return snapshot.status();
  return RuntimeConfig::Build(
      *snapshot, [](const std::string&) { return std::nullopt; }, TestResilience());
}

TEST(ResilienceConfigTest, DefaultsWhenTheRouteSaysNothing) {
  auto config = Build(
      R"({"capability":"c","targets":[{"provider":"p","model":"m"},{"provider":"q","model":"m"}]})");
  ASSERT_TRUE(config.ok()) << config.status();
  const RouteEntry* r = (*config)->FindRoute("c");
  EXPECT_EQ(r->retry.max_attempts, 3);
  EXPECT_EQ(r->retry.max_attempts_per_target, 2);
  EXPECT_EQ(r->retry.base_backoff, absl::Milliseconds(100));
  EXPECT_EQ(r->retry.max_backoff, absl::Seconds(2));
  EXPECT_EQ(r->retry.max_retry_after, absl::Seconds(10));
  EXPECT_EQ(r->breaker.consecutive_failures, 5);
  EXPECT_EQ(r->breaker.failure_rate_window, absl::Seconds(30));
  EXPECT_EQ(r->breaker.failure_rate_percent, 50);
  EXPECT_EQ(r->breaker.minimum_volume, 20);
  EXPECT_EQ(r->breaker.base_ejection, absl::Seconds(30));
  EXPECT_EQ(r->breaker.max_ejection, absl::Seconds(300));
  EXPECT_EQ(r->breaker.half_open_probes, 1);
  EXPECT_EQ(r->breaker.probe_timeout, absl::Seconds(5));
  EXPECT_EQ(r->cache.mode, CacheMode::kOff);
  EXPECT_FALSE(r->degradation.static_response_enabled);
  EXPECT_FALSE(r->degradation.force_unavailable);
  EXPECT_EQ(r->tiers, 2);
  EXPECT_EQ(r->targets[1].fallback_position, 1);
  EXPECT_EQ(r->targets[0].weight, 1u);
  EXPECT_EQ(r->targets[0].provider->credential, "");
  EXPECT_EQ(r->targets[1].provider->credential, "q-key@3");
}

TEST(ResilienceConfigTest, ExplicitSettings) {
  auto config = Build(R"({"capability":"c",
    "targets":[{"provider":"p","model":"m","tier":5,"weight":2},{"provider":"q","model":"m","tier":5},
               {"provider":"q","model":"n","tier":9}],
    "retry":{"maxAttempts":4,"maxAttemptsPerTarget":1,"baseBackoffMs":25,"maxBackoffMs":250,"maxRetryAfterMs":3000},
    "circuitBreaker":{"consecutiveFailures":3,"failureRateWindowMs":1000,"failureRatePercent":80,
                      "minimumVolume":4,"baseEjectionMs":200,"maxEjectionMs":800,"halfOpenProbes":2,"probeTimeoutMs":300},
    "cache":{"mode":"CACHE_MODE_FIRST","ttlMs":1000,"maxStaleMs":"5000","maxBytes":"65536"},
    "degradation":{"mode":"DEGRADATION_MODE_STATIC_RESPONSE","staticResponse":"Try again later."}})");
  ASSERT_TRUE(config.ok()) << config.status();
  const RouteEntry* r = (*config)->FindRoute("c");
  EXPECT_EQ(r->retry.max_attempts, 4);
  EXPECT_EQ(r->retry.max_attempts_per_target, 1);
  EXPECT_EQ(r->retry.base_backoff, absl::Milliseconds(25));
  EXPECT_EQ(r->retry.max_backoff, absl::Milliseconds(250));
  EXPECT_EQ(r->retry.max_retry_after, absl::Seconds(3));
  EXPECT_EQ(r->breaker.consecutive_failures, 3);
  EXPECT_EQ(r->breaker.failure_rate_window, absl::Seconds(1));
  EXPECT_EQ(r->breaker.failure_rate_percent, 80);
  EXPECT_EQ(r->breaker.minimum_volume, 4);
  EXPECT_EQ(r->breaker.base_ejection, absl::Milliseconds(200));
  EXPECT_EQ(r->breaker.max_ejection, absl::Milliseconds(800));
  EXPECT_EQ(r->breaker.half_open_probes, 2);
  EXPECT_EQ(r->breaker.probe_timeout, absl::Milliseconds(300));
  EXPECT_EQ(r->cache.mode, CacheMode::kFirst);
  EXPECT_EQ(r->cache.ttl, absl::Seconds(1));
  EXPECT_EQ(r->cache.max_stale, absl::Seconds(5));
  EXPECT_EQ(r->cache.max_bytes, 65536u);
  EXPECT_TRUE(r->degradation.static_response_enabled);
  EXPECT_EQ(r->degradation.static_response, "Try again later.");
  // Tiers 5, 5, 9 become fallback positions 0, 0, 1.
  EXPECT_EQ(r->tiers, 2);
  EXPECT_EQ(r->targets[0].fallback_position, 0);
  EXPECT_EQ(r->targets[1].fallback_position, 0);
  EXPECT_EQ(r->targets[2].fallback_position, 1);
  EXPECT_EQ(r->targets[0].weight, 2u);
  EXPECT_EQ(r->targets[1].weight, 1u);
}

TEST(ResilienceConfigTest, ErrorsNameTheField) {
  const std::map<std::string, std::string> cases = {
      {R"("timeouts":{"totalMs":86400001})", "routes[0].timeouts.total_ms"},
      {R"("timeouts":{"connectMs":-1})", "routes[0].timeouts.connect_ms"},
      {R"("retry":{"maxAttempts":11})", "routes[0].retry.max_attempts"},
      {R"("retry":{"maxAttemptsPerTarget":-1})", "routes[0].retry.max_attempts_per_target"},
      {R"("retry":{"baseBackoffMs":500,"maxBackoffMs":100})", "routes[0].retry.max_backoff_ms"},
      {R"("circuitBreaker":{"failureRatePercent":101})",
       "routes[0].circuit_breaker.failure_rate_percent"},
      {R"("circuitBreaker":{"baseEjectionMs":5000,"maxEjectionMs":1000})",
       "routes[0].circuit_breaker.max_ejection_ms"},
      {R"("circuitBreaker":{"halfOpenProbes":1000})", "routes[0].circuit_breaker.half_open_probes"},
      {R"("cache":{"maxBytes":"10"})", "routes[0].cache.max_bytes"},
      {R"("cache":{"mode":7})", "routes[0].cache.mode"},
      {R"("degradation":{"mode":"DEGRADATION_MODE_STATIC_RESPONSE"})",
       "routes[0].degradation.static_response"},
      {R"("degradation":{"staticResponse":"x"})", "routes[0].degradation.static_response"},
  };
  for (const auto& [settings, field] : cases) {
    auto config = Build(absl::StrCat(
        R"({"capability":"c","targets":[{"provider":"p","model":"m"}],)", settings, "}"));
    ASSERT_FALSE(config.ok()) << settings;
    EXPECT_NE(config.status().message().find(field), std::string::npos)
        << settings << " -> " << config.status().message();
  }
  auto mixed = Build(
      R"({"capability":"c","targets":[{"provider":"p","model":"m","tier":0},{"provider":"q","model":"m"}]})");
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("routes[0].targets"), std::string::npos);
  auto strict = Build(R"({"capability":"c","targets":[{"provider":"p","model":"m"}],
                          "degradation":{"mode":"DEGRADATION_MODE_UNAVAILABLE"}})");
  ASSERT_TRUE(strict.ok()) << strict.status();
  EXPECT_TRUE((*strict)->FindRoute("c")->degradation.force_unavailable);
  auto heavy =
      Build(R"({"capability":"c","targets":[{"provider":"p","model":"m","weight":5000}]})");
  ASSERT_FALSE(heavy.ok());
  EXPECT_NE(heavy.status().message().find("routes[0].targets[0].weight"), std::string::npos);
  auto negative = Build(R"({"capability":"c","targets":[{"provider":"p","model":"m","tier":-1}]})");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("routes[0].targets[0].tier"), std::string::npos);
}

// The route example in docs/resilience.md is a valid route with exactly the settings it shows.
TEST(ResilienceConfigTest, DocExampleIsValid) {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/resilience.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const size_t start = doc.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  const std::string route = doc.substr(start + 8, end - start - 8);
  auto snapshot = ParseSnapshotJson(absl::StrCat(
      R"({"providers":[{"name":"openai","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://x/v1"},
                        {"name":"azure-east","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://y/v1"},
                        {"name":"claude","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://z/v1"}],
         "routes":[)",
      route, "]}"));
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  auto config = RuntimeConfig::Build(
      *snapshot, [](const std::string&) { return std::nullopt; }, TestResilience());
  ASSERT_TRUE(config.ok()) << config.status();
  const RouteEntry* r = (*config)->FindRoute("claims-summary");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->tiers, 2);
  EXPECT_EQ(r->cache.mode, CacheMode::kFallback);
  EXPECT_TRUE(r->degradation.static_response_enabled);
}

}  // namespace
}  // namespace turnpike
