// The circuit breaker of one upstream, built as Envoy-style outlier ejection (docs/resilience.md).
// Closed: every attempt is admitted; N consecutive failures, or a failure rate over a
// threshold with a minimum volume in a sliding window, open it. Open: nothing is admitted until
// the ejection time passes; the n-th consecutive ejection lasts n × base (capped, plus up to 10%
// jitter so upstreams do not all return at once), and the count decays by one per base ejection
// time spent healthy. Half-open: up to `half_open_probes` probes are admitted, each with a
// deadline; the first probe success closes the circuit, a probe failure (or a probe that misses
// its deadline) opens it again.
//
// A "panic" attempt (every target of a chain was open, so the one closest to recovery is tried
// anyway) passes kPanicProbe: its success closes the circuit, its failure changes nothing.
//
// Time is passed in, so the breaker runs on a simulated clock in tests. Thread-compatible: its
// owner (UpstreamState) serializes calls.
#ifndef TURNPIKE_SERVER_RESILIENCE_CIRCUIT_BREAKER_H_
#define TURNPIKE_SERVER_RESILIENCE_CIRCUIT_BREAKER_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "server/resilience/policy.h"

namespace turnpike {

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  static constexpr uint64_t kPanicProbe = ~uint64_t{0};

  struct Admission {
    enum class Kind { kAllowed, kProbe, kRejected };
    Kind kind = Kind::kAllowed;
    // kProbe: pass it back with the attempt's outcome.
    uint64_t probe_id = 0;
    // kRejected: the earliest time the circuit may admit again.
    absl::Time retry_at;
    // kRejected: why, for the attempt list ("circuit open after 5 consecutive failures").
    std::string reason;
  };

  // Decides whether an attempt may go to this upstream now. May move open → half-open, and
  // reserves a probe slot when it returns kProbe.
  Admission Admit(const BreakerSettings& settings, absl::Time now, absl::BitGenRef rng);

  // The outcome of an attempt; `probe_id` is the id from a kProbe admission, kPanicProbe, or 0.
  void RecordSuccess(const BreakerSettings& settings, absl::Time now, uint64_t probe_id);
  // Returns true if this failure opened the circuit.
  bool RecordFailure(const BreakerSettings& settings, absl::Time now, uint64_t probe_id,
                     absl::BitGenRef rng);
  // A probe ended without a verdict (the client cancelled): its slot is free again.
  void ReleaseProbe(uint64_t probe_id);

  State state() const { return state_; }
  absl::Time open_until() const { return open_until_; }
  int ejections() const { return ejections_; }
  int consecutive_failures() const { return consecutive_; }
  const std::string& open_reason() const { return open_reason_; }
  // Attempts and failures in the current window (for metrics).
  std::pair<int64_t, int64_t> WindowCounts(const BreakerSettings& settings, absl::Time now) const;

 private:
  struct Bucket {
    int64_t index = -1;
    int64_t successes = 0;
    int64_t failures = 0;
  };
  struct Probe {
    uint64_t id;
    absl::Time deadline;
  };
  static constexpr int kBuckets = 10;

  void Open(const BreakerSettings& settings, absl::Time now, std::string reason,
            absl::BitGenRef rng);
  void Close(absl::Time now);
  void AddToWindow(const BreakerSettings& settings, absl::Time now, bool failure);

  State state_ = State::kClosed;
  int consecutive_ = 0;
  int ejections_ = 0;
  absl::Time open_until_ = absl::InfinitePast();
  absl::Time closed_at_ = absl::InfinitePast();
  std::string open_reason_;
  std::vector<Probe> probes_;
  uint64_t next_probe_id_ = 1;
  std::array<Bucket, kBuckets> window_{};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_CIRCUIT_BREAKER_H_
