// ChatExchange drives one completion request upstream under the route's resilience policy: an
// AttemptPlanner picks each target (skipping open circuits, retrying with jittered backoff,
// failing over down the chain), each attempt goes through the UpstreamLoop and the provider's
// adapter, and normalized events go to a ChatListener. Failover is transparent only before the
// first text reached the listener (the commit point); after that a failure ends the request with
// the partial usage attached. When every target failed, the route's response cache and then its
// degradation answer, if configured. Every reply lists its attempts.
//
// Threading: all of the exchange's state lives on the UpstreamLoop thread. Start() hands the
// work to the loop; Cancel() and Resume() may be called from any thread (they only touch atomics
// and post to the loop). Waits (backoff, retry-after, first-token timeout) are loop timers, so no
// thread ever sleeps.
#ifndef TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_
#define TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/config/runtime_config.h"
#include "server/providers/provider_adapter.h"
#include "server/providers/sse_parser.h"
#include "server/resilience/attempt_planner.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/upstream/upstream_loop.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// Receives a ChatExchange's results. Must stay alive until OnDone() has returned.
class ChatListener {
 public:
  virtual ~ChatListener() = default;
  // The exchange committed to a target: `start` says who serves. Called once, before any text
  // (or before OnDone for a reply with no text).
  virtual void OnCommit(const v1::CompletionStart& start) = 0;
  virtual void OnText(std::string_view text) = 0;
  // True while the listener's outbound queue is full; the exchange then pauses the upstream
  // until Resume().
  virtual bool Congested() = 0;
  // Exactly once, last. On OK `finish` has the finish reason, usage and attempts. On error the
  // status carries rich details (ProviderError, RetryInfo, PartialCompletion when committed).
  virtual void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) = 0;
};

struct ChatRequest {
  const google::protobuf::RepeatedPtrField<v1::Message>* messages = nullptr;
  std::string request_id;
  std::optional<int32_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  std::string user;
};

// The response-cache key of a request: a SHA-256 over its normalized form (capability, messages,
// the resolved max_tokens and the sampling parameters; not the user or the request id).
std::string ChatCacheKey(std::string_view capability, const ChatRequest& request,
                         int32_t max_tokens);

class ChatExchange : public TransferHandler,
                     public StreamSink,
                     public std::enable_shared_from_this<ChatExchange> {
 public:
  // `config` keeps the route alive for the whole exchange. `deadline` is the client's deadline
  // (absl::InfiniteFuture() if none), in monotonic time. `resilience` outlives the exchange.
  ChatExchange(std::shared_ptr<const RuntimeConfig> config, const RouteEntry* route,
               ChatRequest request, bool stream, UpstreamLoop& loop, Resilience& resilience,
               ChatListener* listener, absl::Time deadline, GatewayMetrics* metrics = nullptr);
  // Records the request's internal overhead (GatewayMetrics) once the loop and the call have
  // both let go of the exchange.
  ~ChatExchange() override;

  void Start();
  // Aborts the request; OnDone(CANCELLED) follows unless the exchange already ended.
  void Cancel();
  // The listener drained its queue: resume a paused upstream.
  void Resume();
  // The running total of the request's internal overhead: callers (any thread) add their own
  // stretches of work on the request to it with ScopedOverhead.
  std::atomic<int64_t>* overhead() { return &overhead_nanos_; }

  // TransferHandler (loop thread).
  void OnResponseStart(int http_status, int64_t retry_after_ms) override;
  DataResult OnData(std::string_view bytes) override;
  void OnComplete(absl::Status status) override;

  // StreamSink (loop thread, from the decoder).
  void OnText(std::string_view text) override;
  void OnFinish(const ChatFinish& finish) override;

 private:
  void StartOnLoop();
  void Run(const AttemptPlanner::Step& step);
  void StartAttempt(const AttemptPlanner::Step& step);
  void OnWaitOver();
  void OnCancelWake();
  void OnFirstTokenTimeout(uint64_t generation);
  absl::Status AttemptResult(const absl::Status& transfer_status);
  // Every target failed or none could be tried: the cache, the degradation, or the error.
  void GiveUp(absl::Duration retry_hint);
  bool ServeFromCache(absl::Duration max_age, bool first_line);
  void ServeStatic(const v1::CompletionStart& start, std::string text, v1::FinishReason reason,
                   std::string provider_reason);
  void Commit();
  void Done(absl::Status status);
  void RecordAttempts() const;
  absl::Status Decorate(absl::Status status) const;
  absl::Time Now() const;
  const TargetEntry& target() const { return route_->targets[planner_->current()]; }

  // Constant after construction.
  const std::shared_ptr<const RuntimeConfig> config_;
  const RouteEntry* const route_;
  const ChatRequest request_;
  const bool stream_;
  UpstreamLoop& loop_;
  Resilience& resilience_;
  ChatListener* const listener_;
  const absl::Time client_deadline_;
  GatewayMetrics* const metrics_;

  std::atomic<int64_t> overhead_nanos_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<UpstreamLoop::TransferId> transfer_{0};

  // Loop-thread state.
  absl::Time deadline_;  // min(client deadline, start + route total)
  std::unique_ptr<AttemptPlanner> planner_;
  std::string cache_key_;  // empty when the route has no cache
  AttemptPlanner::Step pending_step_;
  UpstreamLoop::TimerId wait_timer_ = 0;
  bool waiting_ = false;
  bool attempt_running_ = false;
  bool committed_ = false;
  bool done_ = false;
  absl::Status last_error_;  // of the last failed attempt
  FailureKind last_kind_ = FailureKind::kNone;
  std::string text_;  // text delivered (unary mode collects it here too)
  v1::CompletionStart start_;
  v1::CompletionFinish result_;
  // Per attempt.
  uint64_t generation_ = 0;
  UpstreamLoop::TimerId first_token_timer_ = 0;
  absl::Duration first_token_timeout_;
  bool first_token_timed_out_ = false;
  bool got_text_ = false;
  absl::Time attempt_start_;
  int http_status_ = 0;
  int64_t retry_after_ms_ = 0;
  std::string body_;  // error body or non-streaming body
  std::unique_ptr<SseParser> sse_;
  std::unique_ptr<StreamDecoder> decoder_;
  absl::Status attempt_error_;
  bool finished_ = false;
  ChatFinish finish_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_
