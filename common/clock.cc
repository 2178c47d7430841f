#include "common/clock.h"

#include <time.h>

#include <iterator>

namespace turnpike {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  absl::Time MonotonicNow() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::TimeFromTimespec(ts);
  }
};

}  // namespace

bool Clock::AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond, absl::Time deadline) {
  return mu.AwaitWithTimeout(cond, deadline - MonotonicNow());
}

bool SimulatedClock::AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond,
                                       absl::Time deadline) {
  // Time moves only in Advance(), on another thread and under another mutex: look at it again
  // every millisecond of real time. Lock order: the caller's `mu`, then mu_ (Advance takes only
  // mu_), so this cannot deadlock.
  std::multiset<absl::Time>::iterator mine;
  {
    absl::MutexLock lock(&mu_);
    mine = deadlines_.insert(deadline);
  }
  bool met = true;
  while (!mu.AwaitWithTimeout(cond, absl::Milliseconds(1))) {
    if (MonotonicNow() >= deadline) {
      met = false;
      break;
    }
  }
  absl::MutexLock lock(&mu_);
  deadlines_.erase(mine);
  return met;
}

int SimulatedClock::TimedWaiters() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(std::distance(deadlines_.upper_bound(now_), deadlines_.end()));
}

Clock& Clock::Real() {
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace turnpike
