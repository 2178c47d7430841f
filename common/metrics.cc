#include "common/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turnpike {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

// Label values escape backslash, double quote and newline (exposition format 0.0.4).
std::string EscapeLabel(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} plus an optional extra pair (le for histogram buckets); "" when empty.
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  const size_t n = std::min(names.size(), values.size());
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"", EscapeLabel(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

void Header(std::string* out, const std::string& name, const std::string& help, const char* type) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

template <typename T>
std::vector<std::pair<std::vector<std::string>, const T*>> Sorted(
    const absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<T>>& series) {
  std::vector<std::pair<std::vector<std::string>, const T*>> out;
  out.reserve(series.size());
  for (const auto& [labels, value] : series) out.emplace_back(labels, value.get());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

void Gauge::Add(double d) {
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + d, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds, int64_t ticks_per_unit)
    : bounds_(std::move(bounds)),
      ticks_per_unit_(ticks_per_unit),
      bounds_ticks_([this] {
        std::vector<int64_t> n;
        n.reserve(bounds_.size());
        for (double b : bounds_) {
          n.push_back(static_cast<int64_t>(std::llround(b * static_cast<double>(ticks_per_unit_))));
        }
        return n;
      }()),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(int64_t ticks) {
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_ticks_.begin(), bounds_ticks_.end(), ticks) - bounds_ticks_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ticks_.fetch_add(ticks, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds = bounds_;
  s.buckets.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];  // consistent with the buckets even while observations race
  }
  s.sum = static_cast<double>(sum_ticks_.load(std::memory_order_relaxed)) /
          static_cast<double>(ticks_per_unit_);
  return s;
}

double Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * static_cast<double>(count);
  uint64_t below = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const uint64_t in = buckets[i];
    if (in > 0 && static_cast<double>(below + in) >= rank) {
      const double lower = i == 0 ? 0.0 : bounds[i - 1];
      if (i == bounds.size()) return lower;  // +Inf bucket: the highest finite bound
      const double upper = bounds[i];
      return lower +
             (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
    }
    below += in;
  }
  return bounds.empty() ? 0 : bounds.back();
}

std::vector<double> MicrosToSecondsBuckets() {
  // 1-2.5-5 steps from 1 µs to 10 s.
  std::vector<double> b;
  for (double decade = 1e-6; decade < 10; decade *= 10) {
    b.push_back(decade);
    b.push_back(decade * 2.5);
    b.push_back(decade * 5);
  }
  b.push_back(10);
  return b;
}

std::vector<double> OverheadBuckets() {
  std::vector<double> b;
  for (double us : {1,   2,   3,   4,   5,    6,    8,    10,    12,    15,     20,
                    25,  30,  40,  50,  60,   80,   100,  125,   150,   200,    250,
                    300, 400, 500, 750, 1000, 2500, 5000, 10000, 25000, 100000, 1000000}) {
    b.push_back(us / 1e6);
  }
  return b;
}

std::vector<double> RequestDurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

// The bucket boundaries the OpenTelemetry GenAI semantic conventions say each metric SHOULD be
// specified with (the version and source are in docs/metrics.md).
std::vector<double> GenAiRequestDurationBuckets() {
  return {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
}

std::vector<double> GenAiTimeToFirstTokenBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
          0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
}

std::vector<double> GenAiTokenUsageBuckets() {
  return {1,     4,     16,     64,      256,     1024,     4096,
          16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
}

MetricsRegistry::Entry* MetricsRegistry::Find(const std::string& name) {
  for (auto& e : entries_) {
    const std::string& n = e->counters     ? e->counters->name_
                           : e->gauges     ? e->gauges->name_
                           : e->histograms ? e->histograms->name_
                                           : e->name;
    if (n == name) return e.get();
  }
  return nullptr;
}

template <typename T>
MetricsRegistry::Family<T>& MetricsRegistry::AddFamily(std::unique_ptr<Family<T>> Entry::*slot,
                                                       Type type, const std::string& name,
                                                       const std::string& help,
                                                       std::vector<std::string> labels,
                                                       std::function<std::unique_ptr<T>()> make) {
  absl::MutexLock lock(&mu_);
  if (Entry* e = Find(name); e != nullptr && e->*slot != nullptr) return *(e->*slot);
  auto e = std::make_unique<Entry>();
  e->type = type;
  (*e).*slot =
      std::unique_ptr<Family<T>>(new Family<T>(name, help, std::move(labels), std::move(make)));
  entries_.push_back(std::move(e));
  return *((*entries_.back()).*slot);
}

MetricsRegistry::Family<Counter>& MetricsRegistry::AddCounter(const std::string& name,
                                                              const std::string& help,
                                                              std::vector<std::string> labels) {
  return AddFamily<Counter>(&Entry::counters, Type::kCounter, name, help, std::move(labels),
                            [] { return std::make_unique<Counter>(); });
}

MetricsRegistry::Family<Gauge>& MetricsRegistry::AddGauge(const std::string& name,
                                                          const std::string& help,
                                                          std::vector<std::string> labels) {
  return AddFamily<Gauge>(&Entry::gauges, Type::kGauge, name, help, std::move(labels),
                          [] { return std::make_unique<Gauge>(); });
}

MetricsRegistry::Family<Histogram>& MetricsRegistry::AddHistogram(
    const std::string& name, const std::string& help, std::vector<double> bounds_seconds,
    std::vector<std::string> labels) {
  return AddFamily<Histogram>(
      &Entry::histograms, Type::kHistogram, name, help, std::move(labels),
      [bounds = std::move(bounds_seconds)] { return std::make_unique<Histogram>(bounds); });
}

MetricsRegistry::Family<Histogram>& MetricsRegistry::AddCountHistogram(
    const std::string& name, const std::string& help, std::vector<double> bounds,
    std::vector<std::string> labels) {
  return AddFamily<Histogram>(&Entry::histograms, Type::kHistogram, name, help, std::move(labels),
                              [bounds = std::move(bounds)] { return Histogram::Counts(bounds); });
}

void MetricsRegistry::AddCollector(const std::string& name, const std::string& help, Type type,
                                   std::vector<std::string> labels,
                                   std::function<std::vector<MetricSample>()> collect) {
  absl::MutexLock lock(&mu_);
  auto e = std::make_unique<Entry>();
  e->type = type;
  e->name = name;
  e->help = help;
  e->labels = std::move(labels);
  e->collect = std::move(collect);
  entries_.push_back(std::move(e));
}

std::string MetricsRegistry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    if (e->counters) {
      const auto& f = *e->counters;
      Header(&out, f.name_, f.help_, "counter");
      absl::ReaderMutexLock series_lock(&f.mu_);
      for (const auto& [labels, c] : Sorted(f.series_)) {
        absl::StrAppend(&out, f.name_, Labels(f.labels_, labels), " ", c->value(), "\n");
      }
    } else if (e->gauges) {
      const auto& f = *e->gauges;
      Header(&out, f.name_, f.help_, "gauge");
      absl::ReaderMutexLock series_lock(&f.mu_);
      for (const auto& [labels, g] : Sorted(f.series_)) {
        absl::StrAppend(&out, f.name_, Labels(f.labels_, labels), " ", FormatValue(g->value()),
                        "\n");
      }
    } else if (e->histograms) {
      const auto& f = *e->histograms;
      Header(&out, f.name_, f.help_, "histogram");
      absl::ReaderMutexLock series_lock(&f.mu_);
      for (const auto& [labels, h] : Sorted(f.series_)) {
        const Histogram::Snapshot s = h->Take();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < s.buckets.size(); ++i) {
          cumulative += s.buckets[i];
          const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
          absl::StrAppend(&out, f.name_, "_bucket", Labels(f.labels_, labels, "le", le), " ",
                          cumulative, "\n");
        }
        absl::StrAppend(&out, f.name_, "_sum", Labels(f.labels_, labels), " ", FormatValue(s.sum),
                        "\n");
        absl::StrAppend(&out, f.name_, "_count", Labels(f.labels_, labels), " ", s.count, "\n");
      }
    } else {
      Header(&out, e->name, e->help, e->type == Type::kCounter ? "counter" : "gauge");
      std::vector<MetricSample> samples = e->collect();
      std::sort(samples.begin(), samples.end(),
                [](const auto& a, const auto& b) { return a.label_values < b.label_values; });
      for (const MetricSample& s : samples) {
        absl::StrAppend(&out, e->name, Labels(e->labels, s.label_values), " ", FormatValue(s.value),
                        "\n");
      }
    }
  }
  return out;
}

double ProcessResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages_total = 0, pages_resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace turnpike
