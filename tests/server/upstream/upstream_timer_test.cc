// UpstreamLoop timers (RunAfter / CancelTimer): they run on the loop thread, in deadline order,
// never early; cancelled ones never run; pending ones run when the loop stops.
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {
namespace {

absl::Time Monotonic() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

TEST(UpstreamTimerTest, RunsInOrderOnTheLoopThreadAndNeverEarly) {
  auto loop = UpstreamLoop::Create({});
  ASSERT_TRUE(loop.ok());
  absl::Mutex mu;
  std::vector<int> order;
  std::thread::id first_thread;
  absl::Notification done;
  const absl::Time start = Monotonic();
  absl::Time fired_late;
  (*loop)->RunAfter(absl::Milliseconds(60), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
    fired_late = Monotonic();
    done.Notify();
  });
  (*loop)->RunAfter(absl::Milliseconds(20), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(1);
    first_thread = std::this_thread::get_id();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_NE(first_thread, std::this_thread::get_id());
  EXPECT_GE(fired_late - start, absl::Milliseconds(60));
}

TEST(UpstreamTimerTest, CancelledTimersNeverRun) {
  auto loop = UpstreamLoop::Create({});
  ASSERT_TRUE(loop.ok());
  std::atomic<bool> ran{false};
  absl::Notification later;
  const UpstreamLoop::TimerId id =
      (*loop)->RunAfter(absl::Milliseconds(30), [&] { ran.store(true); });
  ASSERT_NE(id, 0u);
  (*loop)->CancelTimer(id);
  (*loop)->RunAfter(absl::Milliseconds(80), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(ran.load());
}

TEST(UpstreamTimerTest, StopRunsPendingTimersAndRefusesNewOnes) {
  auto loop = UpstreamLoop::Create({});
  ASSERT_TRUE(loop.ok());
  std::atomic<int> ran{0};
  (*loop)->RunAfter(absl::Hours(1), [&] { ran.fetch_add(1); });
  // A timer that queues more work while the loop stops: that runs too.
  (*loop)->RunAfter(absl::Hours(2), [&] {
    ran.fetch_add(1);
    (*loop)->RunAfter(absl::ZeroDuration(), [&] { ran.fetch_add(1); });
  });
  const absl::Time start = Monotonic();
  (*loop)->Stop();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_LT(Monotonic() - start, absl::Seconds(5));
  EXPECT_EQ((*loop)->RunAfter(absl::ZeroDuration(), [&] { ran.fetch_add(1); }), 0u);
  EXPECT_EQ(ran.load(), 3);
}

// Work a loop posts to itself skips the eventfd wake-up; it must still run before the loop waits
// again. A chain of timers, each set by the one before from the loop thread (with no transfer
// or other timer that would wake the loop anyway), runs to its end.
TEST(UpstreamTimerTest, WorkPostedFromTheLoopThreadRunsWithoutAWakeUp) {
  auto loop = UpstreamLoop::Create({});
  ASSERT_TRUE(loop.ok());
  UpstreamLoop* raw = loop->get();
  constexpr int kChain = 50;
  std::atomic<int> ran{0};
  absl::Notification done;
  std::function<void()> next = [&] {
    if (ran.fetch_add(1) + 1 == kChain) {
      done.Notify();
      return;
    }
    raw->RunAfter(absl::ZeroDuration(), next);
  };
  raw->RunAfter(absl::ZeroDuration(), next);
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30))) << ran.load() << " ran";
  // A timer cancelled from the loop thread never runs, and a later one still does.
  std::atomic<bool> cancelled_ran{false};
  absl::Notification after;
  raw->RunAfter(absl::ZeroDuration(), [&] {
    const UpstreamLoop::TimerId id =
        raw->RunAfter(absl::Milliseconds(20), [&] { cancelled_ran.store(true); });
    raw->CancelTimer(id);
    raw->RunAfter(absl::Milliseconds(40), [&] { after.Notify(); });
  });
  ASSERT_TRUE(after.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(cancelled_ran.load());
}

}  // namespace
}  // namespace turnpike
