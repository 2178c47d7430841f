// GatewayMetrics is the data plane's set of Prometheus metrics (docs/metrics.md lists them):
// per-request counters and histograms updated on the hot path, and collectors that read the
// resilience registry, the upstream loops and the process at scrape time. Created once in main,
// before the server, and outlives every call.
//
// Internal overhead is the time the gateway's own threads spend on a request in gateway code:
// admission (parse, validate, authorize), routing and building the upstream request, handing
// work between threads, decoding each SSE event, queueing and serializing each response, and
// finishing. Excluded: waiting on the upstream, on timers (backoff) or on the client to read;
// libcurl's and the kernel's socket I/O; and the calls into gRPC that send each response
// message (their cost is the gRPC floor the bench measures beside it). The bench's
// CPU-per-completion figure covers everything.
// ScopedOverhead adds one stretch of such work to a request's running total.
// Thread-safe.
#ifndef TURNPIKE_SERVER_TELEMETRY_GATEWAY_METRICS_H_
#define TURNPIKE_SERVER_TELEMETRY_GATEWAY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "server/config/price.h"

namespace turnpike {

class Resilience;

// Overhead is the real time the gateway's threads spend on a request, so spans always read the
// real clock (a simulated one would measure nothing); every other data-plane time read goes
// through an injected Clock.
inline int64_t OverheadNowNanos() { return absl::ToUnixNanos(Clock::Real().MonotonicNow()); }

// Adds (kSign +1) or takes back (kSign -1) the time from construction to destruction to or from
// `total` (may be null: no-op).
template <int kSign>
class OverheadSpan {
 public:
  explicit OverheadSpan(std::atomic<int64_t>* total)
      : total_(total), start_(total != nullptr ? OverheadNowNanos() : 0) {}
  ~OverheadSpan() {
    if (total_ != nullptr) {
      total_->fetch_add(kSign * (OverheadNowNanos() - start_), std::memory_order_relaxed);
    }
  }
  OverheadSpan(const OverheadSpan&) = delete;
  OverheadSpan& operator=(const OverheadSpan&) = delete;

 private:
  std::atomic<int64_t>* const total_;
  const int64_t start_;
};

// A stretch of the gateway's own work on a request.
using ScopedOverhead = OverheadSpan<+1>;
// A call into the gRPC library (a write, a finish) inside such a stretch: its cost is the gRPC
// floor the bench measures, so it is taken back out.
using ExcludedFromOverhead = OverheadSpan<-1>;

class GatewayMetrics {
 public:
  enum class Method { kStreamCompletion = 0, kComplete = 1, kEmbed = 2 };

  GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  MetricsRegistry& registry() { return registry_; }

  // One finished request. `capability` is empty when the request named no configured route
  // (so client input never becomes a label).
  void RecordRequest(Method method, const std::string& capability, absl::StatusCode code,
                     int64_t duration_nanos);
  // A finished completion's internal overhead (see the header comment); ignored for kEmbed.
  void RecordOverhead(Method method, int64_t nanos);
  void RecordTimeToFirstToken(int64_t nanos) { ttft_->ObserveNanos(nanos); }
  // What one request used, as its caller was told: tokens by type and cost, by capability,
  // provider and model (all from the config, never from client input). Zero counts are skipped.
  // The types cached_input and cache_write_input are parts of input, reasoning_output a part of
  // output (docs/usage.md, "Token kinds").
  void RecordUsage(const std::string& capability, const std::string& provider,
                   const std::string& model, const TokenCounts& tokens, int64_t cost_usd_micros);
  // A finished request that a route's tier chain or variant served (docs/routing.md); the names
  // come from the config, never from client input.
  void RecordRouted(const std::string& capability, const std::string& tier_chain,
                    const std::string& variant, const std::string& provider,
                    const std::string& model, absl::StatusCode code);
  // One upstream attempt's outcome (attempt disposition name, e.g. "SERVED", "RETRIED").
  void RecordAttempt(const std::string& provider, const std::string& model,
                     const std::string& disposition);

  // Scrape-time sources. Each may be called once; the functions must be thread-safe and outlive
  // the registry's use.
  void AddResilience(const Resilience* resilience);
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> read);
  void AddCounter(const std::string& name, const std::string& help, std::function<double()> read);
  // The config version in force, as an info-style gauge (value 1, label version).
  void AddConfigVersion(std::function<std::string()> read);

 private:
  MetricsRegistry registry_;
  MetricsRegistry::Family<Counter>& requests_;
  MetricsRegistry::Family<Counter>& attempts_;
  MetricsRegistry::Family<Counter>& tokens_;
  MetricsRegistry::Family<Counter>& cost_;
  MetricsRegistry::Family<Counter>& routed_;
  Histogram* duration_[3] = {};
  Histogram* overhead_[3] = {};  // no series for kEmbed
  Histogram* ttft_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_TELEMETRY_GATEWAY_METRICS_H_
