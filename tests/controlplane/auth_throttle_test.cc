// The slowdown of failed authentications on a simulated clock: free failures, the doubling delay
// and its ceiling, the window forgetting old failures, the cap on refusals held at once, and a
// hold that ends only when the clock passes it.
#include "controlplane/auth_throttle.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane {
namespace {

using ::turnpike::testing::WaitFor;

// How long RecordFailure() says to hold (zero for no hold).
absl::Duration Delay(AuthThrottle& throttle, Clock& clock) {
  const absl::Time until = throttle.RecordFailure();
  return until == absl::InfinitePast() ? absl::ZeroDuration() : until - clock.MonotonicNow();
}

AuthThrottle::Options Opts() {
  AuthThrottle::Options o;
  o.free_failures = 5;
  o.step = 5;
  o.first_delay = absl::Milliseconds(50);
  o.max_delay = absl::Seconds(2);
  o.max_waiting = 1000;
  return o;
}

TEST(AuthThrottleTest, DelayDoublesEveryStepUpToTheCeiling) {
  SimulatedClock clock;
  AuthThrottle throttle(Opts(), clock);
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 40; ++i) delays.push_back(Delay(throttle, clock));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(delays[i], absl::ZeroDuration()) << i;
  EXPECT_EQ(delays[5], absl::Milliseconds(50));
  EXPECT_EQ(delays[9], absl::Milliseconds(50));
  EXPECT_EQ(delays[10], absl::Milliseconds(100));
  EXPECT_EQ(delays[15], absl::Milliseconds(200));
  EXPECT_EQ(delays[20], absl::Milliseconds(400));
  EXPECT_EQ(delays[30], absl::Milliseconds(1600));
  EXPECT_EQ(delays[35], absl::Seconds(2));
  EXPECT_EQ(delays[39], absl::Seconds(2));
  EXPECT_EQ(throttle.held_total(), 35u);
}

TEST(AuthThrottleTest, FailuresOlderThanTheWindowAreForgotten) {
  SimulatedClock clock;
  AuthThrottle throttle(Opts(), clock);
  for (int i = 0; i < 20; ++i) (void)throttle.RecordFailure();
  EXPECT_GT(Delay(throttle, clock), absl::ZeroDuration());
  clock.Advance(absl::Minutes(1) + absl::Seconds(1));
  EXPECT_EQ(Delay(throttle, clock), absl::ZeroDuration());
}

TEST(AuthThrottleTest, AtMostMaxWaitingAreHeldAndZeroMaxDelayTurnsItOff) {
  SimulatedClock clock;
  AuthThrottle::Options o = Opts();
  o.free_failures = 0;
  o.max_waiting = 2;
  AuthThrottle throttle(o, clock);
  EXPECT_GT(Delay(throttle, clock), absl::ZeroDuration());
  EXPECT_GT(Delay(throttle, clock), absl::ZeroDuration());
  EXPECT_EQ(Delay(throttle, clock), absl::ZeroDuration());  // both slots taken
  o.max_delay = absl::ZeroDuration();
  AuthThrottle off(o, clock);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(Delay(off, clock), absl::ZeroDuration());
  EXPECT_EQ(off.held_total(), 0u);
}

TEST(AuthThrottleTest, HoldEndsWhenTheClockPassesItAndFreesItsSlot) {
  SimulatedClock clock;
  AuthThrottle::Options o = Opts();
  o.free_failures = 0;
  o.max_waiting = 1;
  AuthThrottle throttle(o, clock);
  const absl::Time until = throttle.RecordFailure();
  ASSERT_EQ(until - clock.MonotonicNow(), absl::Milliseconds(50));
  std::atomic<bool> done{false};
  std::thread holder([&] {
    throttle.Hold(until);
    done = true;
  });
  EXPECT_EQ(Delay(throttle, clock), absl::ZeroDuration());  // the one slot is in use
  EXPECT_FALSE(done.load());
  clock.Advance(absl::Milliseconds(49));
  EXPECT_FALSE(done.load());
  clock.Advance(absl::Milliseconds(2));
  EXPECT_TRUE(WaitFor([&] { return done.load(); }));
  holder.join();
  EXPECT_GT(Delay(throttle, clock), absl::ZeroDuration());  // the slot is free again
}

}  // namespace
}  // namespace turnpike::controlplane
