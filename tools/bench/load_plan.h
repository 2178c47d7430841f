// The shape of a load run (closed loop with N outstanding calls, or open loop at a target rate)
// and the per-worker Schedule that says when the next call may start. Each worker thread owns
// one Schedule and a share of the load; the shares add up to the whole. Not thread-safe.
#ifndef TURNPIKE_TOOLS_BENCH_LOAD_PLAN_H_
#define TURNPIKE_TOOLS_BENCH_LOAD_PLAN_H_

#include <cstdint>

#include "absl/time/time.h"
#include "tools/bench/recorder.h"

namespace turnpike::bench {

struct LoadOptions {
  int concurrency = 1;  // closed loop: calls kept outstanding (ignored when rate > 0)
  double rate = 0;      // open loop: calls started per second, all workers together
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(10);
  int64_t max_requests = 0;  // 0: no limit; otherwise the run also stops after this many calls
  absl::Duration deadline = absl::Seconds(30);  // per call
  absl::Duration stall = absl::ZeroDuration();  // a gap longer than this marks a call stalled
  int threads = 1;
  int max_inflight = 20000;  // open loop: per-run bound on outstanding calls
};

// Splits `total` into `parts` shares that differ by at most one; share `index`.
int64_t Share(int64_t total, int parts, int index);

// How many workers a run uses: options.threads, but never more than the closed loop's slots.
int Workers(const LoadOptions& options);

class Schedule {
 public:
  // Worker `worker` of `workers`, for a run that begins at `start_ns`.
  Schedule(const LoadOptions& options, int worker, int workers, int64_t start_ns);

  const Window& window() const { return window_; }
  bool open_loop() const { return interval_ns_ > 0; }
  // Closed loop: how many calls this worker keeps outstanding.
  int slots() const { return slots_; }
  int max_inflight() const { return max_inflight_; }
  int64_t stall_ns() const { return stall_ns_; }
  int64_t deadline_ns() const { return deadline_ns_; }

  // Closed loop: whether another call may start at `now_ns`; counts it if so.
  bool TakeClosed(int64_t now_ns);
  // Open loop: the scheduled time of the next arrival, or -1 when the run has no more.
  int64_t NextArrival() const;
  // Open loop: consumes the arrival returned by NextArrival().
  void TakeArrival();

 private:
  Window window_;
  int64_t end_ns_ = 0;  // no call starts at or after this
  int slots_ = 0;
  int64_t interval_ns_ = 0;
  int64_t next_arrival_ns_ = 0;
  int64_t remaining_ = -1;  // -1: unlimited
  int max_inflight_ = 0;
  int64_t stall_ns_ = 0;
  int64_t deadline_ns_ = 0;
};

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_LOAD_PLAN_H_
