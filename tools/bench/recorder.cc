#include "tools/bench/recorder.h"

#include <time.h>

#include <algorithm>
#include <cmath>

namespace turnpike::bench {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void Recorder::Merge(const Recorder& other) {
  started += other.started;
  measured += other.measured;
  ok += other.ok;
  errors += other.errors;
  stalled += other.stalled;
  not_sent += other.not_sent;
  window_ok += other.window_ok;
  last_end_ns = std::max(last_end_ns, other.last_end_ns);
  for (const auto& [name, n] : other.error_counts) error_counts[name] += n;
  latency_ns.insert(latency_ns.end(), other.latency_ns.begin(), other.latency_ns.end());
  ttft_ns.insert(ttft_ns.end(), other.ttft_ns.begin(), other.ttft_ns.end());
  gap_ns.insert(gap_ns.end(), other.gap_ns.begin(), other.gap_ns.end());
}

void CallTimer::Start(Recorder& recorder, int64_t intended_ns, int64_t stall_ns) {
  start_ns_ = intended_ns;
  last_message_ns_ = intended_ns;
  last_token_ns_ = -1;
  first_token_ns_ = -1;
  stall_ns_ = stall_ns;
  stalled_ = false;
  measured_ = intended_ns >= recorder.window().warmup_end_ns;
  ++recorder.started;
  if (measured_) ++recorder.measured;
}

void CallTimer::OnMessage(Recorder& recorder, int64_t now_ns, bool is_token) {
  if (stall_ns_ > 0 && now_ns - last_message_ns_ > stall_ns_) stalled_ = true;
  last_message_ns_ = now_ns;
  if (!is_token) return;
  if (first_token_ns_ < 0) {
    first_token_ns_ = now_ns;
  } else if (measured_) {
    recorder.gap_ns.push_back(now_ns - last_token_ns_);
  }
  last_token_ns_ = now_ns;
}

void CallTimer::Finish(Recorder& recorder, int64_t now_ns, std::string_view error) {
  if (stall_ns_ > 0 && now_ns - last_message_ns_ > stall_ns_) stalled_ = true;
  recorder.last_end_ns = std::max(recorder.last_end_ns, now_ns);
  const Window& w = recorder.window();
  if (error.empty() && now_ns >= w.warmup_end_ns && now_ns <= w.window_end_ns) {
    ++recorder.window_ok;
  }
  if (!measured_) return;
  if (!error.empty()) {
    ++recorder.errors;
    ++recorder.error_counts[std::string(error)];
    return;
  }
  ++recorder.ok;
  if (stalled_) ++recorder.stalled;
  recorder.latency_ns.push_back(now_ns - start_ns_);
  if (first_token_ns_ >= 0) recorder.ttft_ns.push_back(first_token_ns_ - start_ns_);
}

int64_t NearestRank(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return -1;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

Distribution Summarize(std::vector<int64_t>& samples_ns) {
  Distribution d;
  d.count = static_cast<int64_t>(samples_ns.size());
  if (samples_ns.empty()) return d;
  std::sort(samples_ns.begin(), samples_ns.end());
  double sum = 0;
  for (int64_t v : samples_ns) sum += static_cast<double>(v);
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  d.mean_us = sum / static_cast<double>(samples_ns.size()) / 1000.0;
  d.p50_us = us(NearestRank(samples_ns, 0.50));
  d.p90_us = us(NearestRank(samples_ns, 0.90));
  d.p99_us = us(NearestRank(samples_ns, 0.99));
  d.p999_us = us(NearestRank(samples_ns, 0.999));
  d.max_us = us(samples_ns.back());
  return d;
}

}  // namespace turnpike::bench
