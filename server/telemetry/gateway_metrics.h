// GatewayMetrics is the data plane's set of Prometheus metrics (docs/metrics.md lists them):
// per-request counters and histograms updated on the hot path, and collectors that read the
// resilience registry, the upstream loops and the process at scrape time. Created once per core,
// by GatewayCore (server/core/), before the doors, and outlives every call.
//
// Internal overhead is the time the gateway's own threads spend on a request in gateway code:
// admission (parse, validate, authorize), routing and building the upstream request, handing
// work between threads, decoding each SSE event, queueing and serializing each response, and
// finishing. Excluded: waiting on the upstream, on timers (backoff) or on the client to read;
// libcurl's and the kernel's socket I/O; and the calls into gRPC that send each response
// message (their cost is the gRPC floor the bench measures beside it). The bench's
// CPU-per-completion figure covers everything.
// ScopedOverhead adds one stretch of such work to a request's running total.
//
// The OpenTelemetry GenAI names (gen_ai_server_request_duration_seconds and the others,
// docs/metrics.md) are recorded beside Turnpike's own. Their series are looked up through a cache
// per thread, so after a thread's first request for a model recording takes no lock.
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
#include "turnpike/config/v1/snapshot.pb.h"

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
  enum class Method { kStreamCompletion = 0, kComplete = 1, kEmbed = 2, kClassify = 3 };

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
  // One request a provider's model answered (or failed), in the OpenTelemetry GenAI semantic
  // conventions' terms. `provider_kind` UNSPECIFIED records nothing.
  struct GenAiRequest {
    enum class Operation { kChat = 0, kEmbeddings = 1 };
    Operation operation = Operation::kChat;
    config::v1::ProviderKind provider_kind = config::v1::PROVIDER_KIND_UNSPECIFIED;
    const std::string* model = nullptr;  // the model the gateway asked the provider for
    absl::StatusCode code = absl::StatusCode::kOk;
    int64_t duration_nanos = 0;
    int64_t time_to_first_token_nanos = -1;  // < 0: none (not streamed, or failed)
    int64_t input_tokens = -1;               // < 0: not recorded
    int64_t output_tokens = -1;              // < 0: not recorded
  };
  void RecordGenAi(const GenAiRequest& request);
  // The convention's gen_ai.provider.name for a provider kind ("" for UNSPECIFIED).
  static const char* GenAiProviderName(config::v1::ProviderKind kind);

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
  static constexpr int kStatusCodes = 17;  // absl::StatusCode kOk (0) to kUnauthenticated (16)
  // One (operation, provider, model)'s GenAI series, as a thread's cache holds them.
  struct GenAiSeries {
    Histogram* duration[kStatusCodes] = {};  // by absl::StatusCode, filled on first use
    Histogram* ttft = nullptr;
    Histogram* input_tokens = nullptr;
    Histogram* output_tokens = nullptr;
  };
  struct GenAiCache;
  GenAiSeries& GenAiSeriesFor(GenAiRequest::Operation operation, config::v1::ProviderKind kind,
                              const std::string& model);

  // Tells this object's entries in the per-thread caches from those of a destroyed one.
  const uint64_t id_;
  MetricsRegistry registry_;
  MetricsRegistry::Family<Counter>& requests_;
  MetricsRegistry::Family<Counter>& attempts_;
  MetricsRegistry::Family<Counter>& tokens_;
  MetricsRegistry::Family<Counter>& cost_;
  MetricsRegistry::Family<Counter>& routed_;
  Histogram* duration_[4] = {};
  Histogram* overhead_[4] = {};  // no series for kEmbed
  Histogram* ttft_;
  MetricsRegistry::Family<Histogram>& gen_ai_duration_;
  MetricsRegistry::Family<Histogram>& gen_ai_ttft_;
  MetricsRegistry::Family<Histogram>& gen_ai_tokens_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_TELEMETRY_GATEWAY_METRICS_H_
