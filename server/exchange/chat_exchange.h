// ChatExchange is the completion protocol on top of the AttemptDriver: it builds each target's
// chat request, decodes the provider's SSE stream (or JSON body) into text and a finish, sends
// them to a ChatListener with backpressure (a listener whose queue is full pauses the upstream),
// and serves the response cache and the degradation answer when the route allows. Retries,
// failover, timeouts and errors are the driver's (attempt_driver.h).
//
// Threading: as AttemptDriver: everything runs on the transport thread; Start(), Cancel() and
// Resume() may be called from any thread.
#ifndef TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_
#define TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/exchange/attempt_driver.h"
#include "server/providers/provider_adapter.h"
#include "server/providers/sse_parser.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// Receives a ChatExchange's results, on the transport thread. Must stay alive until OnDone()
// has returned.
class ChatListener {
 public:
  virtual ~ChatListener() = default;
  // The exchange committed: `start` says who serves. Called once, before any text (or before
  // OnDone for a reply with no text).
  virtual void OnCommit(const v1::CompletionStart& start) = 0;
  virtual void OnText(std::string_view text) = 0;
  // A piece of a tool call (provider_adapter.h), after OnCommit, in the provider's order. A
  // unary exchange delivers each whole call as one piece, before OnDone.
  virtual void OnToolCall(const ToolCallFragment& fragment) = 0;
  // True while the listener's outbound queue is full; the exchange then pauses the upstream
  // until Resume().
  virtual bool Congested() = 0;
  // Exactly once, last. On OK `finish` has the finish reason, usage and attempts. On error the
  // status carries rich details (ProviderError, RetryInfo, PartialCompletion when committed).
  virtual void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) = 0;
};

struct ChatRequest {
  // Owned by the caller; outlives the exchange.
  const google::protobuf::RepeatedPtrField<v1::Message>* messages = nullptr;
  std::optional<int32_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  // Owned by the caller; may be null.
  const google::protobuf::RepeatedPtrField<v1::Tool>* tools = nullptr;
  v1::ToolChoice tool_choice;
  v1::ResponseFormat response_format;
  // Sent instead to a target that cannot serve a JSON Schema response format (a
  // classification's forced tool call, docs/classification.md); may be null.
  std::shared_ptr<const ChatRequest> without_json_schema;
  // Unary only: judges each reply before it commits. An error (with ErrorInfo kBadAnswerReason,
  // failure_kind.h) fails the attempt: the planner tries the next target, else the same; after
  // the second rejected reply the request ends with it.
  std::function<absl::Status(const ChatResult&)> check_reply;
};

// What a request uses beyond plain text, in enum order (CompletionStart.features, and what
// routing asks of a target).
std::vector<v1::RequestFeature> ChatFeatures(const ChatRequest& request);

// The response-cache key of a request: a SHA-256 over its normalized form (capability, messages,
// the resolved max_tokens and the sampling parameters; not the user or the request id).
std::string ChatCacheKey(std::string_view capability, const ChatRequest& request,
                         int32_t max_tokens);

class ChatExchange final : public AttemptDriver, public StreamSink {
 public:
  // `stream`: text goes to the listener as it arrives (else once, at the end).
  static std::shared_ptr<ChatExchange> Create(ExchangeRequest request, ChatRequest chat,
                                              bool stream, ChatListener* listener,
                                              UpstreamTransport& transport, Resilience& resilience,
                                              RequestFinishedSink* sink,
                                              GatewayMetrics* metrics = nullptr);

 private:
  ChatExchange(ExchangeRequest request, ChatRequest chat, bool stream, ChatListener* listener,
               UpstreamTransport& transport, Resilience& resilience, RequestFinishedSink* sink,
               GatewayMetrics* metrics);

  // AttemptDriver.
  absl::StatusOr<HttpRequest> BuildRequest(const TargetEntry& target) override;
  void ResetAttempt() override;
  void OnSuccessStart() override;
  DataResult OnSuccessBody(std::string_view bytes) override;
  absl::Status OnSuccessEnd() override;
  bool WantsFirstTokenTimer() const override { return stream_; }
  bool ServeFirst() override;
  v1::RequestFeature UnsupportedFeature(const TargetEntry& target) const override;
  bool ServeFallback() override;
  void OnSucceeded() override;
  void FillOutcome(const absl::Status& status, RequestFinished& event) override;
  void CaptureContent(RequestContent& content) const override;
  void Deliver(const absl::Status& status, const RequestFinished& event) override;

  // StreamSink (from the decoders).
  void OnText(std::string_view text) override;
  void OnToolCall(const ToolCallFragment& fragment) override;
  void OnFinish(const ChatFinish& finish) override;

  bool ServeFromCache(absl::Duration max_age, bool first_line);
  void ServeStatic(v1::CompletionStart start, std::string text, v1::FinishReason reason,
                   std::string provider_reason);
  void Commit();
  int32_t max_tokens() const;
  // What to send `target`: chat_, or its form without a JSON Schema.
  const ChatRequest& FormFor(const TargetEntry& target) const;

  // Constant after construction.
  const ChatRequest chat_;
  const std::vector<v1::RequestFeature> features_;
  const bool stream_;
  ChatListener* const listener_;

  // Transport-thread state.
  std::string cache_key_;         // empty when the route has no cache
  std::string text_;              // text delivered (unary mode collects it here too)
  ToolCallAssembler tool_calls_;  // tool calls delivered (unary mode collects them here too)
  v1::CompletionStart start_;
  bool cache_hit_ = false;
  bool degraded_ = false;
  ChatFinish finish_;
  bool finished_ = false;
  int rejected_replies_ = 0;  // replies check_reply refused
  // Per attempt.
  std::string body_;  // a non-streaming 2xx body
  std::unique_ptr<SseParser> sse_;
  std::unique_ptr<StreamDecoder> decoder_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_CHAT_EXCHANGE_H_
