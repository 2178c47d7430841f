// Time as an injected dependency: production code takes a Clock& and tests pass a SimulatedClock,
// so timeouts, backoff and expiry are tested without sleeping. A component that waits (a backoff
// between reconnects, a periodic report) waits through its Clock (AwaitWithDeadline), so a
// simulated clock drives its timers too. Clock implementations are thread-safe.
#ifndef TURNPIKE_COMMON_CLOCK_H_
#define TURNPIKE_COMMON_CLOCK_H_

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace turnpike {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for timestamps shown to people.
  virtual absl::Time Now() = 0;
  // Monotonic time, for measuring intervals and deadlines; never goes backwards.
  virtual absl::Time MonotonicNow() = 0;
  // Waits until `cond` holds or MonotonicNow() reaches `deadline`, whichever is first; returns
  // whether `cond` holds. `mu` is held on entry and exit and released while waiting, as in
  // absl::Mutex::AwaitWithDeadline. The real clock waits in real time.
  virtual bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // The process-wide real clock.
  static Clock& Real();
};

// A clock that moves only when told to. Now() and MonotonicNow() advance together. A waiter
// (AwaitWithDeadline) wakes when its condition holds or once Advance() has moved the clock past
// its deadline. TimedWaiters() lets a test move time only while the code under test is blocked
// waiting for it (not while it is busy doing real I/O), so simulated durations stay exact on a
// loaded machine.
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24 * 365 * 50))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  // Threads inside AwaitWithDeadline whose deadline has not passed yet. (A waiter whose
  // condition has just come true counts until it returns.)
  int TimedWaiters();

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::multiset<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_CLOCK_H_
