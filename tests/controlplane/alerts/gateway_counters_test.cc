// The two rule kinds over what gateways report (admission refusals, the usage spool), on a
// simulated clock: health reports go through a real DataPlaneRegistry (which keeps the counter
// history), the rules observe what it kept, and the evaluator fires and resolves. Four gateways
// each refusing below the threshold make one alert above it; a gateway restarting mid-window
// (its counter back to zero, a new process start) neither hides nor doubles its refusals; a spool
// backing up fires for its gateway only, by records or by age.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/alerts/alert_evaluator.h"
#include "controlplane/alerts/alert_rules.h"
#include "controlplane/alerts/gateway_counters.h"
#include "controlplane/data_plane_registry.h"
#include "controlplane/proto_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/controlplane/alerts/fake_alert_signals.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using testing::FakeAlertSignals;
using ::testing::HasSubstr;

a::AlertRule Rule(const std::string& text) {
  a::AlertRule r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &r)) << text;
  EXPECT_TRUE(AlertRules::ValidateRule(r).ok()) << text;
  return r;
}

class GatewayCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      const std::string id = absl::StrCat("gw-", i);
      registry_.Connected(id, "127.0.0.1:1", "test");
      started_[i] = clock_.Now() - absl::Seconds(1);
    }
  }

  // Gateway `i` reports `refused` rate-limit refusals of `capability` (and 1 budget refusal,
  // which the rule does not count), and optionally a spool.
  void Report(int i, int64_t refused, const std::string& capability = "summaries",
              const config::v1::UsageSpoolState* spool = nullptr) {
    config::v1::ReportHealthRequest r;
    r.set_node_id(absl::StrCat("gw-", i));
    *r.mutable_process_start() = ToTimestamp(started_[i]);
    config::v1::AdmissionRefusals* c = r.add_admission_refusals();
    c->set_capability(capability);
    c->set_rate_limited(refused);
    c->set_budget_exhausted(1000);
    if (spool != nullptr) *r.mutable_usage_spool() = *spool;
    ASSERT_TRUE(registry_.ReportedHealth(r).ok());
  }

  // What LiveAlertSignals::Gateways() builds, from the real registry.
  void Publish() {
    std::vector<GatewaySignal> out;
    auto history = registry_.CounterHistory();
    for (const admin::v1::DataPlane& d : registry_.List("", 0)) {
      GatewaySignal g;
      g.node_id = d.node_id();
      g.connected = d.connected();
      g.last_seen = clock_.Now();
      g.counters = history[d.node_id()];
      out.push_back(std::move(g));
    }
    signals_.SetGateways(std::move(out));
  }

  std::vector<Notification> Step(const a::AlertRule& rule) {
    Publish();
    auto seen = ObserveRule(rule, signals_, clock_.Now());
    EXPECT_TRUE(seen.ok()) << seen.status();
    if (!seen.ok()) return {};
    return evaluator_.Evaluate(rule, *seen);
  }

  SimulatedClock clock_;
  DataPlaneRegistry registry_{clock_};
  FakeAlertSignals signals_;
  AlertEvaluator evaluator_{clock_, AlertEvaluator::Options{}};
  absl::Time started_[4];
};

TEST_F(GatewayCountersTest, RefusalsSummedOverFourGatewaysFireOnceAndResolveThroughARestart) {
  const a::AlertRule rule = Rule(R"(name: "refusals" kind: ALERT_KIND_RATE_LIMIT_REFUSALS
      threshold: 10 window { seconds: 300 } channels: "ops")");
  // Every 15 s each gateway refuses one more request: 4 a minute each, below the threshold
  // alone; summed, (k+1)*4 over 5 minutes at step k passes 10 a minute at k = 12. Gateway 0
  // restarts at k = 8 (its counter starts again from 1), which must change nothing.
  int64_t counter[4] = {0, 0, 0, 0};
  int fired_at = -1;
  int resolved_at = -1;
  for (int k = 0; k <= 40; ++k) {
    if (k == 8) {
      started_[0] = clock_.Now() - absl::Seconds(1);
      counter[0] = 0;
    }
    for (int i = 0; i < 4; ++i) {
      if (k <= 20) ++counter[i];  // they stop refusing after k = 20
      Report(i, counter[i]);
    }
    for (const Notification& n : Step(rule)) {
      EXPECT_EQ(n.alert.subject(), "summaries");
      if (n.event == a::ALERT_STATE_FIRING) {
        EXPECT_EQ(fired_at, -1) << "fired twice";
        fired_at = k;
        EXPECT_DOUBLE_EQ(n.alert.value(), 52.0 / 5);
        EXPECT_THAT(n.alert.summary(), HasSubstr("refused 52 request(s) over 5m on 4 gateway(s)"));
      } else {
        EXPECT_EQ(resolved_at, -1) << "resolved twice";
        resolved_at = k;
      }
    }
    clock_.Advance(absl::Seconds(15));
  }
  EXPECT_EQ(fired_at, 12);
  // At step m > 20 the window holds 40 - m refusals per gateway: 4 * (40 - m) <= 50 from m = 28.
  EXPECT_EQ(resolved_at, 28);
}

TEST_F(GatewayCountersTest, RefusalsOfOtherCapabilitiesAreNotCounted) {
  const a::AlertRule rule = Rule(R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS
      capability: "summaries" threshold: 1 window { seconds: 60 } channels: "ops")");
  Report(0, 0, "embeddings");
  EXPECT_TRUE(Step(rule).empty());
  clock_.Advance(absl::Seconds(15));
  Report(0, 500, "embeddings");
  EXPECT_TRUE(Step(rule).empty());
  EXPECT_TRUE(evaluator_.Alerts().empty());
  Report(0, 5);  // summaries: 5 since a process start within the window
  std::vector<Notification> fired = Step(rule);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].alert.subject(), "summaries");
}

TEST_F(GatewayCountersTest, RefusalsBeforeTheWindowWithoutABaselineAreNotCounted) {
  // A gateway that started long ago and reports for the first time: what it counted before the
  // window is unknown, so its first report is the baseline, not a burst.
  started_[0] = clock_.Now() - absl::Hours(2);
  const a::AlertRule rule = Rule(R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS
      threshold: 1 window { seconds: 60 } channels: "ops")");
  Report(0, 100000);
  EXPECT_TRUE(Step(rule).empty());
  clock_.Advance(absl::Seconds(15));
  Report(0, 100100);  // 100 in 15 s: 100 a minute
  std::vector<Notification> fired = Step(rule);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_DOUBLE_EQ(fired[0].alert.value(), 100);
}

TEST_F(GatewayCountersTest, ASpoolBackingUpFiresForItsGatewayByRecordsOrAgeAndResolves) {
  const a::AlertRule by_records = Rule(R"(name: "spool" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG
      spool_records: 1000 channels: "ops")");
  const a::AlertRule by_age = Rule(R"(name: "spool-age" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG
      spool_age { seconds: 300 } channels: "ops")");
  config::v1::UsageSpoolState healthy;
  healthy.set_pending_records(3);
  healthy.mutable_oldest_pending_age()->set_seconds(1);
  config::v1::UsageSpoolState backed_up;
  backed_up.set_pending_records(5000);
  backed_up.set_pending_bytes(1000000);
  backed_up.mutable_oldest_pending_age()->set_seconds(600);
  backed_up.set_dropped_records(7);
  for (int i = 0; i < 4; ++i) Report(i, 0, "summaries", &healthy);
  EXPECT_TRUE(Step(by_records).empty());
  EXPECT_TRUE(Step(by_age).empty());

  Report(2, 0, "summaries", &backed_up);
  for (const a::AlertRule& rule : {by_records, by_age}) {
    std::vector<Notification> fired = Step(rule);
    ASSERT_EQ(fired.size(), 1u) << rule.name();
    EXPECT_EQ(fired[0].event, a::ALERT_STATE_FIRING);
    EXPECT_EQ(fired[0].alert.subject(), "gw-2");
    EXPECT_DOUBLE_EQ(fired[0].alert.value(), 5000);
    EXPECT_THAT(fired[0].alert.summary(), HasSubstr("holds 5000 record(s)"));
    EXPECT_THAT(fired[0].alert.summary(), HasSubstr("7 dropped"));
  }
  clock_.Advance(absl::Seconds(15));
  EXPECT_TRUE(Step(by_records).empty()) << "a firing alert notifies once";

  // A gone gateway's last report is stale: its alert resolves (GATEWAY_SILENT covers it) ...
  registry_.Disconnected("gw-2");
  std::vector<Notification> resolved = Step(by_records);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].event, a::ALERT_STATE_RESOLVED);
  // ... and so does one whose spool drains.
  ASSERT_EQ(Step(by_age).size(), 1u);
  registry_.Connected("gw-2", "127.0.0.1:1", "test");
  Report(2, 0, "summaries", &backed_up);
  clock_.Advance(absl::Hours(1));  // past the cooldown
  ASSERT_EQ(Step(by_records).size(), 1u);
  Report(2, 0, "summaries", &healthy);
  resolved = Step(by_records);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].event, a::ALERT_STATE_RESOLVED);
}

TEST_F(GatewayCountersTest, TheRegistryKeepsAnHourOfSamplesAndOneBaselineBeforeIt) {
  for (int k = 0; k < 300; ++k) {  // 300 reports, 15 s apart: 75 minutes
    Report(0, k);
    clock_.Advance(absl::Seconds(15));
  }
  auto history = registry_.CounterHistory();
  const std::vector<CounterSample>& samples = history["gw-0"];
  ASSERT_FALSE(samples.empty());
  const absl::Time last = samples.back().received;
  EXPECT_LE(samples.front().received, last - DataPlaneRegistry::kCounterHistory);
  EXPECT_GT(samples[1].received, last - DataPlaneRegistry::kCounterHistory);
  EXPECT_EQ(samples.size(), 241u);  // an hour of 15 s reports, both ends included
  EXPECT_EQ(samples.back().counters.admission_refusals(0).rate_limited(), 299);
  EXPECT_FALSE(samples.back().counters.has_usage_spool());
  EXPECT_EQ(samples.back().counters.upstreams_size(), 0);

  // A burst of reports a second apart (prompt reports) keeps at most two samples per 5 s, the
  // newest last: 0, 4, 8, 12, 16 and 19 of these 20.
  for (int k = 0; k < 20; ++k) {
    Report(1, k);
    clock_.Advance(absl::Seconds(1));
  }
  history = registry_.CounterHistory();
  EXPECT_EQ(history["gw-1"].size(), 6u);
  EXPECT_EQ(history["gw-1"].back().counters.admission_refusals(0).rate_limited(), 19);
}

}  // namespace
}  // namespace turnpike::controlplane
