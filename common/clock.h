// Time as an injected dependency: production code takes a Clock& and tests pass a SimulatedClock,
// so timeouts, backoff and expiry are tested without sleeping. Clock implementations are
// thread-safe.
#ifndef TURNPIKE_COMMON_CLOCK_H_
#define TURNPIKE_COMMON_CLOCK_H_

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

  // The process-wide real clock.
  static Clock& Real();
};

// A clock that moves only when told to. Now() and MonotonicNow() advance together.
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24 * 365 * 50))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_CLOCK_H_
