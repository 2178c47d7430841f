// AuthThrottle slows down token guessing on the control plane. Every failed authentication (no,
// malformed, unknown or revoked token) is recorded; once more than `free_failures` happened within
// `window`, each further refusal is held for a delay that doubles every `step` failures, from
// `first_delay` up to `max_delay`. A valid token is never delayed. At most `max_waiting` refusals
// are held at once; beyond that they are answered at once, so a flood cannot pile up threads.
// The hold runs on gRPC's auth-processor thread pool (the Authenticator is a blocking
// AuthMetadataProcessor), never on a completion-queue or handler thread, and for at most
// `max_delay`. Failures are counted process-wide, not per peer: gRPC 1.51 does not tell an
// AuthMetadataProcessor the peer's address (docs/security.md). Time comes from the injected
// Clock, so tests run on a SimulatedClock. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_AUTH_THROTTLE_H_
#define TURNPIKE_CONTROLPLANE_AUTH_THROTTLE_H_

#include <atomic>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace turnpike::controlplane {

class AuthThrottle {
 public:
  struct Options {
    absl::Duration window = absl::Minutes(1);
    int free_failures = 5;
    int step = 5;
    absl::Duration first_delay = absl::Milliseconds(50);
    absl::Duration max_delay = absl::Seconds(2);  // zero turns the slowdown off
    int max_waiting = 16;
  };

  AuthThrottle(Options options, Clock& clock) : options_(options), clock_(clock) {}

  // Records one failed authentication now and returns until when (monotonic clock time) to hold
  // its refusal: absl::InfinitePast() (no hold) while failures are few, or when `max_waiting`
  // refusals are held already. A hold takes a waiting slot that Hold() gives back.
  absl::Time RecordFailure();
  // Holds until the clock reaches `until`, then releases the slot RecordFailure() took.
  void Hold(absl::Time until);

  uint64_t held_total() const { return held_total_.load(std::memory_order_relaxed); }

 private:
  const Options options_;
  Clock& clock_;

  absl::Mutex mu_;
  std::deque<absl::Time> failures_ ABSL_GUARDED_BY(mu_);  // monotonic times within the window
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  bool never_ ABSL_GUARDED_BY(mu_) = false;  // Hold()'s condition: waits out the deadline
  std::atomic<uint64_t> held_total_{0};
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUTH_THROTTLE_H_
