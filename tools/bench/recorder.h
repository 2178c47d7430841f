// What the load generator measures, and how. A Recorder belongs to one worker thread (no locks
// on the hot path: a call's timings go into its own worker's vectors) and the workers' recorders
// are merged once the run is over. CallTimer follows one call: total latency, time to first
// token (the first delta), the gaps between deltas, and whether any gap exceeded the stall
// threshold. Times are nanoseconds on the monotonic clock (NowNs()). Not thread-safe.
#ifndef TURNPIKE_TOOLS_BENCH_RECORDER_H_
#define TURNPIKE_TOOLS_BENCH_RECORDER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace turnpike::bench {

// Monotonic nanoseconds (CLOCK_MONOTONIC through the vDSO; a few tens of ns per call).
int64_t NowNs();

// The measurement window of a run. Calls that start before warmup_end are not measured;
// throughput counts the OK completions that end inside [warmup_end, window_end].
struct Window {
  int64_t warmup_end_ns = 0;
  int64_t window_end_ns = 0;
};

class Recorder {
 public:
  explicit Recorder(Window window) : window_(window) {}

  const Window& window() const { return window_; }

  // Appends `other`'s samples and counters to this one.
  void Merge(const Recorder& other);

  // Counters (every started call ends as exactly one of ok / error).
  int64_t started = 0;      // calls started, measured or not
  int64_t measured = 0;     // calls started inside the window
  int64_t ok = 0;           // measured calls that ended OK
  int64_t errors = 0;       // measured calls that ended with an error
  int64_t stalled = 0;      // measured calls with a gap above the stall threshold
  int64_t not_sent = 0;     // open loop: arrivals skipped because max_inflight was reached
  int64_t window_ok = 0;    // OK completions (measured or not) that ended inside the window
  int64_t last_end_ns = 0;  // when the last call of the run ended
  std::map<std::string, int64_t> error_counts;  // by status name, measured calls only

  // Samples of measured calls, in nanoseconds.
  std::vector<int64_t> latency_ns;  // OK calls: intended start to end
  std::vector<int64_t> ttft_ns;     // OK streaming calls: intended start to first delta
  std::vector<int64_t> gap_ns;      // between consecutive deltas of measured calls

 private:
  Window window_;
};

// Follows one call. Start() when the call is issued; OnMessage() for every message received
// (streams) or SSE data event (direct); Finish() once, with an empty error for success.
class CallTimer {
 public:
  // `intended_ns` is when the call should have started (open loop: its scheduled arrival, so a
  // late start counts against latency instead of being hidden); `stall_ns` 0 disables stalls.
  void Start(Recorder& recorder, int64_t intended_ns, int64_t stall_ns);
  void OnMessage(Recorder& recorder, int64_t now_ns, bool is_token);
  void Finish(Recorder& recorder, int64_t now_ns, std::string_view error);

 private:
  int64_t start_ns_ = 0;
  int64_t last_message_ns_ = 0;
  int64_t last_token_ns_ = -1;
  int64_t first_token_ns_ = -1;
  int64_t stall_ns_ = 0;
  bool measured_ = false;
  bool stalled_ = false;
};

// Percentiles of a sample set (nearest rank), in microseconds; -1 when there are no samples.
struct Distribution {
  int64_t count = 0;
  double mean_us = -1;
  double p50_us = -1;
  double p90_us = -1;
  double p99_us = -1;
  double p999_us = -1;
  double max_us = -1;
};

// Sorts `samples_ns` in place and summarizes it.
Distribution Summarize(std::vector<int64_t>& samples_ns);

// The value at quantile q (0..1] of sorted samples, nearest-rank; -1 when empty.
int64_t NearestRank(const std::vector<int64_t>& sorted, double q);

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_RECORDER_H_
