// The retry and failover policy (AttemptPlanner) on a simulated clock: which target, after how
// long, and why; the shared upstream state (breaker, throttle, budget, cool-downs, credentials)
// that carries across requests.
#include "server/resilience/attempt_planner.h"

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {
namespace {

using Step = AttemptPlanner::Step;

AttemptOutcome Out(FailureKind kind, int http = 0, int64_t retry_after_ms = 0) {
  AttemptOutcome o;
  o.kind = kind;
  o.http_status = http;
  o.retry_after_ms = retry_after_ms;
  o.status =
      kind == FailureKind::kNone ? absl::OkStatus() : absl::UnavailableError(FailureKindName(kind));
  return o;
}

class PlannerTest : public ::testing::Test {
 protected:
  // Providers a, b and c; `route` is the JSON of one Route for capability "r". Its targets'
  // state lives in `resilience` (the fixture's by default).
  void Load(const std::string& route, Resilience* resilience = nullptr) {
    const std::string json = absl::StrCat(R"({"providers":[
      {"name":"a","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:1/v1"},
      {"name":"b","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:2/v1"},
      {"name":"c","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:3/v1"}],
      "routes":[)",
                                          route, "]}");
    auto snapshot = ParseSnapshotJson(json);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    auto config = RuntimeConfig::Build(
        *snapshot, [](const std::string&) { return std::nullopt; },
        resilience != nullptr ? *resilience : resilience_);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    route_ = config_->FindRoute("r");
    ASSERT_NE(route_, nullptr);
  }

  std::unique_ptr<AttemptPlanner> Planner(absl::Duration deadline = absl::InfiniteDuration()) {
    return std::make_unique<AttemptPlanner>(*route_, resilience_, Now() + deadline, gen_);
  }
  absl::Time Now() { return clock_.MonotonicNow(); }
  const std::string& Provider(const Step& s) { return route_->targets[s.target].provider->name; }
  UpstreamStatus Status(const std::string& name) {
    for (const UpstreamStatus& s : resilience_.Status()) {
      if (s.name == name) return s;
    }
    return {};
  }

  // One request whose every attempt ends with `kind`; returns its number of attempts.
  int FailingRequest(FailureKind kind, AttemptPlanner::Step* last = nullptr) {
    auto planner = Planner();
    Step step = planner->First();
    int attempts = 0;
    while (step.kind == Step::Kind::kAttempt) {
      clock_.Advance(step.delay);
      planner->Begin();
      ++attempts;
      step = planner->Finish(Out(kind, 503), absl::Milliseconds(1));
    }
    if (last != nullptr) *last = step;
    return attempts;
  }

  SimulatedClock clock_;
  std::mt19937_64 gen_{3};
  Resilience resilience_{Resilience::Options(), clock_, gen_};
  std::shared_ptr<const RuntimeConfig> config_;
  const RouteEntry* route_ = nullptr;
};

constexpr char kTwo[] =
    R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}]})";
constexpr char kOne[] = R"({"capability":"r","targets":[{"provider":"a","model":"m"}]})";

TEST_F(PlannerTest, RetriesTheSameTargetWithJitteredBackoffThenFailsOver) {
  Load(kTwo);
  auto planner = Planner();
  Step step = planner->First();
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "a");
  EXPECT_EQ(step.delay, absl::ZeroDuration());
  planner->Begin();
  step = planner->Finish(Out(FailureKind::kUpstream, 503), absl::Milliseconds(5));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "a");
  EXPECT_GE(step.delay, absl::ZeroDuration());
  EXPECT_LT(step.delay, absl::Milliseconds(100));  // U(0, base)
  clock_.Advance(step.delay);
  planner->Begin();
  step = planner->Finish(Out(FailureKind::kUpstream, 503), absl::Milliseconds(5));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "b");  // two attempts on a: the chain moves on
  EXPECT_EQ(step.delay, absl::ZeroDuration());
  planner->Begin();
  step = planner->Finish(Out(FailureKind::kUpstream, 503), absl::Milliseconds(5));
  EXPECT_EQ(step.kind, Step::Kind::kGiveUp);  // three attempts in all

  const auto& attempts = planner->attempts();
  ASSERT_EQ(attempts.size(), 3);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  EXPECT_EQ(attempts[0].attempt(), 1);
  EXPECT_EQ(attempts[0].http_status(), 503);
  EXPECT_EQ(attempts[1].disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  EXPECT_EQ(attempts[1].attempt(), 2);
  EXPECT_EQ(attempts[2].provider(), "b");
  EXPECT_EQ(attempts[2].fallback_position(), 1);
  EXPECT_EQ(attempts[2].disposition(), v1::ATTEMPT_DISPOSITION_FINAL);
  EXPECT_NE(attempts[2].reason().find("attempt limit (3)"), std::string::npos)
      << attempts[2].reason();
}

TEST_F(PlannerTest, ConnectFailuresAndTimeoutsFailOverAtOnce) {
  Load(kTwo);
  for (FailureKind kind : {FailureKind::kConnect, FailureKind::kTimeout}) {
    auto planner = Planner();
    planner->First();
    planner->Begin();
    Step step = planner->Finish(Out(kind), absl::Milliseconds(1));
    ASSERT_EQ(step.kind, Step::Kind::kAttempt);
    EXPECT_EQ(Provider(step), "b") << FailureKindName(kind);
    EXPECT_EQ(step.delay, absl::ZeroDuration());
    planner->Begin();
    planner->Finish(Out(FailureKind::kNone), absl::Milliseconds(1));
    EXPECT_EQ(planner->attempts()[1].disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
  }
}

TEST_F(PlannerTest, OnlyTargetIsRetriedAfterAConnectFailure) {
  Load(kOne);
  EXPECT_EQ(FailingRequest(FailureKind::kConnect), 2);
}

TEST_F(PlannerTest, RateLimitCoolsTheUpstreamAndHonoursRetryAfter) {
  Load(kOne);
  auto planner = Planner(absl::Seconds(30));
  planner->First();
  planner->Begin();
  Step step = planner->Finish(Out(FailureKind::kRateLimited, 429, 2000), absl::Milliseconds(1));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_GE(step.delay, absl::Seconds(2));
  EXPECT_LT(step.delay, absl::Seconds(2) + absl::Milliseconds(100));
  EXPECT_EQ(planner->attempts()[0].backoff_ms(), absl::ToInt64Milliseconds(step.delay));
  EXPECT_GT(Status("a/m").cooling_until, Now());
  EXPECT_EQ(Status("a/m").breaker_state, "closed");  // a 429 is not a health failure

  // Another request during the cool-down waits for it instead of hitting the upstream now.
  clock_.Advance(absl::Milliseconds(500));
  auto second = Planner(absl::Seconds(30));
  Step first = second->First();
  ASSERT_EQ(first.kind, Step::Kind::kAttempt);
  EXPECT_EQ(first.delay, absl::Milliseconds(1500));
  // One whose deadline ends before the cool-down gives up at once, saying when to come back.
  auto hurried = Planner(absl::Seconds(1));
  Step none = hurried->First();
  EXPECT_EQ(none.kind, Step::Kind::kGiveUp);
  EXPECT_EQ(none.retry_hint, absl::Milliseconds(1500));
  ASSERT_EQ(hurried->attempts().size(), 1);
  EXPECT_EQ(hurried->attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
}

TEST_F(PlannerTest, RateLimitFailsOverToAnotherTargetWithoutWaiting) {
  Load(kTwo);
  auto planner = Planner();
  planner->First();
  planner->Begin();
  Step step = planner->Finish(Out(FailureKind::kRateLimited, 429, 2000), absl::Milliseconds(1));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "b");
  EXPECT_EQ(step.delay, absl::ZeroDuration());
  // While a cools down, new requests go straight to b and say a was skipped.
  auto next = Planner();
  Step first = next->First();
  EXPECT_EQ(Provider(first), "b");
  ASSERT_EQ(next->attempts().size(), 1);
  EXPECT_EQ(next->attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
  EXPECT_NE(next->attempts()[0].reason().find("cooling"), std::string::npos);
}

TEST_F(PlannerTest, RetryAfterPastTheDeadlineMovesOnAtOnce) {
  Load(kTwo);
  auto planner = Planner(absl::Seconds(1));
  planner->First();
  planner->Begin();
  Step step = planner->Finish(Out(FailureKind::kUpstream, 503, 5000), absl::Milliseconds(1));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "b");
  EXPECT_EQ(step.delay, absl::ZeroDuration());
  EXPECT_NE(planner->attempts()[0].reason().find("would pass the deadline"), std::string::npos)
      << planner->attempts()[0].reason();

  Load(kOne);
  auto single = Planner(absl::Seconds(1));
  single->First();
  single->Begin();
  EXPECT_EQ(single->Finish(Out(FailureKind::kUpstream, 503, 5000), absl::Milliseconds(1)).kind,
            Step::Kind::kGiveUp);
}

TEST_F(PlannerTest, RetryAfterAboveTheRouteMaximumIsNotWaited) {
  Load(kOne);
  auto planner = Planner();
  planner->First();
  planner->Begin();
  Step step = planner->Finish(Out(FailureKind::kRateLimited, 429, 60000), absl::Milliseconds(1));
  EXPECT_EQ(step.kind, Step::Kind::kGiveUp);
  EXPECT_NE(planner->attempts()[0].reason().find("longer than the route waits"), std::string::npos);
  EXPECT_GE(step.retry_hint, absl::Seconds(59));
}

TEST_F(PlannerTest, NeverWaitsPastTheDeadline) {
  constexpr char kRoute[] = R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "retry":{"baseBackoffMs":1000,"maxBackoffMs":1000}})";
  int gave_up = 0;
  for (int i = 0; i < 300; ++i) {
    // A fresh upstream each time, so neither the throttle nor the breaker steps in.
    Resilience fresh(Resilience::Options(), clock_, gen_);
    Load(kRoute, &fresh);
    AttemptPlanner planner(*route_, fresh, Now() + absl::Milliseconds(200), gen_);
    planner.First();
    planner.Begin();
    clock_.Advance(absl::Milliseconds(50));
    Step step = planner.Finish(Out(FailureKind::kUpstream, 503), absl::Milliseconds(50));
    if (step.kind == Step::Kind::kGiveUp) {
      ++gave_up;
      EXPECT_NE(planner.attempts()[0].reason().find("would pass the deadline"), std::string::npos);
    } else {
      EXPECT_LT(step.delay, absl::Milliseconds(150));  // what is left of the deadline
      planner.Begin();
      planner.Finish(Out(FailureKind::kNone), absl::Milliseconds(1));
    }
  }
  EXPECT_GT(gave_up, 200);  // U(0, 1 s) mostly passes the 150 ms left
}

TEST_F(PlannerTest, InvalidRequestsAreNeverRetried) {
  Load(kTwo);
  auto planner = Planner();
  planner->First();
  planner->Begin();
  EXPECT_EQ(planner->Finish(Out(FailureKind::kInvalidRequest, 400), absl::Milliseconds(1)).kind,
            Step::Kind::kGiveUp);
  EXPECT_EQ(Status("a/m").breaker_state, "closed");
  EXPECT_EQ(Status("a/m").throttle_tokens, 10);
}

TEST_F(PlannerTest, AuthFailureBenchesTheCredentialForEveryModel) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}]},
          {"capability":"r2","targets":[{"provider":"a","model":"other"},{"provider":"b","model":"m"}]})");
  auto planner = Planner();
  planner->First();
  planner->Begin();
  Step step = planner->Finish(Out(FailureKind::kAuth, 401), absl::Milliseconds(1));
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "b");  // fails over; never the same credential again
  // Another model behind the same credential is skipped.
  const RouteEntry* r2 = config_->FindRoute("r2");
  AttemptPlanner other(*r2, resilience_, absl::InfiniteFuture(), gen_);
  Step first = other.First();
  EXPECT_EQ(r2->targets[first.target].provider->name, "b");
  ASSERT_EQ(other.attempts().size(), 1);
  EXPECT_NE(other.attempts()[0].reason().find("credential benched"), std::string::npos)
      << other.attempts()[0].reason();
  // Quota exhaustion benches the same way and is not retried on the same target.
  Load(R"({"capability":"r","targets":[{"provider":"c","model":"m"}]})");
  auto quota = Planner();
  quota->First();
  quota->Begin();
  EXPECT_EQ(quota->Finish(Out(FailureKind::kQuotaExhausted, 429), absl::Milliseconds(1)).kind,
            Step::Kind::kGiveUp);
}

TEST_F(PlannerTest, CircuitOpensAfterNFailuresIsSkippedAndRecoversThroughAProbe) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}],
           "retry":{"maxAttemptsPerTarget":1},
           "circuitBreaker":{"consecutiveFailures":3,"baseEjectionMs":10000,"probeTimeoutMs":700}})");
  for (int i = 0; i < 3; ++i) {
    auto planner = Planner();
    Step step = planner->First();
    ASSERT_EQ(Provider(step), "a");
    planner->Begin();
    step = planner->Finish(Out(FailureKind::kUpstream, 500), absl::Milliseconds(1));
    ASSERT_EQ(Provider(step), "b");
    planner->Begin();
    planner->Finish(Out(FailureKind::kNone), absl::Milliseconds(1));
  }
  EXPECT_EQ(Status("a/m").breaker_state, "open");
  EXPECT_EQ(Status("a/m").opened_total, 1);
  // Open: skipped, and b's attempt is a first attempt (no retry budget spent).
  auto skipping = Planner();
  Step step = skipping->First();
  EXPECT_EQ(Provider(step), "b");
  EXPECT_EQ(skipping->attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
  EXPECT_NE(skipping->attempts()[0].reason().find("circuit open"), std::string::npos);
  skipping.reset();
  // After the ejection: one probe, with the probe's shorter first-token limit.
  clock_.Advance(absl::Seconds(11));
  auto probe = Planner();
  step = probe->First();
  EXPECT_EQ(Provider(step), "a");
  EXPECT_EQ(step.first_token_timeout, absl::Milliseconds(700));
  probe->Begin();
  // While the probe runs, others are kept off a.
  auto meanwhile = Planner();
  EXPECT_EQ(Provider(meanwhile->First()), "b");
  meanwhile.reset();
  probe->FirstToken();
  EXPECT_EQ(Status("a/m").breaker_state, "closed");
  probe->Finish(Out(FailureKind::kNone), absl::Milliseconds(1));
  auto after = Planner();
  EXPECT_EQ(Provider(after->First()), "a");
}

TEST_F(PlannerTest, EveryTargetOpenTriesTheOneClosestToRecoveryOnce) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}],
           "retry":{"maxAttemptsPerTarget":1},
           "circuitBreaker":{"consecutiveFailures":1,"baseEjectionMs":10000}})");
  // Open a, then (5 s later) b: a recovers first.
  {
    auto p = Planner();
    p->First();
    p->Begin();
    p->Finish(Out(FailureKind::kUpstream, 500), absl::Milliseconds(1));
  }
  clock_.Advance(absl::Seconds(5));
  {
    auto p = Planner();
    Step s = p->First();
    ASSERT_EQ(Provider(s), "b");
    p->Begin();
    EXPECT_EQ(p->Finish(Out(FailureKind::kUpstream, 500), absl::Milliseconds(1)).kind,
              Step::Kind::kGiveUp);
  }
  auto panic = Planner();
  Step step = panic->First();
  ASSERT_EQ(step.kind, Step::Kind::kAttempt);
  EXPECT_EQ(Provider(step), "a");
  ASSERT_EQ(panic->attempts().size(), 1);  // b: skipped
  panic->Begin();
  step = panic->Finish(Out(FailureKind::kUpstream, 500), absl::Milliseconds(1));
  EXPECT_EQ(step.kind, Step::Kind::kGiveUp);  // once: no retry, no failover
  EXPECT_NE(panic->attempts()[1].reason().find("closest to recovery"), std::string::npos)
      << panic->attempts()[1].reason();
  EXPECT_GT(step.retry_hint, absl::ZeroDuration());
}

TEST_F(PlannerTest, ThrottleStopsRetriesWhenEveryRequestFails) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "retry":{"maxAttempts":5,"maxAttemptsPerTarget":5},
           "circuitBreaker":{"consecutiveFailures":1000,"minimumVolume":1000000}})");
  int upstream = 0;
  Step last;
  upstream += FailingRequest(FailureKind::kUpstream);
  EXPECT_EQ(upstream, 5);  // tokens 10 -> 5: four retries allowed
  for (int i = 0; i < 19; ++i) upstream += FailingRequest(FailureKind::kUpstream, &last);
  EXPECT_EQ(upstream, 5 + 19);  // no more retries
  EXPECT_GT(Status("a/m").retries_throttled_total, 0);
}

TEST_F(PlannerTest, StormOpensTheCircuitAndCapsUpstreamAttempts) {
  Load(kOne);  // defaults: 3 attempts, 2 per target, 5 consecutive failures
  int upstream = 0;
  for (int i = 0; i < 100; ++i) upstream += FailingRequest(FailureKind::kUpstream);
  // Requests 1-2 retry once (tokens 10 -> 6), then the throttle stops retries; the circuit
  // opens at the 5th failure and every later request makes one (panic) attempt.
  EXPECT_EQ(upstream, 102);
  EXPECT_EQ(Status("a/m").breaker_state, "open");
}

TEST_F(PlannerTest, RetryBudgetCapsConcurrentRetries) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "circuitBreaker":{"consecutiveFailures":1000,"minimumVolume":1000000}})");
  std::vector<std::unique_ptr<AttemptPlanner>> planners;
  for (int i = 0; i < 10; ++i) {
    planners.push_back(Planner());
    planners.back()->First();
    planners.back()->Begin();
  }
  EXPECT_EQ(Status("a/m").active_requests, 10);
  int retries = 0;
  std::vector<std::string> reasons;
  for (auto& p : planners) {
    Step s = p->Finish(Out(FailureKind::kUpstream, 503), absl::Milliseconds(1));
    if (s.kind == Step::Kind::kAttempt) ++retries;
    reasons.push_back(p->attempts()[0].reason());
  }
  EXPECT_EQ(retries, 3);  // max(3, 20% of 10)
  EXPECT_NE(reasons[3].find("retry budget exhausted"), std::string::npos) << reasons[3];
  EXPECT_NE(reasons[9].find("throttled"), std::string::npos) << reasons[9];
  EXPECT_EQ(Status("a/m").active_retries, 3);  // held through the backoff
  planners.clear();                            // abandoned: reservations are released
  EXPECT_EQ(Status("a/m").active_retries, 0);
  EXPECT_EQ(Status("a/m").active_requests, 0);
}

TEST_F(PlannerTest, WeightsSplitATierAndLaterTiersAreFallbacks) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m","tier":0,"weight":3},
           {"provider":"b","model":"m","tier":0,"weight":1},{"provider":"c","model":"m","tier":1}]})");
  std::map<std::string, int> first;
  for (int i = 0; i < 4000; ++i) {
    auto planner = Planner();
    ++first[Provider(planner->First())];
  }
  EXPECT_EQ(first["c"], 0);
  EXPECT_NEAR(first["a"] / 4000.0, 0.75, 0.04);
  EXPECT_EQ(route_->targets[2].fallback_position, 1);
  EXPECT_EQ(route_->tiers, 2);
  // A failure in tier 0 tries the other target of the tier before the fallback tier.
  auto planner = Planner();
  Step s = planner->First();
  planner->Begin();
  s = planner->Finish(Out(FailureKind::kConnect), absl::Milliseconds(1));
  EXPECT_NE(Provider(s), "c");
}

TEST_F(PlannerTest, CommittedFailuresAreFinalButCountAgainstTheUpstream) {
  Load(kTwo);
  auto planner = Planner();
  planner->First();
  planner->Begin();
  AttemptOutcome o = Out(FailureKind::kUpstream);
  o.committed = true;
  EXPECT_EQ(planner->Finish(o, absl::Milliseconds(1)).kind, Step::Kind::kGiveUp);
  EXPECT_EQ(Status("a/m").consecutive_failures, 1);
  EXPECT_NE(planner->attempts()[0].reason().find("already started"), std::string::npos);
}

TEST(ClassifyFailureTest, MapsStatusesToKinds) {
  ProviderError e;
  e.http_status = 429;
  e.error_class = ProviderErrorClass::kRateLimited;
  EXPECT_EQ(ClassifyFailure(ProviderErrorStatus(e), false), FailureKind::kRateLimited);
  e.error_class = ProviderErrorClass::kQuotaExhausted;
  EXPECT_EQ(ClassifyFailure(ProviderErrorStatus(e), false), FailureKind::kQuotaExhausted);
  e.error_class = ProviderErrorClass::kAuth;
  EXPECT_EQ(ClassifyFailure(ProviderErrorStatus(e), false), FailureKind::kAuth);
  e.error_class = ProviderErrorClass::kOverloaded;
  EXPECT_EQ(ClassifyFailure(ProviderErrorStatus(e), false), FailureKind::kUpstream);
  e.error_class = ProviderErrorClass::kInvalidRequest;
  EXPECT_EQ(ClassifyFailure(ProviderErrorStatus(e), false), FailureKind::kInvalidRequest);
  EXPECT_EQ(ClassifyFailure(absl::DeadlineExceededError("x"), false), FailureKind::kTimeout);
  EXPECT_EQ(ClassifyFailure(absl::DeadlineExceededError("x"), true), FailureKind::kDeadline);
  EXPECT_EQ(ClassifyFailure(absl::CancelledError("x"), false), FailureKind::kCancelled);
  EXPECT_EQ(ClassifyFailure(absl::InternalError("bad json"), false), FailureKind::kUpstream);
  absl::Status refused = absl::UnavailableError("connect failed");
  refused.SetPayload(kConnectFailurePayloadUrl, absl::Cord());
  EXPECT_EQ(ClassifyFailure(refused, false), FailureKind::kConnect);
  EXPECT_EQ(ClassifyFailure(absl::UnavailableError("reset"), false), FailureKind::kUpstream);
  EXPECT_EQ(ClassifyFailure(absl::OkStatus(), false), FailureKind::kNone);
}

}  // namespace
}  // namespace turnpike
