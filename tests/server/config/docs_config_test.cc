// The example config in docs/configuration.md must be a valid snapshot.
#include <fstream>
#include <map>
#include <sstream>

#include "gtest/gtest.h"
#include "server/config/runtime_config.h"
#include "tests/server/config/test_resilience.h"

namespace turnpike {
namespace {

TEST(DocsConfigTest, ConfigurationExampleIsValid) {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const size_t start = doc.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  std::string json = doc.substr(start + 8, end - start - 8);
  // The caller digest placeholder stands for a real one.
  const std::string placeholder = "<lowercase hex sha256 of the caller's key>";
  json.replace(json.find(placeholder), placeholder.size(),
               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  auto snapshot = ParseSnapshotJson(json);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  std::map<std::string, std::string> env = {{"OPENAI_API_KEY", "k1"},
                                            {"ANTHROPIC_API_KEY", "k2"},
                                            {"AZURE_OPENAI_KEY", "k3"},
                                            {"GEMINI_API_KEY", "k4"}};
  auto config = RuntimeConfig::Build(
      *snapshot,
      [&](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      },
      TestResilience());
  ASSERT_TRUE(config.ok()) << config.status();
  const RouteEntry* route = (*config)->FindRoute("claims-summary");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->targets.size(), 2u);
  EXPECT_EQ(route->default_max_tokens, 512);
}

}  // namespace
}  // namespace turnpike
