#include "server/exchange/chat_exchange.h"

#include "absl/strings/str_cat.h"
#include "server/exchange/chat_usage.h"

namespace turnpike {
namespace {

constexpr size_t kMaxResponseBody = 16 << 20;

}  // namespace

std::shared_ptr<ChatExchange> ChatExchange::Create(ExchangeRequest request, ChatRequest chat,
                                                   bool stream, ChatListener* listener,
                                                   UpstreamTransport& transport,
                                                   Resilience& resilience,
                                                   RequestFinishedSink* sink,
                                                   GatewayMetrics* metrics) {
  return std::shared_ptr<ChatExchange>(new ChatExchange(
      std::move(request), std::move(chat), stream, listener, transport, resilience, sink, metrics));
}

ChatExchange::ChatExchange(ExchangeRequest request, ChatRequest chat, bool stream,
                           ChatListener* listener, UpstreamTransport& transport,
                           Resilience& resilience, RequestFinishedSink* sink,
                           GatewayMetrics* metrics)
    : AttemptDriver(std::move(request), transport, resilience, sink, metrics),
      chat_(std::move(chat)),
      features_(ChatFeatures(chat_)),
      stream_(stream),
      listener_(listener) {}

int32_t ChatExchange::max_tokens() const {
  return chat_.max_tokens.value_or(route().default_max_tokens);
}

absl::StatusOr<HttpRequest> ChatExchange::BuildRequest(const TargetEntry& target) {
  const ChatRequest& chat = ChatFormFor(chat_, target);
  ChatParams params;
  params.model = target.model;
  params.messages = chat_.messages;
  params.max_tokens = max_tokens();
  params.temperature = chat_.temperature;
  params.top_p = chat_.top_p;
  for (const std::string& s : chat_.stop) params.stop.push_back(s);
  params.user = request().end_user;
  params.stream = stream_;
  params.tools = chat.tools;
  params.tool_choice = chat.tool_choice;
  params.response_format = chat.response_format;
  return target.provider->adapter->BuildChatRequest(params);
}

void ChatExchange::ResetAttempt() {
  body_.clear();
  tool_calls_ = ToolCallAssembler();
  sse_.reset();
  decoder_.reset();
  finished_ = false;
  finish_ = ChatFinish();
}

void ChatExchange::OnSuccessStart() {
  if (!stream_) return;
  sse_ = std::make_unique<SseParser>();
  decoder_ = target().provider->adapter->NewStreamDecoder();
}

TransferHandler::DataResult ChatExchange::OnSuccessBody(std::string_view bytes) {
  if (decoder_ == nullptr) {
    if (body_.size() + bytes.size() > kMaxResponseBody) {
      SetAttemptError(absl::ResourceExhaustedError(
          absl::StrCat("upstream response larger than ", kMaxResponseBody, " bytes")));
      return DataResult::kAbort;
    }
    body_.append(bytes);
    return DataResult::kContinue;
  }
  // Backpressure: a caller that stopped reading pauses the upstream (the bytes come again).
  if (committed() && listener_->Congested()) return DataResult::kPause;
  absl::Status status = sse_->Feed(bytes, [this](std::string_view event, std::string_view data) {
    return decoder_->OnEvent(event, data, *this);
  });
  if (!status.ok()) {
    SetAttemptError(std::move(status));
    return DataResult::kAbort;
  }
  return DataResult::kContinue;
}

absl::Status ChatExchange::OnSuccessEnd() {
  absl::Status status;
  if (stream_) {
    sse_->Finish();
    status = decoder_->OnEnd(*this);
  } else {
    absl::StatusOr<ChatResult> result = target().provider->adapter->ParseChatResponse(body_);
    if (!result.ok()) return result.status();
    if (chat_.check_reply) {
      if (absl::Status verdict = chat_.check_reply(*result); !verdict.ok()) {
        if (++rejected_replies_ >= 2) MakeLastAttempt();
        return verdict;
      }
    }
    OnText(result->text);
    for (size_t i = 0; i < result->tool_calls.size(); ++i) {
      const v1::ToolCall& call = result->tool_calls[i];
      OnToolCall(
          ToolCallFragment{static_cast<int32_t>(i), call.id(), call.name(), call.arguments_json()});
    }
    OnFinish(result->finish);
  }
  if (status.ok() && !finished_)
    status = absl::InternalError("upstream stream ended without a finish");
  return status;
}

void ChatExchange::OnText(std::string_view text) {
  if (text.empty()) return;
  MarkFirstToken();
  if (!committed()) Commit();
  text_.append(text);
  if (stream_) listener_->OnText(text);
}

void ChatExchange::OnToolCall(const ToolCallFragment& fragment) {
  MarkFirstToken();
  if (!committed()) Commit();
  tool_calls_.Add(fragment);
  if (stream_) listener_->OnToolCall(fragment);
}

void ChatExchange::OnFinish(const ChatFinish& finish) {
  finished_ = true;
  finish_ = finish;
  NormalizeTokenParts(finish_);  // the one place every adapter's counts pass through
}

void ChatExchange::Commit() {
  MarkCommitted();
  const TargetEntry& t = target();
  start_.set_request_id(request().request_id);
  start_.set_provider(t.provider->name);
  start_.set_model(t.model);
  start_.set_attempt(planner().attempt_on_target());
  start_.set_fallback_position(t.fallback_position);
  if (request().degraded) start_.set_degraded(true);
  start_.set_tier_chain(route().tier_chain);
  start_.set_variant(route().variant);
  start_.set_latency_class(request().latency_class == LatencyClass::kBatch
                               ? v1::LATENCY_CLASS_BATCH
                               : v1::LATENCY_CLASS_INTERACTIVE);
  for (v1::RequestFeature f : features_) start_.add_features(f);
  listener_->OnCommit(start_);
}

v1::RequestFeature ChatExchange::UnsupportedFeature(const TargetEntry& target) const {
  const ChatRequest& chat = ChatFormFor(chat_, target);
  for (v1::RequestFeature f : &chat == &chat_ ? features_ : ChatFeatures(chat)) {
    if (!target.features.Supports(f)) return f;
  }
  return v1::REQUEST_FEATURE_UNSPECIFIED;
}

bool ChatExchange::ServeFirst() {
  if (route().cache.mode == CacheMode::kOff) return false;
  cache_key_ = ChatCacheKey(route().capability, chat_, max_tokens());
  return route().cache.mode == CacheMode::kFirst &&
         ServeFromCache(route().cache.ttl, /*first_line=*/true);
}

bool ChatExchange::ServeFallback() {
  if (route().cache.mode != CacheMode::kOff &&
      ServeFromCache(route().cache.ttl + route().cache.max_stale, /*first_line=*/false)) {
    return true;
  }
  if (!route().degradation.static_response_enabled) return false;
  v1::CompletionStart start;
  start.set_degraded(true);
  resilience().CountDegraded();
  start.set_fallback_position(route().tiers + (route().cache.mode != CacheMode::kOff ? 1 : 0));
  degraded_ = true;
  ServeStatic(start, route().degradation.static_response, v1::FINISH_REASON_OTHER,
              "turnpike_degraded");
  return true;
}

void ChatExchange::OnSucceeded() {
  // A reply that calls tools is a step of a conversation, not an answer to reuse.
  if (cache_key_.empty() || !tool_calls_.calls().empty()) return;
  ResponseCache::Entry entry;
  entry.text = text_;
  entry.finish_reason = finish_.reason;
  entry.provider_finish_reason = finish_.provider_reason;
  entry.provider = target().provider->name;
  entry.model = target().model;
  entry.stored = Now();
  route().response_cache->Put(cache_key_, std::move(entry));
}

bool ChatExchange::ServeFromCache(absl::Duration max_age, bool first_line) {
  ResponseCache& cache = *route().response_cache;
  const absl::Duration drop_after = route().cache.ttl + route().cache.max_stale;
  std::optional<ResponseCache::Hit> hit = cache.Get(cache_key_, Now(), max_age, drop_after);
  if (!hit.has_value()) return false;
  v1::CompletionStart start;
  start.set_provider(hit->entry.provider);
  start.set_model(hit->entry.model);
  start.set_cache_hit(true);
  start.set_stale(hit->age >= route().cache.ttl);
  start.set_fallback_position(first_line ? 0 : route().tiers);
  if (!first_line) resilience().CountCacheFallback(start.stale());
  cache_hit_ = true;
  ServeStatic(start, std::move(hit->entry.text), hit->entry.finish_reason,
              std::move(hit->entry.provider_finish_reason));
  return true;
}

void ChatExchange::ServeStatic(v1::CompletionStart start, std::string text, v1::FinishReason reason,
                               std::string provider_reason) {
  MarkCommitted();
  start_ = std::move(start);
  start_.set_request_id(request().request_id);
  if (request().degraded) start_.set_degraded(true);
  start_.set_tier_chain(route().tier_chain);
  start_.set_variant(route().variant);
  start_.set_latency_class(request().latency_class == LatencyClass::kBatch
                               ? v1::LATENCY_CLASS_BATCH
                               : v1::LATENCY_CLASS_INTERACTIVE);
  for (v1::RequestFeature f : features_) start_.add_features(f);
  listener_->OnCommit(start_);
  text_ = std::move(text);
  if (stream_ && !text_.empty()) listener_->OnText(text_);
  finished_ = true;
  finish_ = ChatFinish();
  finish_.reason = reason;
  finish_.provider_reason = std::move(provider_reason);
  finish_.usage_reported = true;  // nothing was billed
}

void ChatExchange::FillOutcome(const absl::Status& /*status*/, RequestFinished& event) {
  event.cache_hit = cache_hit_;
  event.degraded = degraded_;
  event.features = features_;
  if (cache_hit_ || degraded_) {
    event.provider = start_.provider();
    event.model = start_.model();
    event.credential.clear();
    event.provider_kind = config::v1::PROVIDER_KIND_UNSPECIFIED;  // no model was asked
    event.cost_known = true;                                      // nothing was billed
    return;
  }
  if (!finished_ && !committed()) return;  // nothing reached the caller: nothing was billed
  MeterChatUsage(finish_, chat_.messages, text_.size(), target(), event);
}

void ChatExchange::CaptureContent(RequestContent& content) const {
  if (chat_.messages != nullptr) {
    content.messages.reserve(static_cast<size_t>(chat_.messages->size()));
    for (const v1::Message& m : *chat_.messages) {
      content.messages.emplace_back(v1::Role_Name(m.role()), m.content());
    }
  }
  content.reply = text_;
}

void ChatExchange::Deliver(const absl::Status& status, const RequestFinished& event) {
  v1::CompletionFinish finish;
  *finish.mutable_attempts() = event.attempts;
  *finish.mutable_usage() = UsageOf(event);
  if (status.ok()) {
    if (!committed()) Commit();
    finish.set_finish_reason(finish_.reason);
    finish.set_provider_finish_reason(finish_.provider_reason);
    if (!stream_) {
      listener_->OnText(text_);
      const std::vector<v1::ToolCall>& calls = tool_calls_.calls();
      for (size_t i = 0; i < calls.size(); ++i) {
        listener_->OnToolCall(ToolCallFragment{static_cast<int32_t>(i), calls[i].id(),
                                               calls[i].name(), calls[i].arguments_json()});
      }
    }
  }
  listener_->OnDone(status, finish);
}

}  // namespace turnpike
