// The gateway's Prometheus /metrics endpoint, scraped over real HTTP from a real gateway process
// after real requests: request counts by method, capability and code, the internal-overhead and
// time-to-first-token histograms, upstream attempts, circuit-breaker state, and that client input
// never becomes a label.
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port, "/v1");
  return absl::StrCat(R"({"version":"metrics-1","providers":[
    {"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"down","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"}
  ],"routes":[
    {"capability":"demo","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"flaky","targets":[{"provider":"down","model":"gpt-4o-mini"}],"allowUnauthenticated":true,
     "retry":{"maxAttempts":1},
     "circuitBreaker":{"consecutiveFailures":2,"baseEjectionMs":30000,"maxEjectionMs":60000}}
  ]})");
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=4"});
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    gateway_ = std::make_unique<Gateway>(dir_, Config(fake_->port()));
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    ASSERT_GT(gateway_->metrics_port(), 0) << gateway_->process().Log();
    stub_ = v1::CompletionService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Stream(const std::string& capability, const std::string& text) {
    v1::StreamCompletionRequest request;
    request.set_capability(capability);
    auto* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto reader = stub_->StreamCompletion(&ctx, request);
    v1::StreamCompletionResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<v1::CompletionService::Stub> stub_;
};

TEST_F(MetricsTest, CountsRequestsAndRecordsOverheadPerRequest) {
  // Each stream waits on the upstream between its 4 chunks (at least 3 x 40 ms), so the requests'
  // wall time is mostly upstream waits that the overhead must leave out.
  constexpr double kUpstreamWaitSeconds = 3 * 3 * 0.040;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Stream("demo", "hello there [[fake chunk_delay_ms=40]]").ok());
  }
  EXPECT_EQ(Stream("no-such-capability", "hi").error_code(), grpc::StatusCode::NOT_FOUND);

  // Requests are counted when they finish; the overhead once the exchange is released, which
  // may trail the client's last read by a moment.
  std::string page;
  ASSERT_TRUE(WaitFor(
      [&] {
        page = gateway_->Metrics();
        return MetricValue(
                   page,
                   R"(turnpike_internal_overhead_seconds_count{method="StreamCompletion"})") == 4;
      },
      std::chrono::seconds(5)))
      << page;
  EXPECT_EQ(
      MetricValue(
          page,
          R"(turnpike_requests_total{method="StreamCompletion",capability="demo",code="OK"})"),
      3)
      << page;
  // An unknown capability is counted with an empty capability label: client input never becomes
  // a label value.
  EXPECT_EQ(
      MetricValue(
          page,
          R"(turnpike_requests_total{method="StreamCompletion",capability="",code="NOT_FOUND"})"),
      1)
      << page;
  EXPECT_EQ(page.find("no-such-capability"), std::string::npos) << page;
  EXPECT_EQ(MetricValue(page, "turnpike_time_to_first_token_seconds_count"), 3) << page;
  EXPECT_EQ(
      MetricValue(
          page,
          R"(turnpike_upstream_attempts_total{provider="fake",model="gpt-4o-mini",disposition="ATTEMPT_DISPOSITION_SERVED"})"),
      3)
      << page;
  // The overhead is the gateway's own work, not the waits on the upstream. (With an upstream that
  // answers at once a request's wall time is itself mostly gateway work, and overhead, summed over
  // the threads that do it and closed after the duration is recorded, can exceed it by a hair on a
  // loaded machine: comparing the two then was a race. The upstream's waits are the margin.)
  const double overhead_sum =
      MetricValue(page, R"(turnpike_internal_overhead_seconds_sum{method="StreamCompletion"})");
  const double duration_sum =
      MetricValue(page, R"(turnpike_request_duration_seconds_sum{method="StreamCompletion"})");
  EXPECT_GE(duration_sum, kUpstreamWaitSeconds) << page;  // the waits happened
  EXPECT_GT(overhead_sum, 0);
  EXPECT_LT(overhead_sum, kUpstreamWaitSeconds) << "overhead counts upstream waits\n" << page;
  EXPECT_EQ(MetricValue(page, R"(turnpike_config_info{version="metrics-1"})"), 1) << page;
  EXPECT_GT(MetricValue(page, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_NE(page.find("# TYPE turnpike_internal_overhead_seconds histogram"), std::string::npos);
}

TEST_F(MetricsTest, ShowsAnOpenCircuit) {
  // Two 500s in a row open the "down" upstream's circuit (consecutiveFailures: 2).
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Stream("flaky", "[[fake status=500]] boom").error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  const std::string page = gateway_->Metrics();
  EXPECT_EQ(
      MetricValue(
          page,
          R"(turnpike_upstream_circuit_state{provider="down",model="gpt-4o-mini",credential=""})"),
      1)
      << page;
  EXPECT_EQ(
      MetricValue(
          page,
          R"(turnpike_upstream_circuit_opened_total{provider="down",model="gpt-4o-mini",credential=""})"),
      1)
      << page;
  const double remaining = MetricValue(
      page,
      R"(turnpike_upstream_circuit_open_remaining_seconds{provider="down",model="gpt-4o-mini",credential=""})");
  EXPECT_GT(remaining, 0) << page;
  EXPECT_LE(remaining, 60) << page;
  // The healthy upstream is not in the open state.
  Stream("demo", "hi");
  EXPECT_EQ(
      MetricValue(
          gateway_->Metrics(),
          R"(turnpike_upstream_circuit_state{provider="fake",model="gpt-4o-mini",credential=""})"),
      0);
}

TEST_F(MetricsTest, ServesOnlyTheMetricsPath) {
  const std::string base = absl::StrCat("http://127.0.0.1:", gateway_->metrics_port());
  EXPECT_EQ(HttpRequest("GET", base + "/metrics").status, 200);
  EXPECT_EQ(HttpRequest("GET", base + "/").status, 404);
  EXPECT_EQ(HttpRequest("POST", base + "/metrics", "x").status, 405);
}

TEST(MetricsFlags, ABusyMetricsPortIsAClearStartupError) {
  TempDir dir;
  FakeProvider fake(dir);
  ASSERT_GT(fake.port(), 0);
  // The fake provider's port is taken: the gateway must refuse to start and say why.
  Gateway gateway(dir, Config(fake.port()),
                  {absl::StrCat("--metrics_listen=127.0.0.1:", fake.port())});
  EXPECT_LE(gateway.port(), 0);
  const std::optional<int> code = gateway.process().Wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(gateway.process().Log().find("metrics: cannot listen on 127.0.0.1:"), std::string::npos)
      << gateway.process().Log();
}

}  // namespace
}  // namespace turnpike::testing
