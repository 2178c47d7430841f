// The gRFC A6 retry throttle and the Envoy-style retry budget.
#include "server/resilience/retry_limits.h"

#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(RetryThrottleTest, StopsRetryingAfterFiveFailuresAndRecoversWithSuccesses) {
  RetryThrottle throttle;
  EXPECT_TRUE(throttle.RetryAllowed());
  for (int i = 0; i < 4; ++i) throttle.RecordFailure();
  EXPECT_TRUE(throttle.RetryAllowed());  // 6 tokens > 5
  throttle.RecordFailure();
  EXPECT_FALSE(throttle.RetryAllowed());  // 5 tokens: not more than half
  for (int i = 0; i < 20; ++i) throttle.RecordFailure();
  EXPECT_EQ(throttle.tokens(), 0);  // never negative
  // Each success gives back 0.1: 51 successes take it past 5 again.
  for (int i = 0; i < 50; ++i) throttle.RecordSuccess();
  EXPECT_FALSE(throttle.RetryAllowed());
  throttle.RecordSuccess();
  EXPECT_TRUE(throttle.RetryAllowed());
  for (int i = 0; i < 1000; ++i) throttle.RecordSuccess();
  EXPECT_EQ(throttle.tokens(), 10);  // capped
}

TEST(RetryBudgetTest, AllowsThreeRetriesWhenIdle) {
  RetryBudget budget;
  EXPECT_TRUE(budget.TryReserveRetry());
  EXPECT_TRUE(budget.TryReserveRetry());
  EXPECT_TRUE(budget.TryReserveRetry());
  EXPECT_FALSE(budget.TryReserveRetry());
  budget.FinishRetry();
  EXPECT_TRUE(budget.TryReserveRetry());
}

TEST(RetryBudgetTest, AllowsTwentyPercentOfActiveRequests) {
  RetryBudget budget;
  for (int i = 0; i < 100; ++i) budget.StartRequest();
  int granted = 0;
  while (budget.TryReserveRetry()) ++granted;
  // Retries in flight are active requests too: a retry is granted while r < floor((100 + r) / 5),
  // so the 25th is refused (24 < floor(124 / 5) is false).
  EXPECT_EQ(granted, 24);
  EXPECT_EQ(budget.active_retries(), 24);
  for (int i = 0; i < 24; ++i) budget.FinishRetry();
  for (int i = 0; i < 100; ++i) budget.FinishRequest();
  EXPECT_EQ(budget.active_requests(), 0);
}

}  // namespace
}  // namespace turnpike
