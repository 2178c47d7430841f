// Every grpcurl line in the README, docs/ and the `tools/dev up` banner that talks to the gateway
// (localhost:50051) is run, unchanged but for the address, against a live demo stack, and so is
// every `curl localhost:9464/metrics` line. grpcurl
// itself is not packaged here, so tools/grpcurl-shim replays each line through `buf curl`.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

struct DocLine {
  std::string file;
  std::string command;
};

// Lines starting with `prefix` (in code blocks or the banner, not prose) that name `address`.
std::vector<DocLine> GatewayLines(const std::string& prefix = "grpcurl ",
                                  const std::string& address = "localhost:50051") {
  std::vector<std::string> files = {"README.md", "tools/dev-up.sh"};
  for (const auto& entry : std::filesystem::directory_iterator(std::string(SOURCE_DIR) + "/docs")) {
    // docs/admin.md and docs/routing.md need the control plane, docs/tls.md certificates,
    // docs/tools.md a tool-calling stack, docs/classification.md its error cases; their own
    // tests replay them against the full stack.
    if (entry.path().extension() == ".md" && entry.path().filename() != "admin.md" &&
        entry.path().filename() != "routing.md" && entry.path().filename() != "tls.md" &&
        entry.path().filename() != "tools.md" && entry.path().filename() != "classification.md") {
      files.push_back(std::filesystem::relative(entry.path(), SOURCE_DIR).string());
    }
  }
  std::vector<DocLine> lines;
  for (const std::string& file : files) {
    std::ifstream in(std::string(SOURCE_DIR) + "/" + file);
    std::string line;
    while (std::getline(in, line)) {
      const size_t start = line.find(prefix);
      if (start == std::string::npos || line.find(address) == std::string::npos) continue;
      // Only whole command lines (in code blocks or the banner), not prose mentions.
      const std::string before = line.substr(0, start);
      if (before.find_first_not_of(" \t") != std::string::npos) continue;
      lines.push_back({file, line.substr(start)});
    }
  }
  return lines;
}

struct Result {
  int exit_code;
  std::string output;
};

Result RunShell(const std::string& command, const std::string& shim_dir) {
  const std::string full = absl::StrCat("PATH=", shim_dir, ":$PATH ", command, " 2>&1");
  FILE* pipe = popen(full.c_str(), "r");
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(DocsTest, EveryGatewayGrpcurlLineWorksAgainstTheDemoStack) {
  TempDir dir;
  FakeProvider fake(dir, {"--chunks=8"});
  ASSERT_GT(fake.port(), 0) << fake.process().Log();
  // The same config tools/dev up writes (tools/dev-up.sh).
  Gateway gateway(
      dir,
      absl::StrCat(
          R"({"version":"dev-1","providers":[{"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:)",
          fake.port(), R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
      "routes":[{"capability":"demo","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
                {"capability":"triage","task":"ROUTE_TASK_CLASSIFICATION","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true}],
      "prices":[{"provider":"fake","model":"gpt-4o-mini","inputUsdMicrosPerMtok":"150000","outputUsdMicrosPerMtok":"600000"}]})"));
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();

  const std::string shim_dir = dir.File("shim");
  std::filesystem::create_directory(shim_dir);
  std::filesystem::create_symlink(std::string(SOURCE_DIR) + "/tools/grpcurl-shim",
                                  shim_dir + "/grpcurl");

  const std::vector<DocLine> lines = GatewayLines();
  ASSERT_GE(lines.size(), 5u) << "expected the README and banner examples";
  for (const DocLine& line : lines) {
    const std::string command =
        absl::StrReplaceAll(line.command, {{"localhost:50051", gateway.address()}});
    Result r = RunShell(command, shim_dir);
    SCOPED_TRACE(line.file + ": " + line.command + "\n" + r.output);
    if (line.command.find("[[fake status=429") != std::string::npos) {
      // The documented fault example: a rate limit, mapped with its retry delay.
      EXPECT_NE(r.exit_code, 0);
      EXPECT_NE(r.output.find("resource_exhausted"), std::string::npos);
      EXPECT_NE(r.output.find("google.rpc.RetryInfo"), std::string::npos);
      continue;
    }
    EXPECT_EQ(r.exit_code, 0);
    if (line.command.find("StreamCompletion") != std::string::npos) {
      EXPECT_NE(r.output.find("\"start\""), std::string::npos);
      EXPECT_NE(r.output.find("\"delta\""), std::string::npos);
      EXPECT_NE(r.output.find("\"finish\""), std::string::npos);
      EXPECT_NE(r.output.find("\"outputTokens\": \"8\""), std::string::npos);
    } else if (line.command.find("Health/Check") != std::string::npos) {
      EXPECT_NE(r.output.find("SERVING"), std::string::npos);
    } else if (line.command.find(" list") != std::string::npos) {
      EXPECT_NE(r.output.find("turnpike.v1.CompletionService"), std::string::npos);
      EXPECT_NE(r.output.find("turnpike.v1.ClassificationService"), std::string::npos);
      EXPECT_NE(r.output.find("grpc.health.v1.Health"), std::string::npos);
    } else if (line.command.find("/Classify") != std::string::npos) {
      EXPECT_NE(r.output.find("\"label\": \"billing\""), std::string::npos);
    } else if (line.command.find("/Complete") != std::string::npos) {
      EXPECT_NE(r.output.find("\"text\""), std::string::npos);
    }
  }

  // The /metrics examples (docs/metrics.md), after the requests above were counted.
  const std::vector<DocLine> metrics_lines = GatewayLines("curl ", "localhost:9464");
  ASSERT_GE(metrics_lines.size(), 1u) << "expected docs/metrics.md's curl example";
  for (const DocLine& line : metrics_lines) {
    const std::string command = absl::StrReplaceAll(
        line.command, {{"localhost:9464", absl::StrCat("127.0.0.1:", gateway.metrics_port())}});
    Result r = RunShell(command, shim_dir);
    SCOPED_TRACE(line.file + ": " + line.command + "\n" + r.output);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("turnpike_"), std::string::npos);
  }
}

}  // namespace
}  // namespace turnpike::testing
