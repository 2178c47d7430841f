// RequestTelemetry's OpenTelemetry GenAI series (docs/metrics.md, "OpenTelemetry GenAI names"):
// which finished requests they count, with which labels, buckets and units, and that recording
// through the per-thread caches loses nothing across threads or GatewayMetrics instances.
#include "server/telemetry/request_telemetry.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

// The value of the series `name{labels}` exactly as rendered; -1 if absent.
double MetricValue(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

RequestFinished Served(RequestMethod method, config::v1::ProviderKind kind,
                       const std::string& model) {
  RequestFinished e;
  e.method = method;
  e.capability = "summarize";
  e.provider = "openai-prod";
  e.provider_kind = kind;
  e.model = model;
  e.latency = absl::Milliseconds(300);
  e.time_to_first_token = absl::Milliseconds(30);
  e.input_tokens = 100;
  e.output_tokens = 20;
  return e;
}

constexpr char kChat[] =
    "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
    "gen_ai_request_model=\"gpt-4o\"";

TEST(RequestTelemetryGenAi, AServedStreamIsCountedWithTheConventionsNamesLabelsAndBuckets) {
  GatewayMetrics metrics;
  RequestTelemetry telemetry(false, &metrics);
  telemetry.OnRequestFinished(
      Served(RequestMethod::kStreamCompletion, config::v1::PROVIDER_KIND_OPENAI, "gpt-4o"));
  const std::string page = metrics.registry().Render();
  const std::string chat = kChat;
  // Duration: the convention's buckets (0.01 ... 81.92 s); 0.3 s falls in le 0.32.
  EXPECT_EQ(MetricValue(page, "gen_ai_server_request_duration_seconds_bucket{" + chat +
                                  ",error_type=\"\",le=\"0.16\"}"),
            0);
  EXPECT_EQ(MetricValue(page, "gen_ai_server_request_duration_seconds_bucket{" + chat +
                                  ",error_type=\"\",le=\"0.32\"}"),
            1);
  EXPECT_EQ(MetricValue(page, "gen_ai_server_request_duration_seconds_bucket{" + chat +
                                  ",error_type=\"\",le=\"81.92\"}"),
            1);
  EXPECT_DOUBLE_EQ(
      MetricValue(page, "gen_ai_server_request_duration_seconds_sum{" + chat + ",error_type=\"\"}"),
      0.3);
  // Time to first token: 30 ms, in le 0.04 and not in le 0.02.
  EXPECT_EQ(MetricValue(
                page, "gen_ai_server_time_to_first_token_seconds_bucket{" + chat + ",le=\"0.02\"}"),
            0);
  EXPECT_EQ(MetricValue(
                page, "gen_ai_server_time_to_first_token_seconds_bucket{" + chat + ",le=\"0.04\"}"),
            1);
  // Tokens are counted in tokens (powers of 4 from 1), not scaled like seconds.
  EXPECT_EQ(MetricValue(page, "gen_ai_client_token_usage_bucket{" + chat +
                                  ",gen_ai_token_type=\"input\",le=\"64\"}"),
            0);
  EXPECT_EQ(MetricValue(page, "gen_ai_client_token_usage_bucket{" + chat +
                                  ",gen_ai_token_type=\"input\",le=\"256\"}"),
            1);
  EXPECT_EQ(
      MetricValue(page, "gen_ai_client_token_usage_sum{" + chat + ",gen_ai_token_type=\"input\"}"),
      100);
  EXPECT_EQ(
      MetricValue(page, "gen_ai_client_token_usage_sum{" + chat + ",gen_ai_token_type=\"output\"}"),
      20);
  EXPECT_NE(page.find("# TYPE gen_ai_client_token_usage histogram"), std::string::npos);
}

TEST(RequestTelemetryGenAi, AFailedRequestCarriesItsErrorTypeAndNoFirstTokenOrUsage) {
  GatewayMetrics metrics;
  RequestTelemetry telemetry(false, &metrics);
  RequestFinished e =
      Served(RequestMethod::kStreamCompletion, config::v1::PROVIDER_KIND_OPENAI, "gpt-4o");
  e.status = absl::UnavailableError("every target failed");
  e.time_to_first_token = absl::InfiniteDuration();
  e.input_tokens = 0;
  e.output_tokens = 0;
  telemetry.OnRequestFinished(e);
  const std::string page = metrics.registry().Render();
  EXPECT_EQ(MetricValue(page, std::string("gen_ai_server_request_duration_seconds_count{") + kChat +
                                  ",error_type=\"UNAVAILABLE\"}"),
            1);
  EXPECT_EQ(page.find("gen_ai_server_time_to_first_token_seconds_count"), std::string::npos);
  EXPECT_EQ(page.find("gen_ai_client_token_usage_count"), std::string::npos);
}

TEST(RequestTelemetryGenAi, RequestsNoModelAnsweredAreNotGenAiOperations) {
  GatewayMetrics metrics;
  RequestTelemetry telemetry(false, &metrics);
  RequestFinished refused;
  refused.refused = true;
  refused.status = absl::PermissionDeniedError("no");
  telemetry.OnRequestFinished(refused);
  RequestFinished cached = Served(RequestMethod::kComplete, config::v1::PROVIDER_KIND_UNSPECIFIED,
                                  "gpt-4o");  // a cache hit: no model was asked
  cached.cache_hit = true;
  telemetry.OnRequestFinished(cached);
  const std::string page = metrics.registry().Render();
  EXPECT_EQ(page.find("gen_ai_server_request_duration_seconds_count"), std::string::npos) << page;
  // Turnpike's own request counter still counts both.
  EXPECT_NE(page.find("turnpike_requests_total{method=\"Complete\""), std::string::npos);
}

TEST(RequestTelemetryGenAi, EmbeddingsAndUnaryChatAndEachProviderKindAreLabelledByTheConvention) {
  GatewayMetrics metrics;
  RequestTelemetry telemetry(false, &metrics);
  telemetry.OnRequestFinished(
      Served(RequestMethod::kEmbed, config::v1::PROVIDER_KIND_GEMINI, "text-embedding-004"));
  telemetry.OnRequestFinished(
      Served(RequestMethod::kComplete, config::v1::PROVIDER_KIND_ANTHROPIC, "claude"));
  telemetry.OnRequestFinished(
      Served(RequestMethod::kComplete, config::v1::PROVIDER_KIND_AZURE_OPENAI, "gpt-4o"));
  telemetry.OnRequestFinished(
      Served(RequestMethod::kComplete, config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE, "llama"));
  const std::string page = metrics.registry().Render();
  const std::string embed =
      "gen_ai_operation_name=\"embeddings\",gen_ai_provider_name=\"gcp.gemini\","
      "gen_ai_request_model=\"text-embedding-004\"";
  EXPECT_EQ(MetricValue(
                page, "gen_ai_client_token_usage_count{" + embed + ",gen_ai_token_type=\"input\"}"),
            1);
  // An embedding has no output tokens and no first token.
  EXPECT_EQ(MetricValue(page, "gen_ai_client_token_usage_count{" + embed +
                                  ",gen_ai_token_type=\"output\"}"),
            -1);
  EXPECT_EQ(page.find("gen_ai_server_time_to_first_token_seconds_count"), std::string::npos);
  for (const char* provider : {"anthropic", "azure.ai.openai", "openai_compatible"}) {
    EXPECT_NE(page.find(absl::StrCat("gen_ai_server_request_duration_seconds_count{gen_ai_"
                                     "operation_name=\"chat\",gen_ai_provider_name=\"",
                                     provider, "\"")),
              std::string::npos)
        << provider;
  }
}

TEST(RequestTelemetryGenAi, RecordingFromManyThreadsAndTwoRegistriesLosesNothing) {
  GatewayMetrics a;
  GatewayMetrics b;
  RequestTelemetry to_a(false, &a);
  RequestTelemetry to_b(false, &b);
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Alternating registries on one thread drops and refills the thread's cache.
        RequestTelemetry& to = (i % 3 == 0) ? to_b : to_a;
        to.OnRequestFinished(Served(RequestMethod::kStreamCompletion,
                                    config::v1::PROVIDER_KIND_OPENAI, (t % 2) ? "gpt-4o" : "mini"));
      }
    });
  }
  for (auto& th : threads) th.join();
  double total_a = 0, total_b = 0;
  for (const char* model : {"gpt-4o", "mini"}) {
    const std::string series = absl::StrCat(
        "gen_ai_server_request_duration_seconds_count{gen_ai_operation_name=\"chat\","
        "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"",
        model, "\",error_type=\"\"}");
    total_a += MetricValue(a.registry().Render(), series);
    total_b += MetricValue(b.registry().Render(), series);
  }
  const int to_b_per_thread = (kPerThread + 2) / 3;
  EXPECT_EQ(total_b, kThreads * to_b_per_thread);
  EXPECT_EQ(total_a, kThreads * (kPerThread - to_b_per_thread));
}

}  // namespace
}  // namespace turnpike
