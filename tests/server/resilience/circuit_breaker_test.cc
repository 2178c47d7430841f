// The circuit breaker's state machine on a simulated clock: opening on consecutive failures and
// on a failure rate, growing and capped ejections, half-open probes with deadlines, decay.
#include "server/resilience/circuit_breaker.h"

#include <random>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

using Kind = CircuitBreaker::Admission::Kind;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerTest() {
    settings_.consecutive_failures = 5;
    settings_.failure_rate_window = absl::Seconds(10);
    settings_.failure_rate_percent = 50;
    settings_.minimum_volume = 20;
    settings_.base_ejection = absl::Seconds(30);
    settings_.max_ejection = absl::Seconds(100);
    settings_.half_open_probes = 1;
    settings_.probe_timeout = absl::Seconds(5);
  }
  absl::Time now() { return clock_.MonotonicNow(); }
  void Fail(int n) {
    for (int i = 0; i < n; ++i) breaker_.RecordFailure(settings_, now(), 0, gen_);
  }
  // Opens the circuit and returns how long the ejection is.
  absl::Duration OpenNow() {
    Fail(settings_.consecutive_failures);
    EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
    return breaker_.open_until() - now();
  }
  // Waits out the ejection and closes the circuit through a successful probe.
  void RecoverNow() {
    clock_.Advance(breaker_.open_until() - now());
    CircuitBreaker::Admission a = breaker_.Admit(settings_, now(), gen_);
    ASSERT_EQ(a.kind, Kind::kProbe);
    breaker_.RecordSuccess(settings_, now(), a.probe_id);
    ASSERT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  }

  SimulatedClock clock_;
  std::mt19937_64 gen_{1};
  BreakerSettings settings_;
  CircuitBreaker breaker_;
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndASuccessResetsTheCount) {
  Fail(4);
  breaker_.RecordSuccess(settings_, now(), 0);
  Fail(4);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kAllowed);
  Fail(1);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
  CircuitBreaker::Admission a = breaker_.Admit(settings_, now(), gen_);
  EXPECT_EQ(a.kind, Kind::kRejected);
  EXPECT_EQ(a.retry_at, breaker_.open_until());
  EXPECT_NE(a.reason.find("5 consecutive failures"), std::string::npos) << a.reason;
}

TEST_F(CircuitBreakerTest, OpensOnFailureRateOnlyWithMinimumVolume) {
  settings_.consecutive_failures = 1000;
  // 9 failures, 9 successes interleaved: 50% but only 18 attempts.
  for (int i = 0; i < 9; ++i) {
    Fail(1);
    breaker_.RecordSuccess(settings_, now(), 0);
  }
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  breaker_.RecordSuccess(settings_, now(), 0);  // 19 attempts, 9 failed
  Fail(1);                                      // 20 attempts, 10 failed: 50%
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
  EXPECT_NE(breaker_.open_reason().find("50% of 20"), std::string::npos) << breaker_.open_reason();
}

TEST_F(CircuitBreakerTest, OldFailuresLeaveTheWindow) {
  settings_.consecutive_failures = 1000;
  Fail(19);  // one short of the minimum volume
  EXPECT_EQ(breaker_.WindowCounts(settings_, now()).first, 19);
  clock_.Advance(absl::Seconds(11));  // the whole window has passed
  EXPECT_EQ(breaker_.WindowCounts(settings_, now()).first, 0);
  Fail(1);  // would be the 20th failure in a row if the window had kept them
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  Fail(18);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  Fail(1);  // 20 failures inside one window
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
}

TEST_F(CircuitBreakerTest, EjectionGrowsWithConsecutiveEjectionsUpToTheCap) {
  const absl::Duration first = OpenNow();
  EXPECT_GE(first, absl::Seconds(30));
  EXPECT_LE(first, absl::Seconds(33));  // at most 10% jitter
  // A failed probe re-opens for 2 × base.
  clock_.Advance(first);
  CircuitBreaker::Admission probe = breaker_.Admit(settings_, now(), gen_);
  ASSERT_EQ(probe.kind, Kind::kProbe);
  breaker_.RecordFailure(settings_, now(), probe.probe_id, gen_);
  const absl::Duration second = breaker_.open_until() - now();
  EXPECT_GE(second, absl::Seconds(60));
  EXPECT_LE(second, absl::Seconds(66));
  clock_.Advance(second);
  probe = breaker_.Admit(settings_, now(), gen_);
  breaker_.RecordFailure(settings_, now(), probe.probe_id, gen_);
  const absl::Duration third = breaker_.open_until() - now();
  EXPECT_GE(third, absl::Seconds(90));
  clock_.Advance(third);
  probe = breaker_.Admit(settings_, now(), gen_);
  breaker_.RecordFailure(settings_, now(), probe.probe_id, gen_);
  const absl::Duration fourth = breaker_.open_until() - now();
  EXPECT_GE(fourth, absl::Seconds(100));  // capped at max_ejection (+ jitter)
  EXPECT_LE(fourth, absl::Seconds(110));
  EXPECT_EQ(breaker_.ejections(), 4);
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsOneProbeAndItsSuccessCloses) {
  OpenNow();
  clock_.Advance(absl::Seconds(15));
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kRejected);
  clock_.Advance(breaker_.open_until() - now());
  CircuitBreaker::Admission probe = breaker_.Admit(settings_, now(), gen_);
  ASSERT_EQ(probe.kind, Kind::kProbe);
  CircuitBreaker::Admission second = breaker_.Admit(settings_, now(), gen_);
  EXPECT_EQ(second.kind, Kind::kRejected);
  EXPECT_NE(second.reason.find("probe in flight"), std::string::npos);
  EXPECT_EQ(second.retry_at, now() + settings_.probe_timeout);
  // A success from an attempt that is not the probe proves nothing.
  breaker_.RecordSuccess(settings_, now(), 0);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kHalfOpen);
  breaker_.RecordSuccess(settings_, now(), probe.probe_id);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kAllowed);
}

TEST_F(CircuitBreakerTest, AProbeThatMissesItsDeadlineReopensTheCircuit) {
  OpenNow();
  clock_.Advance(breaker_.open_until() - now());
  ASSERT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kProbe);
  clock_.Advance(settings_.probe_timeout);  // the probe hangs
  CircuitBreaker::Admission a = breaker_.Admit(settings_, now(), gen_);
  EXPECT_EQ(a.kind, Kind::kRejected);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
  EXPECT_NE(breaker_.open_reason().find("timed out"), std::string::npos);
  EXPECT_EQ(breaker_.ejections(), 2);
}

TEST_F(CircuitBreakerTest, SeveralProbesWhenConfigured) {
  settings_.half_open_probes = 3;
  OpenNow();
  clock_.Advance(breaker_.open_until() - now());
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kProbe);
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kProbe);
  CircuitBreaker::Admission third = breaker_.Admit(settings_, now(), gen_);
  EXPECT_EQ(third.kind, Kind::kProbe);
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kRejected);
  // A cancelled probe gives its slot back.
  breaker_.ReleaseProbe(third.probe_id);
  EXPECT_EQ(breaker_.Admit(settings_, now(), gen_).kind, Kind::kProbe);
}

TEST_F(CircuitBreakerTest, EjectionCountDecaysWhileHealthy) {
  OpenNow();
  RecoverNow();
  // Healthy for one base ejection time: the next opening is a first one again.
  clock_.Advance(absl::Seconds(30));
  const absl::Duration again = OpenNow();
  EXPECT_LT(again, absl::Seconds(34));
  RecoverNow();
  // Reopening right away: the multiplier grows.
  const absl::Duration soon = OpenNow();
  EXPECT_GE(soon, absl::Seconds(60));
}

TEST_F(CircuitBreakerTest, APanicAttemptThatSucceedsClosesTheCircuit) {
  OpenNow();
  breaker_.RecordFailure(settings_, now(), CircuitBreaker::kPanicProbe, gen_);  // no change
  EXPECT_EQ(breaker_.ejections(), 1);
  breaker_.RecordSuccess(settings_, now(), CircuitBreaker::kPanicProbe);
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
}

}  // namespace
}  // namespace turnpike
