// Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
// exposition format (version 0.0.4) for a /metrics endpoint.
//
// A MetricsRegistry owns metric families; a family hands out one series per label-value tuple
// (created on first use, never destroyed, so callers may keep the pointer and skip the lookup on
// hot paths). Counter, Gauge and Histogram updates are lock-free (relaxed atomics); a family
// lookup takes a reader lock, and a lock for writing only the first time a label tuple is seen.
// Values computed at scrape time (breaker state, RSS) come from collectors: callbacks that
// append samples while Render() runs. Label values must come from bounded sets (config names,
// status codes), never from request content.
// Thread-safe throughout.
#ifndef TURNPIKE_COMMON_METRICS_H_
#define TURNPIKE_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace turnpike {

class Counter {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative buckets with upper bounds in the metric's unit: seconds (the unit Prometheus expects
// for durations), whose observations are taken in nanoseconds so hot paths need no floating point;
// or a count such as tokens (Counts), observed as whole numbers.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds_seconds)
      : Histogram(std::move(bounds_seconds), kNanosPerSecond) {}
  // A histogram of whole numbers (tokens, bytes): bounds and observations in the same unit.
  static std::unique_ptr<Histogram> Counts(std::vector<double> bounds) {
    return std::unique_ptr<Histogram>(new Histogram(std::move(bounds), 1));
  }
  // For a seconds histogram.
  void ObserveNanos(int64_t nanos) { Observe(nanos); }
  void ObserveSeconds(double seconds) { ObserveNanos(static_cast<int64_t>(seconds * 1e9)); }
  // For a Counts histogram.
  void ObserveCount(int64_t n) { Observe(n); }

  struct Snapshot {
    std::vector<double> bounds;     // in the metric's unit
    std::vector<uint64_t> buckets;  // per bound, not cumulative; one extra for +Inf
    uint64_t count = 0;
    double sum = 0;  // in the metric's unit
    // The value below which a fraction `q` of observations fall, interpolated within the
    // bucket (the way Prometheus' histogram_quantile does); NaN if empty.
    double Quantile(double q) const;
  };
  Snapshot Take() const;

 private:
  static constexpr int64_t kNanosPerSecond = 1'000'000'000;
  // `ticks_per_unit` observation ticks make one unit of the bounds.
  Histogram(std::vector<double> bounds, int64_t ticks_per_unit);
  void Observe(int64_t ticks);

  const std::vector<double> bounds_;
  const int64_t ticks_per_unit_;
  const std::vector<int64_t> bounds_ticks_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<int64_t> sum_ticks_{0};
};

// Bucket bounds for latencies from microseconds to seconds.
std::vector<double> MicrosToSecondsBuckets();
// Fine bucket bounds for a gateway's own per-request work: microsecond steps where its targets
// are (tens of µs), coarser up to a second.
std::vector<double> OverheadBuckets();
// Bucket bounds for request durations from a millisecond to minutes.
std::vector<double> RequestDurationBuckets();
// The bucket bounds the OpenTelemetry GenAI semantic conventions recommend (docs/metrics.md,
// "OpenTelemetry GenAI names"): request duration and time to first token in seconds, token usage
// in tokens.
std::vector<double> GenAiRequestDurationBuckets();
std::vector<double> GenAiTimeToFirstTokenBuckets();
std::vector<double> GenAiTokenUsageBuckets();

// Resident set size of this process in bytes (from /proc/self/statm), 0 if unreadable.
double ProcessResidentBytes();

// One sample emitted by a collector at scrape time.
struct MetricSample {
  std::vector<std::string> label_values;
  double value = 0;
};

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  template <typename T>
  class Family {
   public:
    // The series for `label_values` (one per label name, in order).
    T& With(const std::vector<std::string>& label_values) ABSL_LOCKS_EXCLUDED(mu_);

   private:
    friend class MetricsRegistry;
    Family(std::string name, std::string help, std::vector<std::string> labels,
           std::function<std::unique_ptr<T>()> make)
        : name_(std::move(name)),
          help_(std::move(help)),
          labels_(std::move(labels)),
          make_(std::move(make)) {}
    const std::string name_, help_;
    const std::vector<std::string> labels_;
    const std::function<std::unique_ptr<T>()> make_;
    mutable absl::Mutex mu_;
    absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
  };

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registering a name twice returns the first family (the help and labels must match).
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds_seconds,
                                  std::vector<std::string> labels = {});
  // A histogram of whole numbers (Histogram::Counts), e.g. tokens per request.
  Family<Histogram>& AddCountHistogram(const std::string& name, const std::string& help,
                                       std::vector<double> bounds,
                                       std::vector<std::string> labels = {});
  // A family whose samples `collect` produces at each Render(). `type` is kCounter or kGauge.
  void AddCollector(const std::string& name, const std::string& help, Type type,
                    std::vector<std::string> labels,
                    std::function<std::vector<MetricSample>()> collect);

  // The whole registry in Prometheus text format, families in registration order.
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    Type type;
    std::unique_ptr<Family<Counter>> counters;
    std::unique_ptr<Family<Gauge>> gauges;
    std::unique_ptr<Family<Histogram>> histograms;
    // Collector families.
    std::string name, help;
    std::vector<std::string> labels;
    std::function<std::vector<MetricSample>()> collect;
  };
  Entry* Find(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The family `name` in `slot` of its entry, created (with `make` for its series) if new.
  template <typename T>
  Family<T>& AddFamily(std::unique_ptr<Family<T>> Entry::*slot, Type type, const std::string& name,
                       const std::string& help, std::vector<std::string> labels,
                       std::function<std::unique_ptr<T>()> make) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

template <typename T>
T& MetricsRegistry::Family<T>::With(const std::vector<std::string>& label_values) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(label_values);
    if (it != series_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto& slot = series_[label_values];
  if (slot == nullptr) slot = make_();
  return *slot;
}

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_METRICS_H_
