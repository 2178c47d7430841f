#include "tools/bench/load_plan.h"

#include "gtest/gtest.h"

namespace turnpike::bench {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(ShareTest, SharesAddUp) {
  EXPECT_EQ(Share(10, 3, 0) + Share(10, 3, 1) + Share(10, 3, 2), 10);
  EXPECT_EQ(Share(10, 3, 0), 4);
  EXPECT_EQ(Share(10, 3, 2), 3);
  EXPECT_EQ(Share(1, 2, 1), 0);
}

TEST(ScheduleTest, ClosedLoopStopsAtTheEndOfTheWindow) {
  LoadOptions o;
  o.concurrency = 5;
  o.warmup = absl::Seconds(1);
  o.duration = absl::Seconds(2);
  Schedule s(o, 1, 2, 100 * kSec);
  EXPECT_FALSE(s.open_loop());
  EXPECT_EQ(s.slots(), 2);
  EXPECT_EQ(s.window().warmup_end_ns, 101 * kSec);
  EXPECT_EQ(s.window().window_end_ns, 103 * kSec);
  EXPECT_TRUE(s.TakeClosed(102 * kSec));
  EXPECT_FALSE(s.TakeClosed(103 * kSec));
}

TEST(ScheduleTest, ClosedLoopStopsAfterItsShareOfRequests) {
  LoadOptions o;
  o.concurrency = 4;
  o.max_requests = 3;
  Schedule s(o, 0, 2, 0);  // worker 0 has 2 of the 4 slots, so 1 of the 3 requests
  EXPECT_TRUE(s.TakeClosed(1));
  EXPECT_FALSE(s.TakeClosed(1));
  Schedule t(o, 1, 2, 0);
  EXPECT_TRUE(t.TakeClosed(1));
  EXPECT_TRUE(t.TakeClosed(1));
  EXPECT_FALSE(t.TakeClosed(1));
}

TEST(ScheduleTest, NoMoreWorkersThanSlots) {
  LoadOptions o;
  o.threads = 2;
  o.concurrency = 1;
  EXPECT_EQ(Workers(o), 1);
  o.rate = 10;
  EXPECT_EQ(Workers(o), 2);
}

TEST(ScheduleTest, OpenLoopWorkersInterleaveOneEvenStream) {
  LoadOptions o;
  o.rate = 1000;  // one arrival per ms overall
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(10);
  Schedule w0(o, 0, 2, 0);
  Schedule w1(o, 1, 2, 0);
  ASSERT_TRUE(w0.open_loop());
  EXPECT_EQ(w0.NextArrival(), 0);
  EXPECT_EQ(w1.NextArrival(), 1'000'000);
  w0.TakeArrival();
  EXPECT_EQ(w0.NextArrival(), 2'000'000);
  int n = 1;
  while (w0.NextArrival() >= 0) {
    w0.TakeArrival();
    ++n;
  }
  EXPECT_EQ(n, 5);  // 0, 2, 4, 6, 8 ms: nothing at or after the 10 ms end
}

}  // namespace
}  // namespace turnpike::bench
