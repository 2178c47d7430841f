// LatencyEstimate is one upstream's recent time to first token, for routes that prefer the
// fastest target (TARGET_SELECTION_LEAST_LATENCY, docs/routing.md): an exponentially weighted
// average over its recent attempts (each new sample weighs 1/4) that counts as "no data" once its
// last sample is older than kFreshFor. Lock-free: two atomics updated with a compare-and-swap, so
// requests on every core record and read it without a shared lock. Thread-safe.
#ifndef TURNPIKE_SERVER_RESILIENCE_LATENCY_ESTIMATE_H_
#define TURNPIKE_SERVER_RESILIENCE_LATENCY_ESTIMATE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace turnpike {

class LatencyEstimate {
 public:
  // A sample older than this no longer says anything about the upstream.
  static constexpr absl::Duration kFreshFor = absl::Seconds(60);

  // Folds in one attempt's time to first token, observed at `now` (monotonic).
  void Record(absl::Duration ttft, absl::Time now) {
    const int64_t sample = std::max<int64_t>(1, absl::ToInt64Nanoseconds(ttft));
    int64_t old = average_nanos_.load(std::memory_order_relaxed);
    int64_t next;
    do {
      next = old == 0 ? sample : old + (sample - old) / 4;
      if (next <= 0) next = 1;  // 0 means "no sample"
    } while (!average_nanos_.compare_exchange_weak(old, next, std::memory_order_relaxed));
    last_sample_nanos_.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
  }

  // The average, or nullopt when there is no sample within kFreshFor of `now`.
  std::optional<absl::Duration> Recent(absl::Time now) const {
    const int64_t average = average_nanos_.load(std::memory_order_relaxed);
    if (average == 0) return std::nullopt;
    const absl::Time last = absl::FromUnixNanos(last_sample_nanos_.load(std::memory_order_relaxed));
    if (now - last > kFreshFor) return std::nullopt;
    return absl::Nanoseconds(average);
  }

 private:
  std::atomic<int64_t> average_nanos_{0};
  std::atomic<int64_t> last_sample_nanos_{0};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_LATENCY_ESTIMATE_H_
