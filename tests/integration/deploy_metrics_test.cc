// The deploy files (deploy/prometheus/alerts.yml, deploy/grafana/turnpike.json) against the
// metrics live services really export: a fake provider, turnpike-control with a priced model and a
// budget, and a gateway watching it serve one stream and one unary completion; then every metric
// name in every expression of the two files must have a sample on the gateway's or the control
// plane's /metrics (tests/deploy/metric_names.py does the PromQL reading). Also checks the
// OpenTelemetry GenAI series and the budget gauges on those pages, and that the check fails when
// a name is missing.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;

constexpr char kBudgetSeries[] =
    "{budget=\"deploy-daily\",capability=\"demo\",caller=\"\",tier=\"\"}";
constexpr char kGenAiChat[] =
    "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
    "gen_ai_request_model=\"model-0\"";

struct NameCheck {
  int exit_code = -1;
  std::string output;
};

// Runs tests/deploy/metric_names.py on the pages against both deploy files.
NameCheck CheckNames(const TempDir& dir, const std::string& gateway_page,
                     const std::string& control_page) {
  std::ofstream(dir.File("gateway.metrics")) << gateway_page;
  std::ofstream(dir.File("control.metrics")) << control_page;
  const std::string source = SOURCE_DIR;
  const std::string cmd = absl::StrCat(
      PYTHON3, " ", source, "/tests/deploy/metric_names.py --page=", dir.File("gateway.metrics"),
      " --page=", dir.File("control.metrics"), " ", source, "/deploy/prometheus/alerts.yml ",
      source, "/deploy/grafana/turnpike.json 2>&1");
  NameCheck run;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) run.output.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(DeployMetricsTest, EveryMetricTheAlertsAndTheDashboardNameIsExportedByTheServices) {
  TempDir dir;
  FakeProvider fake(dir);
  ASSERT_GT(fake.port(), 0) << fake.process().Log();
  ControlPlane control(dir);
  ASSERT_GT(control.port(), 0) << control.process().Log();
  Admin admin(control.address(), control.admin_token());
  ASSERT_TRUE(admin.SeedDemo(fake.port(), "model-0").ok());
  auto admin_stub =
      admin::v1::AdminService::NewStub(ControlChannel(control.address(), control.admin_token()));
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreatePriceRequest price;
    price.mutable_price()->mutable_spec()->set_provider("fake");
    price.mutable_price()->mutable_spec()->set_model("model-0");
    price.mutable_price()->mutable_spec()->set_input_usd_micros_per_mtok(1'000'000);
    price.mutable_price()->mutable_spec()->set_output_usd_micros_per_mtok(10'000'000);
    admin::v1::CreatePriceResponse created;
    grpc::Status s = admin_stub->CreatePrice(&ctx, price, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateBudgetRequest req;
    config::v1::Budget* spec = req.mutable_budget()->mutable_spec();
    spec->set_name("deploy-daily");
    spec->set_capability(kCapability);
    spec->set_limit_usd_micros(1'000'000);
    spec->set_window(config::v1::BUDGET_WINDOW_DAILY);
    admin::v1::CreateBudgetResponse resp;
    grpc::Status s = admin_stub->CreateBudget(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  WatchSource source;
  source.control_plane = control.address();
  source.node_id = "deploy-gw";
  source.node_token_file = dir.File("deploy-gw.token");
  ASSERT_TRUE(admin.WriteNodeToken(source.node_id, source.node_token_file).ok());
  Gateway gateway(dir, source);
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();
  ASSERT_TRUE(WaitFor([&] { return admin.AllAckedCurrent({"deploy-gw"}); }, seconds(20)));

  GatewayClient client(gateway.address());
  GatewayClient::Served streamed = client.Stream();
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message() << gateway.process().Log();
  GatewayClient::Served unary = client.Complete();
  ASSERT_TRUE(unary.status.ok()) << unary.status.error_message();

  // Requests are counted after the caller is answered: wait for both on the page.
  std::string gateway_page;
  ASSERT_TRUE(WaitFor(
      [&] {
        gateway_page = gateway.Metrics();
        return MetricValue(gateway_page,
                           absl::StrCat("gen_ai_server_request_duration_seconds_count{", kGenAiChat,
                                        ",error_type=\"\"}")) == 2;
      },
      seconds(10)))
      << gateway_page;
  const std::string control_page = control.Metrics();

  // The GenAI view of the two requests: one streamed (a first token), both with usage.
  EXPECT_EQ(
      MetricValue(gateway_page, absl::StrCat("gen_ai_server_time_to_first_token_seconds_count{",
                                             kGenAiChat, "}")),
      1)
      << gateway_page;
  EXPECT_EQ(MetricValue(gateway_page, absl::StrCat("gen_ai_client_token_usage_count{", kGenAiChat,
                                                   ",gen_ai_token_type=\"output\"}")),
            2);
  EXPECT_GT(MetricValue(gateway_page, absl::StrCat("gen_ai_client_token_usage_sum{", kGenAiChat,
                                                   ",gen_ai_token_type=\"input\"}")),
            0);
  // The budget as the control plane holds it: the gateway's lease reserves part of it.
  EXPECT_EQ(
      MetricValue(control_page, absl::StrCat("turnpike_budget_limit_usd_micros", kBudgetSeries)),
      1'000'000)
      << control_page;
  const double spent =
      MetricValue(control_page, absl::StrCat("turnpike_budget_spent_usd_micros", kBudgetSeries));
  const double reserved =
      MetricValue(control_page, absl::StrCat("turnpike_budget_reserved_usd_micros", kBudgetSeries));
  const double remaining = MetricValue(
      control_page, absl::StrCat("turnpike_budget_remaining_usd_micros", kBudgetSeries));
  EXPECT_GT(reserved, 0);
  EXPECT_EQ(spent + reserved + remaining, 1'000'000);

  NameCheck run = CheckNames(dir, gateway_page, control_page);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("gen_ai_server_time_to_first_token_seconds_bucket"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("turnpike_budget_remaining_usd_micros"), std::string::npos)
      << run.output;

  // The check can fail: without the GenAI series the alerts' and the dashboard's names are
  // missing.
  std::string without_gen_ai;
  for (absl::string_view line : absl::StrSplit(gateway_page, '\n')) {
    if (!absl::StartsWith(line, "gen_ai_")) absl::StrAppend(&without_gen_ai, line, "\n");
  }
  NameCheck missing = CheckNames(dir, without_gen_ai, control_page);
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("gen_ai_server_time_to_first_token_seconds_bucket is not exported"),
            std::string::npos)
      << missing.output;
}

}  // namespace
}  // namespace turnpike::testing
