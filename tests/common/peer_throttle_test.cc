#include "common/peer_throttle.h"

#include <string>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

PeerThrottle::Options Small() {
  PeerThrottle::Options o;
  o.window = absl::Minutes(1);
  o.free_failures = 3;
  o.step = 2;
  o.first_delay = absl::Milliseconds(100);
  o.max_delay = absl::Milliseconds(700);
  o.max_peers = 8;
  o.max_held = 1000;
  return o;
}

TEST(PeerAddressKeyTest, DropsThePortSoReconnectingIsTheSamePeer) {
  EXPECT_EQ(PeerAddressKey("ipv4:10.0.0.7:51234"), "10.0.0.7");
  EXPECT_EQ(PeerAddressKey("ipv4:10.0.0.7:40000"), "10.0.0.7");
  EXPECT_EQ(PeerAddressKey("ipv6:[::1]:51234"), "::1");
  EXPECT_EQ(PeerAddressKey("ipv6:[::ffff:127.0.0.1]:9"), "::ffff:127.0.0.1");
  EXPECT_EQ(PeerAddressKey("unix:/tmp/a.sock"), "unix");
  EXPECT_EQ(PeerAddressKey("10.1.2.3"), "10.1.2.3");
}

TEST(PeerThrottleTest, DelayDoublesEveryStepUpToTheCap) {
  SimulatedClock clock;
  PeerThrottle t(Small(), clock);
  std::vector<int64_t> holds_ms;
  for (int i = 0; i < 12; ++i) {
    PeerThrottle::Verdict v = t.RecordFailure("10.0.0.1");
    holds_ms.push_back(absl::ToInt64Milliseconds(v.hold));
    if (v.throttled()) t.Release();
    clock.Advance(absl::Seconds(1));
  }
  // Three free failures, then 100 ms twice, 200 ms twice, 400 ms twice, then the 700 ms cap.
  EXPECT_EQ(holds_ms, (std::vector<int64_t>{0, 0, 0, 100, 100, 200, 200, 400, 400, 700, 700, 700}));
  EXPECT_EQ(t.failures_total(), 12u);
  EXPECT_EQ(t.held_total(), 9u);
}

TEST(PeerThrottleTest, OnePeersFailuresDoNotSlowAnother) {
  SimulatedClock clock;
  PeerThrottle t(Small(), clock);
  for (int i = 0; i < 50; ++i) {
    if (t.RecordFailure("10.0.0.1").throttled()) t.Release();
  }
  EXPECT_EQ(t.ThrottledPeers(), 1u);
  // The other peer gets its own free failures, whatever the first one did.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(t.RecordFailure("10.0.0.2").throttled()) << i;
  EXPECT_TRUE(t.RecordFailure("10.0.0.2").throttled());
  EXPECT_EQ(t.ThrottledPeers(), 2u);
}

TEST(PeerThrottleTest, AQuietWindowForgivesAndThrottledPeersAgeOut) {
  SimulatedClock clock;
  PeerThrottle t(Small(), clock);
  for (int i = 0; i < 10; ++i) t.RecordFailure("10.0.0.1");
  EXPECT_EQ(t.ThrottledPeers(), 1u);
  clock.Advance(absl::Minutes(1));
  EXPECT_EQ(t.ThrottledPeers(), 0u);
  EXPECT_FALSE(t.RecordFailure("10.0.0.1").throttled());
}

TEST(PeerThrottleTest, TheTableIsBoundedWhenAnAttackerRotatesAddresses) {
  SimulatedClock clock;
  PeerThrottle t(Small(), clock);
  for (int i = 0; i < 10; ++i) {
    if (t.RecordFailure("10.0.0.1").throttled()) t.Release();
  }
  for (int i = 0; i < 100000; ++i) t.RecordFailure("192.168." + std::to_string(i));
  EXPECT_EQ(t.TrackedPeers(), 8u);
  // Rotation evicts the least recently failed first; the hammering peer, failing again, is
  // remembered again from its next failure on.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(t.RecordFailure("10.0.0.1").throttled());
  EXPECT_TRUE(t.RecordFailure("10.0.0.1").throttled());
  EXPECT_EQ(t.TrackedPeers(), 8u);
}

TEST(PeerThrottleTest, AtMostMaxHeldRefusalsAreHeldAtOnce) {
  SimulatedClock clock;
  PeerThrottle::Options o = Small();
  o.max_held = 2;
  PeerThrottle t(o, clock);
  for (int i = 0; i < 3; ++i) t.RecordFailure("10.0.0.1");
  EXPECT_TRUE(t.RecordFailure("10.0.0.1").throttled());
  EXPECT_TRUE(t.RecordFailure("10.0.0.1").throttled());
  EXPECT_FALSE(t.RecordFailure("10.0.0.1").throttled());  // both slots taken: answered at once
  t.Release();
  EXPECT_TRUE(t.RecordFailure("10.0.0.1").throttled());
}

TEST(PeerThrottleTest, ZeroMaxDelayTurnsTheSlowdownOffButStillCounts) {
  SimulatedClock clock;
  PeerThrottle::Options o = Small();
  o.max_delay = absl::ZeroDuration();
  PeerThrottle t(o, clock);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(t.RecordFailure("10.0.0.1").throttled());
  EXPECT_EQ(t.failures_total(), 20u);
  EXPECT_EQ(t.ThrottledPeers(), 1u);
}

}  // namespace
}  // namespace turnpike
