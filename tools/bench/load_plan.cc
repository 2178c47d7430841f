#include "tools/bench/load_plan.h"

#include <algorithm>

namespace turnpike::bench {

int64_t Share(int64_t total, int parts, int index) {
  if (parts <= 0) return 0;
  return total / parts + (index < total % parts ? 1 : 0);
}

int Workers(const LoadOptions& options) {
  const int threads = std::max(1, options.threads);
  return options.rate > 0 ? threads : std::max(1, std::min(threads, options.concurrency));
}

Schedule::Schedule(const LoadOptions& options, int worker, int workers, int64_t start_ns) {
  window_.warmup_end_ns = start_ns + absl::ToInt64Nanoseconds(options.warmup);
  window_.window_end_ns = window_.warmup_end_ns + absl::ToInt64Nanoseconds(options.duration);
  end_ns_ = window_.window_end_ns;
  stall_ns_ = absl::ToInt64Nanoseconds(options.stall);
  deadline_ns_ = absl::ToInt64Nanoseconds(options.deadline);
  max_inflight_ =
      static_cast<int>(std::max<int64_t>(1, Share(options.max_inflight, workers, worker)));
  if (options.rate > 0) {
    // Each worker takes every `workers`-th arrival of the whole stream, so together they
    // produce one evenly spaced stream at `rate`.
    const double per_worker_interval = 1e9 * workers / options.rate;
    interval_ns_ = std::max<int64_t>(1, static_cast<int64_t>(per_worker_interval));
    next_arrival_ns_ = start_ns + static_cast<int64_t>(1e9 * worker / options.rate);
    if (options.max_requests > 0) remaining_ = Share(options.max_requests, workers, worker);
  } else {
    slots_ = static_cast<int>(Share(options.concurrency, workers, worker));
    if (options.max_requests > 0) {
      // In proportion to this worker's slots, so all workers finish at about the same time.
      int64_t slots_before = 0;
      for (int w = 0; w < worker; ++w) slots_before += Share(options.concurrency, workers, w);
      const int64_t total = std::max(1, options.concurrency);
      remaining_ = options.max_requests * (slots_before + slots_) / total -
                   options.max_requests * slots_before / total;
    }
  }
}

bool Schedule::TakeClosed(int64_t now_ns) {
  if (now_ns >= end_ns_ || remaining_ == 0) return false;
  if (remaining_ > 0) --remaining_;
  return true;
}

int64_t Schedule::NextArrival() const {
  if (next_arrival_ns_ >= end_ns_ || remaining_ == 0) return -1;
  return next_arrival_ns_;
}

void Schedule::TakeArrival() {
  next_arrival_ns_ += interval_ns_;
  if (remaining_ > 0) --remaining_;
}

}  // namespace turnpike::bench
