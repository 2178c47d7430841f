// RuntimeConfig::Build is the one validation path for file and watch-stream snapshots.
#include "server/config/runtime_config.h"

#include <map>
#include <random>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/server/config/test_resilience.h"

namespace turnpike {
namespace {

RuntimeConfig::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<std::shared_ptr<const RuntimeConfig>> BuildJson(const std::string& json) {
  absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(json);
  if (!snapshot.ok()) return snapshot.status();
  return RuntimeConfig::Build(*snapshot, Env({{"KEY", "secret"}}), TestResilience());
}

constexpr char kGood[] = R"({"version":"v7",
  "providers":[{"name":"oa","kind":"PROVIDER_KIND_OPENAI","baseUrl":"https://api.openai.com/v1","apiKeyEnv":"KEY"},
               {"name":"local","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:8000/v1"}],
  "routes":[{"capability":"chat","targets":[{"provider":"oa","model":"gpt-4o"},{"provider":"local","model":"llama"}],
             "defaultMaxTokens":99,"timeouts":{"connectMs":150}}],
  "callers":[{"name":"svc","keySha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],"allowedCapabilities":["chat"]}],
  "prices":[{"provider":"oa","model":"gpt-4o","inputUsdMicrosPerMtok":"2500000","outputUsdMicrosPerMtok":"10000000"}]})";

TEST(RuntimeConfigTest, BuildsRoutesCallersAndPrices) {
  auto config = BuildJson(kGood);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->version(), "v7");
  const RouteEntry* route = (*config)->FindRoute("chat");
  ASSERT_NE(route, nullptr);
  ASSERT_EQ(route->targets.size(), 2u);
  EXPECT_EQ(route->targets[1].provider->name, "local");
  EXPECT_EQ(route->targets[1].fallback_position, 1);
  EXPECT_EQ(route->default_max_tokens, 99);
  EXPECT_EQ(route->timeouts.connect_timeout, absl::Milliseconds(150));
  EXPECT_EQ(route->timeouts.first_byte_timeout, absl::Seconds(30));  // default
  EXPECT_EQ((*config)->FindRoute("other"), nullptr);
  const CallerEntry* caller = (*config)->FindCallerByKey("test");
  ASSERT_NE(caller, nullptr);
  EXPECT_EQ(caller->name, "svc");
  EXPECT_TRUE(caller->Allows("chat"));
  EXPECT_FALSE(caller->Allows("other"));
  EXPECT_EQ((*config)->FindCallerByKey("tesT"), nullptr);
}

// Build resolves each target's shared state once; the state is keyed by names and never
// destroyed, so a target in two successive snapshots gets the same UpstreamState (its breaker and
// budgets survive the swap) while a rotated credential or another model gets its own.
TEST(RuntimeConfigTest, TargetStateIsResolvedOnceAndSurvivesConfigSwaps) {
  SimulatedClock clock;
  std::mt19937_64 gen(7);
  Resilience resilience(Resilience::Options(), clock, gen);
  auto build = [&](const std::string& json) {
    absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(json);
    EXPECT_TRUE(snapshot.ok()) << snapshot.status();
    auto config = RuntimeConfig::Build(*snapshot, Env({{"KEY", "secret"}}), resilience);
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  };
  std::shared_ptr<const RuntimeConfig> first = build(kGood);
  const RouteEntry* route = first->FindRoute("chat");
  ASSERT_NE(route, nullptr);
  UpstreamState* oa = route->targets[0].upstream;
  ASSERT_NE(oa, nullptr);
  ASSERT_NE(route->response_cache, nullptr);
  EXPECT_EQ(oa, &resilience.Upstream("oa", "gpt-4o", ""));
  EXPECT_NE(oa, route->targets[1].upstream);

  // The next snapshot: same oa/gpt-4o target, in another position, and a new model for local.
  std::shared_ptr<const RuntimeConfig> second = build(R"({"version":"v8",
    "providers":[{"name":"local","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:8000/v1"},
                 {"name":"oa","kind":"PROVIDER_KIND_OPENAI","baseUrl":"https://api.openai.com/v1","apiKeyEnv":"KEY"}],
    "routes":[{"capability":"chat","targets":[{"provider":"local","model":"qwen"},{"provider":"oa","model":"gpt-4o"}]}]})");
  const RouteEntry* next = second->FindRoute("chat");
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->targets[1].upstream, oa);
  EXPECT_NE(next->targets[0].upstream, route->targets[1].upstream);
  EXPECT_EQ(next->response_cache, route->response_cache);

  // A rotated credential starts with fresh state.
  std::shared_ptr<const RuntimeConfig> rotated = build(R"({"version":"v9",
    "providers":[{"name":"oa","kind":"PROVIDER_KIND_OPENAI","baseUrl":"https://api.openai.com/v1",
                  "apiKeyEnv":"KEY","credential":"oa-key","credentialVersion":"2"}],
    "routes":[{"capability":"chat","targets":[{"provider":"oa","model":"gpt-4o"}]}]})");
  EXPECT_NE(rotated->FindRoute("chat")->targets[0].upstream, oa);
  EXPECT_EQ(resilience.Status().size(), 4u);
}

// A rejected snapshot creates no state.
TEST(RuntimeConfigTest, InvalidSnapshotResolvesNoState) {
  SimulatedClock clock;
  std::mt19937_64 gen(7);
  Resilience resilience(Resilience::Options(), clock, gen);
  absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(R"({
    "providers":[{"name":"local","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:8000/v1"}],
    "routes":[{"capability":"chat","targets":[{"provider":"local","model":"m"}]}],
    "callers":[{"name":"bad name!"}]})");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_FALSE(RuntimeConfig::Build(*snapshot, Env({}), resilience).ok());
  EXPECT_TRUE(resilience.Status().empty());
}

TEST(RuntimeConfigTest, CostRoundsUpInMicroDollars) {
  auto config = BuildJson(kGood);
  ASSERT_TRUE(config.ok());
  const RouteEntry* route = (*config)->FindRoute("chat");
  const TargetEntry& priced = route->targets[0];
  // 1000 in at $2.50/M + 100 out at $10/M = $0.0025 + $0.001 = 3500 micro-dollars exactly.
  EXPECT_EQ(RuntimeConfig::CostOf(priced, {.input = 1000, .output = 100}).total, 3500);
  // 1 token in: 2.5 micro-dollars -> 3.
  EXPECT_EQ(RuntimeConfig::CostOf(priced, {.input = 1}).total, 3);
  EXPECT_EQ(RuntimeConfig::CostOf(priced, {}).total, 0);
  // The price sets no cache rates: cached input costs the input rate.
  EXPECT_EQ(RuntimeConfig::CostOf(priced, {.input = 1000, .cached_input = 600}).total, 2500);
  // The input-and-output shorthand is the same arithmetic.
  EXPECT_EQ(RuntimeConfig::CostMicros(priced, 1000, 100), 3500);
  EXPECT_EQ(RuntimeConfig::CostMicros(priced, 1, 0), 3);
  // No price for the second target.
  EXPECT_FALSE(route->targets[1].price.has_value());
  EXPECT_EQ(RuntimeConfig::CostMicros(route->targets[1], 1000, 1000), 0);
  EXPECT_EQ(RuntimeConfig::CostOf(route->targets[1], {.input = 1000, .output = 1000}).total, 0);
}

TEST(RuntimeConfigTest, CacheRatesAreTakenFromThePrice) {
  auto config = BuildJson(R"({"version":"v1",
    "providers":[{"name":"local","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:8000/v1"}],
    "routes":[{"capability":"chat","targets":[{"provider":"local","model":"m"}]}],
    "prices":[{"provider":"local","model":"m","inputUsdMicrosPerMtok":"3000000",
               "outputUsdMicrosPerMtok":"15000000","cachedInputUsdMicrosPerMtok":"300000",
               "cacheWriteUsdMicrosPerMtok":"3750000"}]})");
  ASSERT_TRUE(config.ok()) << config.status();
  const TargetEntry& t = (*config)->FindRoute("chat")->targets[0];
  ASSERT_TRUE(t.price.has_value());
  EXPECT_EQ(t.price->cached_input, 300000);
  EXPECT_EQ(t.price->cache_write, 3750000);
  // 100 uncached x $3 + 1000 cached x $0.30 + 200 written x $3.75 + 50 out x $15, per 1M:
  // 300 + 300 + 750 + 750 micro-dollars.
  const Cost cost = RuntimeConfig::CostOf(
      t, {.input = 1300, .cached_input = 1000, .cache_write_input = 200, .output = 50});
  EXPECT_EQ(cost.total, 2100);
  EXPECT_EQ(cost.input, 300);
  EXPECT_EQ(cost.cached_input, 300);
  EXPECT_EQ(cost.cache_write, 750);
  EXPECT_EQ(cost.output, 750);
}

struct BadCase {
  const char* json;
  const char* field;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesTheField) {
  auto config = BuildJson(GetParam().json);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(GetParam().field), std::string::npos)
      << config.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfigTest,
    ::testing::Values(
        BadCase{
            R"({"providers":[{"name":"","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKeyEnv":"KEY"}]})",
            "providers[0].name"},
        BadCase{
            R"({"providers":[{"name":"a b","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKeyEnv":"KEY"}]})",
            "providers[0].name"},
        BadCase{
            R"({"providers":[{"name":"a","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKeyEnv":"KEY"},{"name":"a","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKeyEnv":"KEY"}]})",
            "providers[1].name"},
        BadCase{R"({"providers":[{"name":"a","baseUrl":"http://x"}]})", "providers[0].kind"},
        BadCase{R"({"providers":[{"name":"a","kind":99,"baseUrl":"http://x"}]})",
                "providers[0].kind"},
        BadCase{R"({"providers":[{"name":"a","kind":"PROVIDER_KIND_OPENAI","baseUrl":"x"}]})",
                "providers[0].base_url"},
        BadCase{
            R"({"providers":[{"name":"a","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":"http://x"}]})",
            "providers[0].api_key_env"},
        BadCase{
            R"({"providers":[{"name":"a","kind":"PROVIDER_KIND_GEMINI","baseUrl":"http://x","apiKeyEnv":"NOPE"}]})",
            "NOPE is not set"},
        BadCase{
            R"({"providers":[{"name":"a","kind":"PROVIDER_KIND_AZURE_OPENAI","baseUrl":"http://x","apiKeyEnv":"KEY"}]})",
            "providers[0].api_version"},
        BadCase{R"({"routes":[{"capability":"c","targets":[]}]})", "routes[0].targets"},
        BadCase{R"({"routes":[{"capability":"","targets":[{"provider":"p","model":"m"}]}]})",
                "routes[0].capability"},
        BadCase{
            R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://x"}],"routes":[{"capability":"c","targets":[{"provider":"p","model":"m"}]},{"capability":"c","targets":[{"provider":"p","model":"m"}]}]})",
            "routes[1].capability"},
        BadCase{
            R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://x"}],"routes":[{"capability":"c","targets":[{"provider":"p"}]}]})",
            "routes[0].targets[0].model"},
        BadCase{R"({"routes":[{"capability":"c","targets":[{"provider":"q","model":"m"}]}]})",
                "routes[0].targets[0].provider"},
        BadCase{
            R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://x"}],"routes":[{"capability":"c","targets":[{"provider":"p","model":"m"}],"timeouts":{"idleMs":-1}}]})",
            "routes[0].timeouts"},
        BadCase{R"({"callers":[{"name":"c","keySha256":["abc"]}]})", "callers[0].key_sha256[0]"},
        BadCase{R"({"callers":[{"name":"c","certSans":["claims.internal"]}]})",
                "callers[0].cert_sans[0]: must be DNS:<name>"},
        BadCase{R"({"callers":[{"name":"c","certSans":["DNS:"]}]})", "callers[0].cert_sans[0]"},
        BadCase{R"({"callers":[{"name":"c","certSans":["DNS:a b"]}]})", "callers[0].cert_sans[0]"},
        BadCase{
            R"({"callers":[{"name":"c","certSans":["DNS:x.internal"]},{"name":"d","certSans":["DNS:x.internal"]}]})",
            "callers[1].cert_sans[0]: also identifies caller \"c\""},
        BadCase{R"({"prices":[{"provider":"p","model":"m","inputUsdMicrosPerMtok":"-1"}]})",
                "prices[0]"},
        BadCase{R"({"prices":[{"provider":"p","model":"m","cachedInputUsdMicrosPerMtok":"-1"}]})",
                "prices[0]"},
        BadCase{R"({"prices":[{"provider":"p","model":"m","cacheWriteUsdMicrosPerMtok":"-1"}]})",
                "prices[0]"},
        BadCase{
            R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKey":"k","color":"red"}]})",
            "color"},
        BadCase{R"({"providers":)", "config"}));

}  // namespace
}  // namespace turnpike
