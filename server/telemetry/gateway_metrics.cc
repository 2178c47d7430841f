#include "server/telemetry/gateway_metrics.h"

#include <atomic>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/clock.h"
#include "server/resilience/resilience.h"

namespace turnpike {
namespace {

const char* MethodName(GatewayMetrics::Method method) {
  switch (method) {
    case GatewayMetrics::Method::kStreamCompletion:
      return "StreamCompletion";
    case GatewayMetrics::Method::kComplete:
      return "Complete";
    case GatewayMetrics::Method::kEmbed:
      return "Embed";
    case GatewayMetrics::Method::kClassify:
      return "Classify";
  }
  return "unknown";
}

// An upstream is a provider, a model and a credential version ("name@version", never a secret).
const std::vector<std::string> kUpstreamLabels = {"provider", "model", "credential"};

const char* GenAiOperationName(GatewayMetrics::GenAiRequest::Operation operation) {
  return operation == GatewayMetrics::GenAiRequest::Operation::kEmbeddings ? "embeddings" : "chat";
}

// The labels of the GenAI series: the convention's attribute names with dots as underscores.
const std::vector<std::string> kGenAiLabels = {"gen_ai_operation_name", "gen_ai_provider_name",
                                               "gen_ai_request_model"};
std::vector<std::string> GenAiLabelsAnd(const char* extra) {
  std::vector<std::string> labels = kGenAiLabels;
  labels.push_back(extra);
  return labels;
}

std::atomic<uint64_t> next_metrics_id{1};

// Seconds from now (monotonic, as the resilience clock reports) until `t`; 0 if past.
double SecondsUntil(absl::Time t, absl::Time now) {
  if (t == absl::InfinitePast() || t <= now) return 0;
  if (t == absl::InfiniteFuture()) return 1e9;
  return absl::ToDoubleSeconds(t - now);
}

}  // namespace

GatewayMetrics::GatewayMetrics()
    : id_(next_metrics_id.fetch_add(1, std::memory_order_relaxed)),
      requests_(registry_.AddCounter("turnpike_requests_total",
                                     "Requests finished, by method, capability and gRPC code.",
                                     {"method", "capability", "code"})),
      attempts_(registry_.AddCounter(
          "turnpike_upstream_attempts_total",
          "Upstream attempts by provider, model and what the gateway did after them.",
          {"provider", "model", "disposition"})),
      tokens_(registry_.AddCounter(
          "turnpike_tokens_total",
          "Tokens of finished requests as their callers were told, by capability, provider, model "
          "and type (input, output; cached_input and cache_write_input are parts of input, "
          "reasoning_output a part of output).",
          {"capability", "provider", "model", "type"})),
      cost_(registry_.AddCounter("turnpike_cost_usd_micros_total",
                                 "Cost of finished requests in micro-dollars as their callers were "
                                 "told, by capability, provider and model.",
                                 {"capability", "provider", "model"})),
      routed_(registry_.AddCounter(
          "turnpike_routed_requests_total",
          "Requests served by a route's tier chain or variant (docs/routing.md), by capability, "
          "tier chain, variant, the provider and model that answered, and gRPC code.",
          {"capability", "tier_chain", "variant", "provider", "model", "code"})),
      gen_ai_duration_(registry_.AddHistogram(
          "gen_ai_server_request_duration_seconds",
          "OpenTelemetry GenAI gen_ai.server.request.duration: wall time of requests a provider's "
          "model answered or failed; error_type is the gRPC code name of a failed one.",
          GenAiRequestDurationBuckets(), GenAiLabelsAnd("error_type"))),
      gen_ai_ttft_(registry_.AddHistogram(
          "gen_ai_server_time_to_first_token_seconds",
          "OpenTelemetry GenAI gen_ai.server.time_to_first_token: arrival to the first text "
          "delta of successful streamed chat requests.",
          GenAiTimeToFirstTokenBuckets(), kGenAiLabels)),
      gen_ai_tokens_(registry_.AddCountHistogram(
          "gen_ai_client_token_usage",
          "OpenTelemetry GenAI gen_ai.client.token.usage: input and output tokens per request, as "
          "its caller was told.",
          GenAiTokenUsageBuckets(), GenAiLabelsAnd("gen_ai_token_type"))) {
  auto& duration = registry_.AddHistogram("turnpike_request_duration_seconds",
                                          "Wall time of finished requests, by method.",
                                          RequestDurationBuckets(), {"method"});
  auto& overhead = registry_.AddHistogram(
      "turnpike_internal_overhead_seconds",
      "Time the gateway's own code spent on a request, excluding waits on the upstream and the "
      "client (see docs/metrics.md).",
      OverheadBuckets(), {"method"});
  // Overhead is measured for the completion methods (the hot path); embeddings are not timed.
  for (Method m : {Method::kStreamCompletion, Method::kComplete, Method::kClassify}) {
    overhead_[static_cast<int>(m)] = &overhead.With({MethodName(m)});
  }
  for (Method m :
       {Method::kStreamCompletion, Method::kComplete, Method::kEmbed, Method::kClassify}) {
    duration_[static_cast<int>(m)] = &duration.With({MethodName(m)});
  }
  ttft_ = &registry_
               .AddHistogram("turnpike_time_to_first_token_seconds",
                             "Time from a StreamCompletion's arrival to its first text delta.",
                             RequestDurationBuckets())
               .With({});
}

void GatewayMetrics::RecordRequest(Method method, const std::string& capability,
                                   absl::StatusCode code, int64_t duration_nanos) {
  requests_.With({MethodName(method), capability, absl::StatusCodeToString(code)}).Add();
  duration_[static_cast<int>(method)]->ObserveNanos(duration_nanos);
}

void GatewayMetrics::RecordUsage(const std::string& capability, const std::string& provider,
                                 const std::string& model, const TokenCounts& tokens,
                                 int64_t cost_usd_micros) {
  const std::pair<const char*, int64_t> kinds[] = {
      {"input", tokens.input},
      {"output", tokens.output},
      {"cached_input", tokens.cached_input},
      {"cache_write_input", tokens.cache_write_input},
      {"reasoning_output", tokens.reasoning_output},
  };
  for (const auto& [type, count] : kinds) {
    if (count > 0) tokens_.With({capability, provider, model, type}).Add(count);
  }
  if (cost_usd_micros > 0) cost_.With({capability, provider, model}).Add(cost_usd_micros);
}

const char* GatewayMetrics::GenAiProviderName(config::v1::ProviderKind kind) {
  // The convention's well-known values where one applies; a self-hosted OpenAI-compatible server
  // has none, so it gets a value of its own.
  switch (kind) {
    case config::v1::PROVIDER_KIND_OPENAI:
      return "openai";
    case config::v1::PROVIDER_KIND_AZURE_OPENAI:
      return "azure.ai.openai";
    case config::v1::PROVIDER_KIND_ANTHROPIC:
      return "anthropic";
    case config::v1::PROVIDER_KIND_GEMINI:
      return "gcp.gemini";
    case config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE:
      return "openai_compatible";
    default:
      return "";
  }
}

// Each thread's series, by operation, provider kind and model. Filled from the families (whose
// lookups lock) the first time a thread records a combination; afterwards recording reads only
// this thread's map. A cache left by another GatewayMetrics (tests make several) is dropped.
struct GatewayMetrics::GenAiCache {
  uint64_t owner = 0;
  absl::flat_hash_map<std::string, GenAiSeries> by_model[2][config::v1::ProviderKind_ARRAYSIZE];
};

GatewayMetrics::GenAiSeries& GatewayMetrics::GenAiSeriesFor(GenAiRequest::Operation operation,
                                                            config::v1::ProviderKind kind,
                                                            const std::string& model) {
  thread_local GenAiCache cache;
  if (cache.owner != id_) {
    cache = GenAiCache();
    cache.owner = id_;
  }
  auto& by_model = cache.by_model[static_cast<int>(operation)][kind];
  if (auto it = by_model.find(model); it != by_model.end()) return it->second;
  return by_model[model];
}

void GatewayMetrics::RecordGenAi(const GenAiRequest& r) {
  if (!config::v1::ProviderKind_IsValid(r.provider_kind) ||
      r.provider_kind == config::v1::PROVIDER_KIND_UNSPECIFIED || r.model == nullptr) {
    return;
  }
  GenAiSeries& s = GenAiSeriesFor(r.operation, r.provider_kind, *r.model);
  // A series is made (under its family's lock) the first time this thread needs it.
  auto labels = [&r](std::vector<std::string> extra) {
    std::vector<std::string> v = {GenAiOperationName(r.operation),
                                  GenAiProviderName(r.provider_kind), *r.model};
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  int code = static_cast<int>(r.code);
  if (code < 0 || code >= kStatusCodes) code = static_cast<int>(absl::StatusCode::kUnknown);
  Histogram*& duration = s.duration[code];
  if (duration == nullptr) {
    // error_type is empty (absent, to Prometheus) for a success.
    const std::string error_type =
        code == 0 ? "" : absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    duration = &gen_ai_duration_.With(labels({error_type}));
  }
  duration->ObserveNanos(r.duration_nanos);
  if (r.time_to_first_token_nanos >= 0) {
    if (s.ttft == nullptr) s.ttft = &gen_ai_ttft_.With(labels({}));
    s.ttft->ObserveNanos(r.time_to_first_token_nanos);
  }
  if (r.input_tokens >= 0) {
    if (s.input_tokens == nullptr) s.input_tokens = &gen_ai_tokens_.With(labels({"input"}));
    s.input_tokens->ObserveCount(r.input_tokens);
  }
  if (r.output_tokens >= 0) {
    if (s.output_tokens == nullptr) s.output_tokens = &gen_ai_tokens_.With(labels({"output"}));
    s.output_tokens->ObserveCount(r.output_tokens);
  }
}

void GatewayMetrics::RecordRouted(const std::string& capability, const std::string& tier_chain,
                                  const std::string& variant, const std::string& provider,
                                  const std::string& model, absl::StatusCode code) {
  routed_.With({capability, tier_chain, variant, provider, model, absl::StatusCodeToString(code)})
      .Add();
}

void GatewayMetrics::RecordOverhead(Method method, int64_t nanos) {
  if (Histogram* h = overhead_[static_cast<int>(method)]; h != nullptr) h->ObserveNanos(nanos);
}

void GatewayMetrics::RecordAttempt(const std::string& provider, const std::string& model,
                                   const std::string& disposition) {
  attempts_.With({provider, model, disposition}).Add();
}

void GatewayMetrics::AddResilience(const Resilience* resilience) {
  using Type = MetricsRegistry::Type;
  // One scrape-time read per family; the upstream set is small (provider × model × credential).
  auto per_upstream = [resilience](std::function<double(const UpstreamStatus&, absl::Time)> f) {
    return [resilience, f] {
      const absl::Time now = resilience->clock().MonotonicNow();
      std::vector<MetricSample> out;
      for (const UpstreamStatus& s : resilience->Status()) {
        out.push_back({{s.provider, s.model, s.credential}, f(s, now)});
      }
      return out;
    };
  };
  registry_.AddCollector(
      "turnpike_upstream_circuit_state",
      "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open (probing).", Type::kGauge,
      kUpstreamLabels, per_upstream([](const UpstreamStatus& s, absl::Time) {
        return s.breaker_state == "open" ? 1.0 : s.breaker_state == "half_open" ? 2.0 : 0.0;
      }));
  registry_.AddCollector(
      "turnpike_upstream_circuit_open_remaining_seconds",
      "Seconds until an open circuit admits a probe (0 when closed).", Type::kGauge,
      kUpstreamLabels, per_upstream([](const UpstreamStatus& s, absl::Time now) {
        return s.breaker_state == "closed" ? 0.0 : SecondsUntil(s.open_until, now);
      }));
  registry_.AddCollector(
      "turnpike_upstream_consecutive_failures", "Consecutive failed attempts per upstream.",
      Type::kGauge, kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.consecutive_failures; }));
  registry_.AddCollector(
      "turnpike_upstream_circuit_opened_total", "Times each upstream's circuit opened.",
      Type::kCounter, kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.opened_total; }));
  registry_.AddCollector("turnpike_upstream_rate_limit_cooldown_seconds",
                         "Seconds an upstream still cools down after a 429 (0 when not cooling).",
                         Type::kGauge, kUpstreamLabels,
                         per_upstream([](const UpstreamStatus& s, absl::Time now) {
                           return SecondsUntil(s.cooling_until, now);
                         }));
  registry_.AddCollector(
      "turnpike_upstream_retry_tokens", "gRFC A6 retry-throttle tokens left per upstream.",
      Type::kGauge, kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.throttle_tokens; }));
  registry_.AddCollector(
      "turnpike_upstream_active_requests", "Requests in flight per upstream.", Type::kGauge,
      kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.active_requests; }));
  registry_.AddCollector(
      "turnpike_upstream_retries_total", "Retries started per upstream.", Type::kCounter,
      kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.retries_total; }));
  registry_.AddCollector(
      "turnpike_upstream_retries_throttled_total",
      "Retries refused by the retry throttle per upstream.", Type::kCounter, kUpstreamLabels,
      per_upstream([](const UpstreamStatus& s, absl::Time) { return s.retries_throttled_total; }));
  registry_.AddCollector(
      "turnpike_upstream_retries_over_budget_total",
      "Retries refused by the retry budget (max(3, 20% of active)) per upstream.", Type::kCounter,
      kUpstreamLabels, per_upstream([](const UpstreamStatus& s, absl::Time) {
        return s.retries_over_budget_total;
      }));
  registry_.AddCollector(
      "turnpike_cache_fallbacks_total",
      "Replies served from the response cache after every target failed.", Type::kCounter,
      {"stale"}, [resilience] {
        return std::vector<MetricSample>{
            {{"false"}, static_cast<double>(resilience->cache_fallbacks())},
            {{"true"}, static_cast<double>(resilience->stale_cache_fallbacks())}};
      });
  AddCounter("turnpike_degraded_total",
             "Replies answered by a route's degradation after every target failed.",
             [resilience] { return static_cast<double>(resilience->degraded()); });
}

void GatewayMetrics::AddGauge(const std::string& name, const std::string& help,
                              std::function<double()> read) {
  registry_.AddCollector(name, help, MetricsRegistry::Type::kGauge, {}, [read] {
    return std::vector<MetricSample>{{{}, read()}};
  });
}

void GatewayMetrics::AddCounter(const std::string& name, const std::string& help,
                                std::function<double()> read) {
  registry_.AddCollector(name, help, MetricsRegistry::Type::kCounter, {}, [read] {
    return std::vector<MetricSample>{{{}, read()}};
  });
}

void GatewayMetrics::AddConfigVersion(std::function<std::string()> read) {
  registry_.AddCollector("turnpike_config_info",
                         "The config version in force (value 1; empty before the first).",
                         MetricsRegistry::Type::kGauge, {"version"}, [read] {
                           return std::vector<MetricSample>{{{read()}, 1}};
                         });
}

}  // namespace turnpike
