#include "tools/bench/recorder.h"

#include <vector>

#include "gtest/gtest.h"
#include "tools/bench/load_plan.h"
#include "tools/bench/report.h"

namespace turnpike::bench {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(NearestRankTest, PicksTheNearestRank) {
  std::vector<int64_t> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(NearestRank(v, 0.50), 50);
  EXPECT_EQ(NearestRank(v, 0.99), 99);
  EXPECT_EQ(NearestRank(v, 0.999), 100);
  EXPECT_EQ(NearestRank(v, 0.0), 1);
  EXPECT_EQ(NearestRank({}, 0.5), -1);
}

TEST(SummarizeTest, MicrosecondsAndEmpty) {
  std::vector<int64_t> v = {3000, 1000, 2000};
  const Distribution d = Summarize(v);
  EXPECT_EQ(d.count, 3);
  EXPECT_DOUBLE_EQ(d.p50_us, 2.0);
  EXPECT_DOUBLE_EQ(d.max_us, 3.0);
  EXPECT_DOUBLE_EQ(d.mean_us, 2.0);
  std::vector<int64_t> empty;
  EXPECT_EQ(Summarize(empty).p99_us, -1);
}

TEST(CallTimerTest, RecordsLatencyTtftAndGaps) {
  Recorder r(Window{10 * kMs, 100 * kMs});
  CallTimer t;
  t.Start(r, 20 * kMs, 0);
  t.OnMessage(r, 21 * kMs, false);  // start message: not a token
  t.OnMessage(r, 23 * kMs, true);   // first delta
  t.OnMessage(r, 24 * kMs, true);
  t.OnMessage(r, 27 * kMs, true);
  t.OnMessage(r, 28 * kMs, false);  // finish message
  t.Finish(r, 29 * kMs, "");
  EXPECT_EQ(r.started, 1);
  EXPECT_EQ(r.measured, 1);
  EXPECT_EQ(r.ok, 1);
  EXPECT_EQ(r.window_ok, 1);
  EXPECT_EQ(r.latency_ns, std::vector<int64_t>{9 * kMs});
  EXPECT_EQ(r.ttft_ns, std::vector<int64_t>{3 * kMs});
  EXPECT_EQ(r.gap_ns, (std::vector<int64_t>{1 * kMs, 3 * kMs}));
}

TEST(CallTimerTest, WarmupCallsCountForThroughputOnlyIfTheyEndInTheWindow) {
  Recorder r(Window{10 * kMs, 100 * kMs});
  CallTimer t;
  t.Start(r, 5 * kMs, 0);
  t.OnMessage(r, 6 * kMs, true);
  t.OnMessage(r, 7 * kMs, true);
  t.Finish(r, 12 * kMs, "");
  EXPECT_EQ(r.measured, 0);
  EXPECT_EQ(r.ok, 0);
  EXPECT_EQ(r.window_ok, 1);
  EXPECT_TRUE(r.latency_ns.empty());
  EXPECT_TRUE(r.gap_ns.empty());
}

TEST(CallTimerTest, ErrorsAndStalls) {
  Recorder r(Window{0, 100 * kMs});
  CallTimer failed;
  failed.Start(r, 1 * kMs, 0);
  failed.Finish(r, 2 * kMs, "UNAVAILABLE");
  CallTimer slow;
  slow.Start(r, 1 * kMs, 5 * kMs);
  slow.OnMessage(r, 2 * kMs, true);
  slow.OnMessage(r, 9 * kMs, true);  // 7 ms gap > 5 ms
  slow.Finish(r, 10 * kMs, "");
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.error_counts["UNAVAILABLE"], 1);
  EXPECT_EQ(r.ok, 1);
  EXPECT_EQ(r.stalled, 1);
  EXPECT_EQ(r.window_ok, 1);
}

TEST(RecorderTest, MergeAddsEverything) {
  Recorder a(Window{0, 10});
  Recorder b(Window{0, 10});
  a.ok = 2;
  a.latency_ns = {1, 2};
  b.ok = 3;
  b.latency_ns = {3};
  b.error_counts["X"] = 4;
  b.last_end_ns = 9;
  a.Merge(b);
  EXPECT_EQ(a.ok, 5);
  EXPECT_EQ(a.latency_ns.size(), 3u);
  EXPECT_EQ(a.error_counts["X"], 4);
  EXPECT_EQ(a.last_end_ns, 9);
}

TEST(ReportTest, SummaryLineHasEveryFieldAndMinusOneWhenMissing) {
  Recorder r(Window{0, 1'000'000'000});
  CallTimer t;
  t.Start(r, 0, 0);
  t.Finish(r, 500'000, "");  // unary-like: no tokens
  RunInfo info;
  info.name = "x";
  const RunReport report = BuildReport(info, r);
  const std::string line = FormatSummaryLine(report);
  EXPECT_EQ(line.rfind("bench-run: name=x started=1 ok=1 errors=0 stalled=0 not_sent=0", 0), 0u)
      << line;
  EXPECT_NE(line.find(" p50_us=500 "), std::string::npos) << line;
  EXPECT_NE(line.find(" ttft_p50_us=-1 "), std::string::npos) << line;
  // The run ended before its window: throughput is over the time the calls took.
  EXPECT_NE(line.find(" rps=2000 "), std::string::npos) << line;
  EXPECT_NE(FormatJson(report).find("\"throughput_per_s\":"), std::string::npos);
}

}  // namespace
}  // namespace turnpike::bench
