// ChatExchange is the completion protocol on top of the AttemptDriver: it builds each target's
// chat request, decodes the provider's SSE stream (or JSON body) into text and a finish, sends
// them to a ChatListener with backpressure (a listener whose queue is full pauses the upstream),
// and serves the response cache and the degradation answer when the route allows. Retries,
// failover, timeouts and errors are the driver's (attempt_driver.h); the request itself, its
// features and cache key are chat_request.h's; what a reply is metered at is chat_usage.h's.
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
#include "server/exchange/chat_request.h"
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
