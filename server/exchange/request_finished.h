// RequestFinished is the one event every request ends with, whatever its entry point (gRPC
// streaming or unary completion, embeddings) and whatever its outcome: served, failed after its
// attempts, cut off mid-stream, answered from the cache or the degradation response, refused
// before any attempt (bad input, unauthenticated, no config). It carries everything a usage
// record, a request-log line and an audit entry need; RequestFinishedSink is where they hook in
// (docs/architecture.md, "Where a request ends"). The attempt driver emits it exactly once per
// request, after the caller has been answered.
#ifndef TURNPIKE_SERVER_EXCHANGE_REQUEST_FINISHED_H_
#define TURNPIKE_SERVER_EXCHANGE_REQUEST_FINISHED_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/redactor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/config/latency_class.h"
#include "turnpike/config/v1/snapshot.pb.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {

class AdmissionTicket;  // server/admission/admission.h

enum class RequestMethod { kStreamCompletion = 0, kComplete = 1, kEmbed = 2, kClassify = 3 };
const char* RequestMethodName(RequestMethod method);

// The text of a request and of its reply, captured when the route's content policy allows any
// (never under CONTENT_POLICY_NONE: then nothing is copied). Immutable once captured and shared:
// sinks hash and redact it on their own threads (docs/request-log.md).
struct RequestContent {
  config::v1::ContentPolicy policy = config::v1::CONTENT_POLICY_NONE;
  std::shared_ptr<const Redactor> redactor;                   // the route's
  std::vector<std::pair<std::string, std::string>> messages;  // role name, text (completions)
  std::vector<std::string> inputs;                            // embeddings
  std::string reply;  // the reply text as the caller received it, assembled (completions)
};

// The canonical form of a request's content, whose SHA-256 is its request hash: compact JSON
// {"messages":[{"role":"ROLE_USER","content":"..."}...]} or {"inputs":["..."]}, keys in this
// order, strings escaped by JsonWriter (invalid UTF-8 replaced by U+FFFD).
std::string CanonicalRequest(const RequestContent& content);
// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);
// `text` as a sink may keep it under `content.policy`: whole under FULL; under REDACTED, passed
// through the route's redactor and then cut to what is left of `budget` bytes (decreased by what
// is kept; `truncated` set when cut). The whole text is redacted before the cut, so a secret is
// never half kept. Call only under REDACTED or FULL.
std::string PolicyText(const RequestContent& content, std::string_view text, size_t& budget,
                       bool& truncated);

struct RequestFinished {
  RequestMethod method = RequestMethod::kStreamCompletion;
  std::string request_id;
  // Empty when the request never named a configured route (refused before routing).
  std::string capability;
  // The authenticated caller's name; empty for an open route or a refused request.
  std::string caller;
  std::string end_user;  // the request's `user` field
  std::string trace_id;  // W3C trace id from `traceparent`, empty if none
  std::vector<std::pair<std::string, std::string>> tags;  // sorted by key
  std::string config_version;                             // empty when no snapshot was loaded

  // Who served (empty when nobody did: refused, or every attempt failed before any response).
  std::string provider;
  std::string model;
  std::string credential;  // "name@version", never the secret
  // The wire protocol of `provider` (the OpenTelemetry GenAI metrics name the provider by it);
  // UNSPECIFIED when no provider's model answered: refused, nothing attempted, or the reply came
  // from the response cache or the route's degradation.
  config::v1::ProviderKind provider_kind = config::v1::PROVIDER_KIND_UNSPECIFIED;
  std::string provider_host;  // where the serving provider's requests went (host[:port])

  // The status the caller received (with its details).
  absl::Status status;
  // Tokens and cost as the caller was told. `usage_estimated`: the provider reported no usage
  // (a cut-off stream) and the counts are the gateway's estimate. `cost_known`: the model had a
  // price; when false, cost_usd_micros is 0 and means "unknown", not free. The token kinds have
  // one meaning for every provider (docs/usage.md, "Token kinds"): cached and cache-write input
  // are parts of input_tokens, reasoning a part of output_tokens.
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t cache_write_input_tokens = 0;
  int64_t reasoning_output_tokens = 0;
  int64_t cost_usd_micros = 0;
  // Its components (server/config/price.h); they add up to cost_usd_micros exactly.
  int64_t input_cost_usd_micros = 0;  // the uncached input
  int64_t cached_input_cost_usd_micros = 0;
  int64_t cache_write_cost_usd_micros = 0;
  int64_t output_cost_usd_micros = 0;  // reasoning included
  bool usage_estimated = false;
  bool cost_known = false;

  bool refused = false;    // ended before any attempt (parse, validation, auth, no config)
  bool partial = false;    // text had reached the caller when the request failed
  bool cache_hit = false;  // answered from the response cache
  // Answered with the route's degradation response, or served by a cheaper route because a budget
  // of the one asked for was exhausted.
  bool degraded = false;
  // The route's chain the request was routed to (docs/routing.md): the caller tier whose chain it
  // is, or the variant; both empty for the route's own targets.
  std::string tier_chain;
  std::string variant;
  // The latency class the request was served as.
  LatencyClass latency_class = LatencyClass::kInteractive;
  // What the request used beyond plain text (tools, images, a response format), in enum order.
  std::vector<v1::RequestFeature> features;
  google::protobuf::RepeatedPtrField<v1::Attempt> attempts;

  absl::Time start_time;  // wall clock, when the call was accepted
  absl::Duration latency;
  // From acceptance to the first text sent; absl::InfiniteDuration() if none was sent.
  absl::Duration time_to_first_token = absl::InfiniteDuration();
  // The gateway's own work on this request (GatewayMetrics' internal overhead).
  int64_t overhead_nanos = 0;
  // What the request holds from admission (rate limits, budgets); settled from this event
  // (OnRequestDecided).
  // Null when no limit applied or the request was refused.
  std::shared_ptr<AdmissionTicket> admission;
  // The request's and reply's text; null under CONTENT_POLICY_NONE and for refused requests.
  std::shared_ptr<const RequestContent> content;
};

// Receives every finished request. Called once per request, on whichever thread finished it
// (a completion-queue or transport thread): implementations must be thread-safe and must not
// block (hand disk or network work to a queue).
class RequestFinishedSink {
 public:
  virtual ~RequestFinishedSink() = default;
  // Called once per request, after its outcome is decided and BEFORE the caller is told it, so
  // what it releases (admission holds) is back by the time the caller can send the next request.
  // Must be cheap: it sits on the request's path. `event.overhead_nanos` is not yet final.
  virtual void OnRequestDecided(const RequestFinished& /*event*/) {}
  // Called once per request, after the caller has been told the outcome.
  virtual void OnRequestFinished(const RequestFinished& event) = 0;
};

// Hands each event to several sinks, in order (the access log and metrics, then metering).
// The sink list is fixed before the first request; thread-safe if every sink is.
class RequestFinishedFanout final : public RequestFinishedSink {
 public:
  explicit RequestFinishedFanout(std::vector<RequestFinishedSink*> sinks)
      : sinks_(std::move(sinks)) {}
  void OnRequestDecided(const RequestFinished& event) override {
    for (RequestFinishedSink* sink : sinks_) sink->OnRequestDecided(event);
  }
  void OnRequestFinished(const RequestFinished& event) override {
    for (RequestFinishedSink* sink : sinks_) sink->OnRequestFinished(event);
  }

 private:
  const std::vector<RequestFinishedSink*> sinks_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_REQUEST_FINISHED_H_
