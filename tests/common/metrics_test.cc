// MetricsRegistry's Prometheus text rendering, label escaping, histogram buckets and quantiles,
// collectors, concurrent updates, and MetricsHttpServer over a real socket.
#include "common/metrics.h"

#include <curl/curl.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics_http_server.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(Metrics, RendersCountersAndGaugesWithSortedLabels) {
  MetricsRegistry r;
  auto& requests = r.AddCounter("x_requests_total", "Requests.", {"method", "code"});
  requests.With({"Stream", "OK"}).Add(3);
  requests.With({"Complete", "UNAVAILABLE"}).Add();
  r.AddGauge("x_in_flight", "In flight.").With({}).Set(2.5);
  EXPECT_EQ(r.Render(),
            "# HELP x_requests_total Requests.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{method=\"Complete\",code=\"UNAVAILABLE\"} 1\n"
            "x_requests_total{method=\"Stream\",code=\"OK\"} 3\n"
            "# HELP x_in_flight In flight.\n"
            "# TYPE x_in_flight gauge\n"
            "x_in_flight 2.5\n");
}

TEST(Metrics, EscapesLabelValues) {
  MetricsRegistry r;
  r.AddCounter("x_total", "X.", {"name"}).With({"a\"b\\c\nd"}).Add();
  EXPECT_NE(r.Render().find("x_total{name=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos)
      << r.Render();
}

TEST(Metrics, RegisteringTwiceReturnsTheSameFamily) {
  MetricsRegistry r;
  auto& a = r.AddCounter("x_total", "X.");
  auto& b = r.AddCounter("x_total", "X.");
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.With({}), &b.With({}));
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry r;
  auto& h = r.AddHistogram("x_seconds", "X.", {0.001, 0.01}).With({});
  h.ObserveNanos(500'000);        // 0.5 ms -> le 0.001
  h.ObserveNanos(1'000'000);      // exactly 1 ms -> le 0.001 (bounds are inclusive)
  h.ObserveNanos(5'000'000);      // 5 ms -> le 0.01
  h.ObserveNanos(2'000'000'000);  // 2 s -> +Inf only
  EXPECT_EQ(r.Render(),
            "# HELP x_seconds X.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.001\"} 2\n"
            "x_seconds_bucket{le=\"0.01\"} 3\n"
            "x_seconds_bucket{le=\"+Inf\"} 4\n"
            "x_seconds_sum 2.0065\n"
            "x_seconds_count 4\n");
}

TEST(Metrics, CountHistogramsTakeWholeNumbersInTheirOwnUnit) {
  MetricsRegistry r;
  auto& h = r.AddCountHistogram("x_tokens", "X.", {1, 4, 16}).With({"in"});
  h.ObserveCount(1);
  h.ObserveCount(10);
  h.ObserveCount(3'000'000'000);  // would overflow a sum kept in nanoseconds after a few
  h.ObserveCount(3'000'000'000);
  h.ObserveCount(3'000'000'000);
  h.ObserveCount(3'000'000'000);
  EXPECT_EQ(r.Render(),
            "# HELP x_tokens X.\n"
            "# TYPE x_tokens histogram\n"
            "x_tokens_bucket{le=\"1\"} 1\n"
            "x_tokens_bucket{le=\"4\"} 1\n"
            "x_tokens_bucket{le=\"16\"} 2\n"
            "x_tokens_bucket{le=\"+Inf\"} 6\n"
            "x_tokens_sum 12000000011\n"
            "x_tokens_count 6\n");
}

TEST(Metrics, GenAiBucketsAreTheConventionsRecommendedBoundaries) {
  EXPECT_EQ(GenAiRequestDurationBuckets().front(), 0.01);
  EXPECT_EQ(GenAiRequestDurationBuckets().back(), 81.92);
  EXPECT_EQ(GenAiRequestDurationBuckets().size(), 14u);
  EXPECT_EQ(GenAiTimeToFirstTokenBuckets().front(), 0.001);
  EXPECT_EQ(GenAiTimeToFirstTokenBuckets().back(), 10.0);
  EXPECT_EQ(GenAiTimeToFirstTokenBuckets().size(), 16u);
  const std::vector<double> tokens = GenAiTokenUsageBuckets();
  ASSERT_EQ(tokens.size(), 14u);
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], std::pow(4.0, i)) << i;
}

TEST(Metrics, QuantilesInterpolateWithinTheBucket) {
  Histogram h({0.001, 0.002, 0.004});
  EXPECT_TRUE(std::isnan(h.Take().Quantile(0.5)));
  for (int i = 0; i < 50; ++i) h.ObserveNanos(500'000);    // (0, 1 ms]
  for (int i = 0; i < 50; ++i) h.ObserveNanos(1'500'000);  // (1, 2 ms]
  const Histogram::Snapshot s = h.Take();
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.Quantile(0.5), 0.001);
  EXPECT_DOUBLE_EQ(s.Quantile(0.25), 0.0005);
  EXPECT_DOUBLE_EQ(s.Quantile(0.99), 0.001 + 0.001 * 49.0 / 50.0);
}

TEST(Metrics, CollectorsRunAtRenderTime) {
  MetricsRegistry r;
  int calls = 0;
  r.AddCollector("x_state", "State.", MetricsRegistry::Type::kGauge, {"upstream"}, [&] {
    ++calls;
    return std::vector<MetricSample>{{{"b"}, 1}, {{"a"}, 0}};
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(r.Render(),
            "# HELP x_state State.\n# TYPE x_state gauge\nx_state{upstream=\"a\"} 0\n"
            "x_state{upstream=\"b\"} 1\n");
  EXPECT_EQ(calls, 1);
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry r;
  auto& family = r.AddCounter("x_total", "X.", {"thread"});
  auto& h = r.AddHistogram("x_seconds", "X.", MicrosToSecondsBuckets()).With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        family.With({t % 2 == 0 ? "even" : "odd"}).Add();
        h.ObserveNanos(1000 * (i % 100));
      }
    });
  }
  std::thread reader([&] {
    for (int i = 0; i < 50; ++i) r.Render();
  });
  for (auto& t : threads) t.join();
  reader.join();
  EXPECT_EQ(family.With({"even"}).value(), 20000);
  EXPECT_EQ(family.With({"odd"}).value(), 20000);
  EXPECT_EQ(h.Take().count, 40000u);
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

long Get(const std::string& url, std::string* body, std::string* content_type = nullptr) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (content_type != nullptr && type != nullptr) *content_type = type;
  }
  curl_easy_cleanup(curl);
  return status;
}

TEST(MetricsHttpServer, ServesTheRegistryOverHttp) {
  MetricsRegistry r;
  auto& c = r.AddCounter("x_total", "X.").With({});
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1:0", r);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  c.Add(7);
  std::string body, type;
  EXPECT_EQ(Get(base + "/metrics", &body, &type), 200);
  EXPECT_NE(body.find("x_total 7\n"), std::string::npos) << body;
  EXPECT_EQ(type, "text/plain; version=0.0.4; charset=utf-8");
  body.clear();
  EXPECT_EQ(Get(base + "/other", &body), 404);
  (*server)->Stop();
  (*server)->Stop();  // idempotent
  body.clear();
  EXPECT_EQ(Get(base + "/metrics", &body), 0);  // connection refused once stopped
}

TEST(MetricsHttpServer, RejectsABadOrBusyAddress) {
  MetricsRegistry r;
  EXPECT_EQ(MetricsHttpServer::Start("no-port", r).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start("127.0.0.1:0", r);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string((*first)->port()), r);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnpike
