// AttemptDriver runs one request upstream under its route's resilience policy, the same way for
// every kind of request (docs/architecture.md, "The request path"): an AttemptPlanner picks each
// target (skipping open circuits, retrying with jittered backoff, failing over down the chain),
// each attempt is an HTTP transfer on an UpstreamTransport, waits are transport timers, and every
// attempt's outcome is classified and fed back to the planner. Failover is transparent only until
// the commit point (the first output reached the caller); after it a failure ends the request
// with its partial usage. When every target failed, the protocol's fallbacks (the response cache,
// the degradation answer) get their chance, then the caller gets the last error with the list of
// attempts. The request ends in one place, Done(), which answers the caller and emits one
// RequestFinished event.
//
// What differs between completions and embeddings is a small per-attempt protocol: subclasses
// build the provider request, read a successful body, and deliver the result (chat_exchange.h,
// embed_exchange.h). Error bodies, retry-after, timeouts and error details are the driver's.
//
// Threading: all state lives on the transport's thread. Start(), Cancel() and Resume() may be
// called from any thread (they touch atomics and post to the transport).
#ifndef TURNPIKE_SERVER_EXCHANGE_ATTEMPT_DRIVER_H_
#define TURNPIKE_SERVER_EXCHANGE_ATTEMPT_DRIVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/config/runtime_config.h"
#include "server/exchange/request_finished.h"
#include "server/resilience/attempt_planner.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/upstream/transport.h"

namespace turnpike {

// The facts of one request that the driver needs, whatever its entry point.
struct ExchangeRequest {
  // Keeps `route` alive for the whole exchange.
  std::shared_ptr<const RuntimeConfig> config;
  const RouteEntry* route = nullptr;
  RequestMethod method = RequestMethod::kStreamCompletion;
  std::string request_id;
  std::string caller;
  std::string caller_tier;
  // The latency class the caller asked for (interactive when it named none, docs/routing.md).
  LatencyClass latency_class = LatencyClass::kInteractive;
  std::string end_user;
  // The W3C trace id of the caller's `traceparent` (32 hex digits), empty if none was sent.
  std::string trace_id;
  // The request's tags, sorted by key.
  std::vector<std::pair<std::string, std::string>> tags;
  // The caller's deadline on the transport clock's monotonic time (absl::InfiniteFuture() if
  // none); see DeadlineFromGrpc in server/grpc/deadline.h.
  absl::Time deadline = absl::InfiniteFuture();
  // When the call was accepted: monotonic (for latency) and wall (for records).
  absl::Time accepted = absl::InfinitePast();
  absl::Time accepted_wall = absl::UnixEpoch();
  // What admission reserved for the request (null if no limit applies); settled when it ends.
  std::shared_ptr<AdmissionTicket> admission;
  // A budget of the capability asked for was exhausted and `route` is the cheaper one that
  // serves instead (marked degraded in the start message and the record).
  bool degraded = false;
};

class AttemptDriver : public TransferHandler, public std::enable_shared_from_this<AttemptDriver> {
 public:
  // Records the request's internal overhead once the transport and the call have both let go.
  ~AttemptDriver() override;

  // Begins the request (posts it to the transport). Call once.
  void Start();
  // Aborts the request; the caller is answered CANCELLED unless the request already ended.
  void Cancel();
  // The caller drained its queue: resume a paused upstream.
  void Resume();
  // The running total of the request's internal overhead: callers on other threads add their
  // own stretches of work on the request with ScopedOverhead.
  std::atomic<int64_t>* overhead() { return &overhead_nanos_; }

  // TransferHandler (transport thread).
  void OnResponseStart(int http_status, int64_t retry_after_ms) final;
  DataResult OnData(std::string_view bytes) final;
  void OnComplete(absl::Status transfer_status) final;

 protected:
  // `transport`, `resilience`, `sink` and `metrics` outlive the driver; `sink` and `metrics` may
  // be null.
  AttemptDriver(ExchangeRequest request, UpstreamTransport& transport, Resilience& resilience,
                RequestFinishedSink* sink, GatewayMetrics* metrics);

  // ---- The per-attempt protocol; every hook runs on the transport thread. ----
  // The upstream request for `target`. FAILED_PRECONDITION when the target cannot serve this
  // kind of request: the planner moves on to the next target.
  virtual absl::StatusOr<HttpRequest> BuildRequest(const TargetEntry& target) = 0;
  // A new attempt starts: forget what the last one left.
  virtual void ResetAttempt() = 0;
  // The attempt got a 2xx response; its body follows through OnSuccessBody.
  virtual void OnSuccessStart() {}
  // Bytes of a 2xx body. kAbort must come with SetAttemptError().
  virtual DataResult OnSuccessBody(std::string_view bytes) = 0;
  // The 2xx body is complete. OK when it held a whole reply.
  virtual absl::Status OnSuccessEnd() = 0;
  // Whether a first-token limit applies to attempts (streams: bytes without text do not count).
  virtual bool WantsFirstTokenTimer() const { return false; }
  // Before any attempt: serve the request without the upstream (a first-line cache)? If so, the
  // protocol has answered nothing yet; Deliver() follows with OK.
  virtual bool ServeFirst() { return false; }
  // The first feature the request uses that `target` cannot serve (docs/tools.md), or
  // REQUEST_FEATURE_UNSPECIFIED. Such targets are skipped; when every one is, the request fails
  // with FAILED_PRECONDITION naming the feature.
  virtual v1::RequestFeature UnsupportedFeature(const TargetEntry&) const {
    return v1::REQUEST_FEATURE_UNSPECIFIED;
  }
  // Every target failed for reasons of availability: a fallback (stale cache, degradation)?
  virtual bool ServeFallback() { return false; }
  // The current target served the request.
  virtual void OnSucceeded() {}
  // The request's tokens and cost (as far as known) and its cache/degradation flags.
  virtual void FillOutcome(const absl::Status& status, RequestFinished& event) = 0;
  // The route's content policy allows text to reach sinks: copy the request's text and the reply
  // into `content` (called once, before Deliver; never under CONTENT_POLICY_NONE).
  virtual void CaptureContent(RequestContent& content) const = 0;
  // Exactly once, last: answer the caller. On error `status` carries its details (ProviderError,
  // RetryInfo, PartialCompletion with the attempts and, after the commit point, the usage).
  virtual void Deliver(const absl::Status& status, const RequestFinished& event) = 0;

  // ---- For protocols. ----
  // The first output is about to reach the caller: no failover from here on.
  void MarkCommitted();
  // The attempt produced its first token (cancels the first-token limit; judges a probe).
  void MarkFirstToken();
  // Ends the running attempt with `status` (the protocol found the body malformed or too big).
  void SetAttemptError(absl::Status status) { attempt_error_ = std::move(status); }
  // The running attempt is the last: if it fails, the request ends with its error (and the
  // fallbacks) whatever the planner would try next (a classification's second invalid answer).
  void MakeLastAttempt() { last_attempt_ = true; }
  bool committed() const { return committed_; }
  bool cancelled() const { return cancelled_.load(); }
  // The target of the current (or last) attempt. Requires an attempt to have started.
  const TargetEntry& target() const { return request_.route->targets[planner_->current()]; }
  bool attempted() const { return planner_ != nullptr && !planner_->attempts().empty(); }
  const ExchangeRequest& request() const { return request_; }
  const RouteEntry& route() const { return *request_.route; }
  const AttemptPlanner& planner() const { return *planner_; }
  Resilience& resilience() { return resilience_; }
  absl::Time Now() const { return transport_.clock().MonotonicNow(); }

 private:
  void StartOnTransport();
  void Run(const AttemptPlanner::Step& step);
  void StartAttempt(const AttemptPlanner::Step& step);
  void FinishAttempt(absl::Status status);
  void OnWaitOver();
  void OnCancelWake();
  void OnFirstTokenTimeout(uint64_t generation);
  absl::Status AttemptResult(const absl::Status& transfer_status);
  void GiveUp(absl::Duration retry_hint);
  void Done(absl::Status status);

  // Constant after construction.
  const ExchangeRequest request_;
  UpstreamTransport& transport_;
  Resilience& resilience_;
  RequestFinishedSink* const sink_;
  GatewayMetrics* const metrics_;

  std::atomic<int64_t> overhead_nanos_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<UpstreamTransport::TransferId> transfer_{0};

  // Transport-thread state.
  absl::Time deadline_;  // min(client deadline, start + route total)
  std::unique_ptr<AttemptPlanner> planner_;
  AttemptPlanner::Step pending_step_;
  UpstreamTransport::TimerId wait_timer_ = 0;
  bool waiting_ = false;
  bool attempt_running_ = false;
  bool committed_ = false;
  absl::Time committed_at_ = absl::InfiniteFuture();
  bool done_ = false;
  absl::Status last_error_;  // of the last failed attempt
  FailureKind last_kind_ = FailureKind::kNone;
  // Per attempt.
  uint64_t generation_ = 0;
  UpstreamTransport::TimerId first_token_timer_ = 0;
  absl::Duration first_token_timeout_;
  bool first_token_timed_out_ = false;
  bool got_token_ = false;
  absl::Time attempt_start_;
  int http_status_ = 0;
  int64_t retry_after_ms_ = 0;
  std::string error_body_;
  absl::Status attempt_error_;
  bool last_attempt_ = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_ATTEMPT_DRIVER_H_
