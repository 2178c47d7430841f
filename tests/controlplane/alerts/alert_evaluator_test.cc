// The alert state machine on a simulated clock with fake signals: every rule kind fires and
// resolves (a budget projected to run out before its window ends and a capability with every
// target down too), `for_duration` holds back flapping, a budget crossing 80 % fires exactly once,
// four gateways seeing one problem make one alert, and the cooldown suppresses a quick re-fire.
#include "controlplane/alerts/alert_evaluator.h"

#include <map>

#include "controlplane/alerts/alert_rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/controlplane/alerts/fake_alert_signals.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using testing::FakeAlertSignals;

a::AlertRule Rule(const std::string& text) {
  a::AlertRule r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &r)) << text;
  EXPECT_TRUE(AlertRules::ValidateRule(r).ok()) << text;  // fills in the defaults
  return r;
}

class AlertEvaluatorTest : public ::testing::Test {
 protected:
  // One evaluation of `rule`; returns its notifications.
  std::vector<Notification> Step(const a::AlertRule& rule) {
    auto seen = ObserveRule(rule, signals_, clock_.Now());
    EXPECT_TRUE(seen.ok()) << seen.status();
    if (!seen.ok()) return {};
    return evaluator_.Evaluate(rule, *seen);
  }
  // The state of `rule`'s alert for `subject` (UNSPECIFIED if there is none).
  a::AlertState State(const std::string& rule, const std::string& subject = "") {
    for (const a::Alert& alert : evaluator_.Alerts()) {
      if (alert.rule() == rule && alert.subject() == subject) return alert.state();
    }
    return a::ALERT_STATE_UNSPECIFIED;
  }
  // Fires then resolves `rule` (for_duration 0): `breach()` makes it hold, `heal()` not.
  void ExpectFiresAndResolves(const a::AlertRule& rule, const std::string& subject,
                              const std::function<void()>& breach,
                              const std::function<void()>& heal) {
    heal();
    EXPECT_TRUE(Step(rule).empty());
    EXPECT_EQ(State(rule.name(), subject), a::ALERT_STATE_UNSPECIFIED);
    breach();
    std::vector<Notification> fired = Step(rule);
    ASSERT_EQ(fired.size(), 1u) << rule.name();
    EXPECT_EQ(fired[0].event, a::ALERT_STATE_FIRING);
    EXPECT_EQ(fired[0].alert.subject(), subject);
    EXPECT_EQ(fired[0].channel, "ops");
    EXPECT_EQ(State(rule.name(), subject), a::ALERT_STATE_FIRING);
    clock_.Advance(absl::Seconds(15));
    EXPECT_TRUE(Step(rule).empty()) << "a firing alert notifies once";
    heal();
    clock_.Advance(absl::Seconds(15));
    std::vector<Notification> resolved = Step(rule);
    ASSERT_EQ(resolved.size(), 1u) << rule.name();
    EXPECT_EQ(resolved[0].event, a::ALERT_STATE_RESOLVED);
    EXPECT_EQ(State(rule.name(), subject), a::ALERT_STATE_RESOLVED);
    EXPECT_TRUE(Step(rule).empty());
  }

  static GatewaySignal Gateway(const std::string& id, absl::Time seen) {
    GatewaySignal g;
    g.node_id = id;
    g.connected = true;
    g.last_seen = seen;
    return g;
  }

  SimulatedClock clock_;
  FakeAlertSignals signals_;
  AlertEvaluator evaluator_{clock_, AlertEvaluator::Options{}};
};

TEST_F(AlertEvaluatorTest, LatencyPendsForItsDurationThenFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "p99" kind: ALERT_KIND_LATENCY capability: "chat"
      threshold: 2000 window { seconds: 300 } for_duration { seconds: 60 } channels: "ops")");
  signals_.SetRequests("chat", "", {100, 0, 2500});
  EXPECT_TRUE(Step(rule).empty());
  EXPECT_EQ(State("p99"), a::ALERT_STATE_PENDING);
  EXPECT_EQ(signals_.last_since(), clock_.Now() - absl::Minutes(5));
  clock_.Advance(absl::Seconds(30));
  EXPECT_TRUE(Step(rule).empty());
  clock_.Advance(absl::Seconds(30));
  std::vector<Notification> fired = Step(rule);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].event, a::ALERT_STATE_FIRING);
  EXPECT_DOUBLE_EQ(fired[0].alert.value(), 2500);
  EXPECT_THAT(fired[0].alert.summary(), ::testing::HasSubstr("p99 latency of capability chat"));
  signals_.SetRequests("chat", "", {100, 0, 1500});
  clock_.Advance(absl::Seconds(15));
  std::vector<Notification> resolved = Step(rule);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].event, a::ALERT_STATE_RESOLVED);
}

TEST_F(AlertEvaluatorTest, AFlapShorterThanForNeverNotifies) {
  a::AlertRule rule = Rule(R"(name: "p99" kind: ALERT_KIND_LATENCY threshold: 2000
      window { seconds: 300 } for_duration { seconds: 60 } channels: "ops")");
  for (int i = 0; i < 10; ++i) {
    signals_.SetRequests("", "", {100, 0, i % 2 == 0 ? 2500.0 : 100.0});
    EXPECT_TRUE(Step(rule).empty()) << i;
    clock_.Advance(absl::Seconds(45));
  }
  EXPECT_EQ(State("p99"), a::ALERT_STATE_UNSPECIFIED);
}

TEST_F(AlertEvaluatorTest, LatencyBelowMinimumVolumeDoesNotFire) {
  a::AlertRule rule = Rule(R"(name: "p99" kind: ALERT_KIND_LATENCY threshold: 2000
      window { seconds: 300 } min_requests: 20 channels: "ops")");
  signals_.SetRequests("", "", {19, 0, 9000});
  EXPECT_TRUE(Step(rule).empty());
  EXPECT_EQ(State("p99"), a::ALERT_STATE_UNSPECIFIED);
}

TEST_F(AlertEvaluatorTest, LatencyFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "p95" kind: ALERT_KIND_LATENCY model: "gpt-4o" quantile: 0.95
      threshold: 800 window { seconds: 60 } channels: "ops")");
  ExpectFiresAndResolves(
      rule, "",
      [&] {
        signals_.SetRequests("", "gpt-4o", {10, 0, 801});
      },
      [&] {
        signals_.SetRequests("", "gpt-4o", {10, 0, 800});
      });
}

TEST_F(AlertEvaluatorTest, ErrorRateFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "errors" kind: ALERT_KIND_ERROR_RATE capability: "chat"
      threshold: 5 min_requests: 50 window { seconds: 300 } channels: "ops")");
  ExpectFiresAndResolves(
      rule, "",
      [&] {
        signals_.SetRequests("chat", "", {100, 10, 0});
      },
      [&] {
        signals_.SetRequests("chat", "", {100, 2, 0});
      });
  // Ten failures of twelve requests: under the minimum volume.
  signals_.SetRequests("chat", "", {12, 10, 0});
  EXPECT_TRUE(Step(rule).empty());
}

TEST_F(AlertEvaluatorTest, BudgetThresholdFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "monthly" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m"
      budget_percents: 80 channels: "ops")");
  ExpectFiresAndResolves(
      rule, "80%", [&] { signals_.SetBudget("m", 1000000, 800000); },
      [&] { signals_.SetBudget("m", 1000000, 799999); });
}

TEST_F(AlertEvaluatorTest, BudgetProjectionFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "pace" kind: ALERT_KIND_BUDGET_PROJECTION budget: "d"
                              channels: "ops")");
  // A daily window, 10 hours in: $3 of $10 spent ends the day at $7.20; $5 at $12.
  const absl::Time start = clock_.Now() - absl::Hours(10);
  const absl::Time end = start + absl::Hours(24);
  ExpectFiresAndResolves(
      rule, "", [&] { signals_.SetBudget("d", 10000000, 5000000, start, end); },
      [&] { signals_.SetBudget("d", 10000000, 3000000, start, end); });
  auto seen = ObserveRule(rule, signals_, clock_.Now());
  ASSERT_TRUE(seen.ok() && seen->size() == 1u);
  EXPECT_NEAR((*seen)[0].value, 72, 0.1);  // percent of the limit by the window's end

  // Fires again at the faster pace (after the cooldown); a new window (nothing spent yet)
  // resolves it.
  signals_.SetBudget("d", 10000000, 5000000, start, end);
  clock_.Advance(absl::Minutes(10));
  std::vector<Notification> fired = Step(rule);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].event, a::ALERT_STATE_FIRING);
  EXPECT_THAT(fired[0].alert.summary(), ::testing::HasSubstr("before its window ends"));
  signals_.SetBudget("d", 10000000, 0, end, end + absl::Hours(24));
  clock_.Advance(absl::Hours(15));
  std::vector<Notification> resolved = Step(rule);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].event, a::ALERT_STATE_RESOLVED);
}

TEST_F(AlertEvaluatorTest, BudgetProjectionNeedsAWindowWithAnEnd) {
  a::AlertRule rule = Rule(R"(name: "pace" kind: ALERT_KIND_BUDGET_PROJECTION budget: "t"
                              channels: "ops")");
  // A total budget: already 90 % spent, but no window end to run out before.
  signals_.SetBudget("t", 1000, 900);
  EXPECT_TRUE(Step(rule).empty());
  EXPECT_EQ(State("pace"), a::ALERT_STATE_UNSPECIFIED);
  // Percentages belong to threshold rules.
  a::AlertRule bad = rule;
  bad.add_budget_percents(80);
  EXPECT_EQ(AlertRules::ValidateRule(bad).code(), absl::StatusCode::kInvalidArgument);
  a::AlertRule unnamed = rule;
  unnamed.clear_budget();
  EXPECT_EQ(AlertRules::ValidateRule(unnamed).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AlertEvaluatorTest, BudgetCrossing80PercentFiresExactlyOnce) {
  a::AlertRule rule = Rule(R"(name: "monthly" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m"
      budget_percents: [50, 80, 100] channels: "ops")");
  std::map<std::string, int> fired;
  // Spend climbs by $0.10 a step ($20 budget) to 95 %, one evaluation per step (as if every
  // request were evaluated), then stays there for an hour of evaluations.
  for (int64_t spent = 0; spent <= 19000000; spent += 100000) {
    signals_.SetBudget("m", 20000000, spent);
    for (const Notification& n : Step(rule)) {
      if (n.event == a::ALERT_STATE_FIRING) ++fired[n.alert.subject()];
      EXPECT_NE(n.event, a::ALERT_STATE_RESOLVED);
    }
    clock_.Advance(absl::Seconds(15));
  }
  for (int i = 0; i < 240; ++i) {
    for (const Notification& n : Step(rule)) ++fired[n.alert.subject()];
    clock_.Advance(absl::Seconds(15));
  }
  EXPECT_EQ(fired["50%"], 1);
  EXPECT_EQ(fired["80%"], 1);
  EXPECT_EQ(fired["100%"], 0);
  EXPECT_EQ(State("monthly", "80%"), a::ALERT_STATE_FIRING);
  EXPECT_EQ(State("monthly", "100%"), a::ALERT_STATE_UNSPECIFIED);
  // A new window: spend back to 0; both resolve, once.
  signals_.SetBudget("m", 20000000, 0);
  std::vector<Notification> resolved = Step(rule);
  ASSERT_EQ(resolved.size(), 2u);
  for (const Notification& n : resolved) EXPECT_EQ(n.event, a::ALERT_STATE_RESOLVED);
  EXPECT_TRUE(Step(rule).empty());
}

TEST_F(AlertEvaluatorTest, CircuitOpenOnFourGatewaysIsOneAlert) {
  a::AlertRule rule = Rule(R"(name: "breakers" kind: ALERT_KIND_CIRCUIT_OPEN channels: "ops")");
  auto fleet = [&](bool open) {
    std::vector<GatewaySignal> gws;
    for (int i = 1; i <= 4; ++i) {
      GatewaySignal g = Gateway("gw-" + std::to_string(i), clock_.Now());
      g.upstreams.push_back({"openai", "gpt-4o", open});
      g.upstreams.push_back({"anthropic", "claude", false});
      gws.push_back(g);
    }
    // A disconnected gateway's stale report does not count.
    GatewaySignal gone = Gateway("gw-gone", clock_.Now());
    gone.connected = false;
    gone.upstreams.push_back({"anthropic", "claude", true});
    gws.push_back(gone);
    signals_.SetGateways(gws);
  };
  ExpectFiresAndResolves(
      rule, "openai/gpt-4o", [&] { fleet(true); }, [&] { fleet(false); });
  clock_.Advance(absl::Minutes(6));  // past the default 5-minute cooldown
  fleet(true);
  auto again = Step(rule);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_DOUBLE_EQ(again[0].alert.value(), 4);
  EXPECT_THAT(again[0].alert.summary(), ::testing::HasSubstr("on 4 gateway(s)"));
  EXPECT_EQ(evaluator_.Alerts().size(), 1u);
}

TEST_F(AlertEvaluatorTest, CapabilityWithEveryTargetDownFiresOnceAndResolves) {
  a::AlertRule rule = Rule(R"(name: "down" kind: ALERT_KIND_CAPABILITY_UNAVAILABLE
                              channels: "ops")");
  signals_.SetRoutes({{"summaries", {"openai/gpt-4o", "anthropic/claude"}},
                      {"triage", {"openai/gpt-4o", "openai/gpt-4o-mini"}},
                      {"vectors", {"openai/embed"}}});
  // `down` of summaries' targets have their circuit open on gw-1 and gw-2; gw-2 reports the
  // Anthropic target on two credentials, one of them closed unless `both_keys_down`.
  auto fleet = [&](bool down, bool both_keys_down) {
    GatewaySignal a = Gateway("gw-1", clock_.Now());
    a.upstreams = {{"openai", "gpt-4o", down},
                   {"anthropic", "claude", down},
                   {"openai", "gpt-4o-mini", false}};
    GatewaySignal b = Gateway("gw-2", clock_.Now());
    b.upstreams = {{"openai", "gpt-4o", down},
                   {"anthropic", "claude", down},
                   {"anthropic", "claude", both_keys_down}};
    // A disconnected gateway's stale report that summaries is fine does not count.
    GatewaySignal gone = Gateway("gw-gone", clock_.Now());
    gone.connected = false;
    gone.upstreams = {{"openai", "gpt-4o", false}, {"anthropic", "claude", false}};
    signals_.SetGateways({a, b, gone});
  };
  // One credential of one target still up: summaries is available.
  fleet(true, false);
  EXPECT_TRUE(Step(rule).empty());
  ExpectFiresAndResolves(
      rule, "summaries", [&] { fleet(true, true); }, [&] { fleet(false, false); });
  // triage keeps gpt-4o-mini, and no gateway reports vectors' target: neither fires.
  clock_.Advance(absl::Minutes(6));
  fleet(true, true);
  std::vector<Notification> fired = Step(rule);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].alert.subject(), "summaries");
  EXPECT_THAT(fired[0].alert.summary(),
              ::testing::HasSubstr("every target of capability summaries is unavailable"));
  // Scoped to another capability, the rule sees nothing.
  a::AlertRule triage = Rule(R"(name: "triage-down" kind: ALERT_KIND_CAPABILITY_UNAVAILABLE
                                capability: "triage" channels: "ops")");
  EXPECT_TRUE(Step(triage).empty());
}

TEST_F(AlertEvaluatorTest, GatewaySilentFiresAndResolves) {
  a::AlertRule rule = Rule(R"(name: "silent" kind: ALERT_KIND_GATEWAY_SILENT
      silent_after { seconds: 120 } channels: "ops")");
  ExpectFiresAndResolves(
      rule, "gw-1",
      [&] { signals_.SetGateways({Gateway("gw-1", clock_.Now() - absl::Seconds(121))}); },
      [&] { signals_.SetGateways({Gateway("gw-1", clock_.Now())}); });
}

TEST_F(AlertEvaluatorTest, NackFromFourGatewaysIsOneAlertAndResolvesOnAck) {
  a::AlertRule rule = Rule(R"(name: "nacks" kind: ALERT_KIND_SNAPSHOT_NACK channels: "ops")");
  auto fleet = [&](bool nacked) {
    std::vector<GatewaySignal> gws;
    for (int i = 1; i <= 4; ++i) {
      GatewaySignal g = Gateway("gw-" + std::to_string(i), clock_.Now());
      if (nacked) {
        g.nacked_version = "7";
        g.last_nack = "route chat: unknown provider";
      }
      gws.push_back(g);
    }
    signals_.SetGateways(gws);
  };
  ExpectFiresAndResolves(
      rule, "7", [&] { fleet(true); }, [&] { fleet(false); });
}

TEST_F(AlertEvaluatorTest, CooldownSuppressesAQuickRefireAndItsResolve) {
  a::AlertRule rule = Rule(R"(name: "monthly" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m"
      budget_percents: 80 cooldown { seconds: 600 } channels: ["ops", "pager"])");
  auto set = [&](bool over) { signals_.SetBudget("m", 100, over ? 90 : 10); };
  set(true);
  EXPECT_EQ(Step(rule).size(), 2u);  // both channels
  clock_.Advance(absl::Minutes(1));
  set(false);
  EXPECT_EQ(Step(rule).size(), 2u);  // resolve to both
  clock_.Advance(absl::Minutes(1));
  set(true);
  EXPECT_TRUE(Step(rule).empty()) << "re-fired within the cooldown";
  EXPECT_EQ(State("monthly", "80%"), a::ALERT_STATE_FIRING);
  clock_.Advance(absl::Minutes(1));
  set(false);
  EXPECT_TRUE(Step(rule).empty()) << "the resolve of a suppressed fire is suppressed too";
  clock_.Advance(absl::Minutes(10));
  set(true);
  EXPECT_EQ(Step(rule).size(), 2u) << "after the cooldown it notifies again";
  std::vector<a::Alert> alerts = evaluator_.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  int suppressed = 0;
  for (const a::Delivery& d : alerts[0].deliveries()) {
    suppressed += d.status() == a::DELIVERY_STATUS_SUPPRESSED ? 1 : 0;
  }
  EXPECT_EQ(suppressed, 4);
  EXPECT_EQ(alerts[0].deliveries_size(), 10);
}

TEST_F(AlertEvaluatorTest, DeletedRulesAreForgottenAndStateSurvivesRestore) {
  a::AlertRule rule = Rule(R"(name: "monthly" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m"
      budget_percents: 80 channels: "ops")");
  signals_.SetBudget("m", 100, 90);
  ASSERT_EQ(Step(rule).size(), 1u);
  // A restarted control plane does not fire again what already fired.
  AlertEvaluator restarted(clock_, AlertEvaluator::Options{});
  restarted.Restore(evaluator_.Alerts());
  auto seen = ObserveRule(rule, signals_, clock_.Now());
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(restarted.Evaluate(rule, *seen).empty());
  restarted.Retain({});
  EXPECT_TRUE(restarted.Alerts().empty());
}

TEST_F(AlertEvaluatorTest, UnreadableSignalsAreAnErrorNotAResolve) {
  a::AlertRule rule = Rule(R"(name: "monthly" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m"
      budget_percents: 80 channels: "ops")");
  signals_.Fail(true);
  EXPECT_EQ(ObserveRule(rule, signals_, clock_.Now()).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnpike::controlplane
