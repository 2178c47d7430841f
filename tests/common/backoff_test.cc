// Full-jitter backoff: the bounds of every draw, the exponential ceiling and its cap.
#include "common/backoff.h"

#include <random>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(BackoffTest, CeilingDoublesUpToTheCap) {
  const absl::Duration base = absl::Milliseconds(100);
  const absl::Duration cap = absl::Seconds(2);
  EXPECT_EQ(BackoffCeiling(base, cap, 0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffCeiling(base, cap, 1), absl::Milliseconds(200));
  EXPECT_EQ(BackoffCeiling(base, cap, 4), absl::Milliseconds(1600));
  EXPECT_EQ(BackoffCeiling(base, cap, 5), absl::Seconds(2));
  EXPECT_EQ(BackoffCeiling(base, cap, 1000), absl::Seconds(2));  // no overflow
  EXPECT_EQ(BackoffCeiling(absl::ZeroDuration(), cap, 3), absl::ZeroDuration());
}

TEST(BackoffTest, EveryDrawIsBelowItsCeilingAndTheRangeIsCovered) {
  std::mt19937_64 gen(7);
  const absl::Duration base = absl::Milliseconds(100);
  const absl::Duration cap = absl::Seconds(2);
  for (int retry = 0; retry < 8; ++retry) {
    const absl::Duration ceiling = BackoffCeiling(base, cap, retry);
    absl::Duration lo = absl::InfiniteDuration();
    absl::Duration hi = absl::ZeroDuration();
    for (int i = 0; i < 2000; ++i) {
      const absl::Duration d = FullJitterBackoff(base, cap, retry, gen);
      ASSERT_GE(d, absl::ZeroDuration());
      ASSERT_LT(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: draws spread over [0, ceiling), not clustered near it.
    EXPECT_LT(lo, ceiling / 20) << retry;
    EXPECT_GT(hi, ceiling * 19 / 20) << retry;
  }
}

TEST(BackoffTest, SameSeedSameSequence) {
  std::mt19937_64 a(99);
  std::mt19937_64 b(99);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(FullJitterBackoff(absl::Milliseconds(25), absl::Milliseconds(250), i, a),
              FullJitterBackoff(absl::Milliseconds(25), absl::Milliseconds(250), i, b));
  }
}

}  // namespace
}  // namespace turnpike
