#include "server/exchange/chat_exchange.h"

#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/thread_bit_gen.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr size_t kMaxResponseBody = 16 << 20;

// Token estimate for usage the provider never reported (a stream cut off after text was sent):
// about four bytes of text per token, rounded up, so partial usage is never zero.
int64_t EstimateTokens(size_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); }

void AppendField(std::string* out, std::string_view value) {
  const uint64_t n = value.size();
  out->append(reinterpret_cast<const char*>(&n), sizeof(n));
  out->append(value);
}

void AppendNumber(std::string* out, std::optional<double> value) {
  if (!value.has_value()) {
    out->push_back('\0');
    return;
  }
  out->push_back('\1');
  double v = *value;
  char bytes[sizeof(v)];
  std::memcpy(bytes, &v, sizeof(v));
  out->append(bytes, sizeof(bytes));
}

}  // namespace

std::string ChatCacheKey(std::string_view capability, const ChatRequest& request,
                         int32_t max_tokens) {
  std::string normalized;
  AppendField(&normalized, capability);
  AppendField(&normalized, std::to_string(max_tokens));
  AppendNumber(&normalized, request.temperature);
  AppendNumber(&normalized, request.top_p);
  AppendField(&normalized, std::to_string(request.stop.size()));
  for (const std::string& s : request.stop) AppendField(&normalized, s);
  if (request.messages != nullptr) {
    AppendField(&normalized, std::to_string(request.messages->size()));
    for (const v1::Message& m : *request.messages) {
      AppendField(&normalized, std::to_string(static_cast<int>(m.role())));
      AppendField(&normalized, m.content());
    }
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(normalized.data()), normalized.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

ChatExchange::ChatExchange(std::shared_ptr<const RuntimeConfig> config, const RouteEntry* route,
                           ChatRequest request, bool stream, UpstreamLoop& loop,
                           Resilience& resilience, ChatListener* listener, absl::Time deadline,
                           GatewayMetrics* metrics)
    : config_(std::move(config)),
      route_(route),
      request_(std::move(request)),
      stream_(stream),
      loop_(loop),
      resilience_(resilience),
      listener_(listener),
      client_deadline_(deadline),
      metrics_(metrics) {}

ChatExchange::~ChatExchange() {
  if (metrics_ != nullptr) {
    metrics_->RecordOverhead(
        stream_ ? GatewayMetrics::Method::kStreamCompletion : GatewayMetrics::Method::kComplete,
        overhead_nanos_.load(std::memory_order_relaxed));
  }
}

void ChatExchange::RecordAttempts() const {
  if (metrics_ == nullptr || planner_ == nullptr) return;
  for (const v1::Attempt& a : planner_->attempts()) {
    metrics_->RecordAttempt(a.provider(), a.model(), v1::AttemptDisposition_Name(a.disposition()));
  }
}

absl::Time ChatExchange::Now() const { return resilience_.clock().MonotonicNow(); }

void ChatExchange::Start() {
  auto self = shared_from_this();
  if (loop_.RunAfter(absl::ZeroDuration(), [self] { self->StartOnLoop(); }) == 0) {
    // The loop has stopped: nothing can run; end here (no other thread touches the exchange yet).
    deadline_ = client_deadline_;
    planner_ =
        std::make_unique<AttemptPlanner>(*route_, resilience_, deadline_, ThisThreadBitGen());
    Done(absl::UnavailableError("the gateway is shutting down"));
  }
}

void ChatExchange::Cancel() {
  cancelled_.store(true);
  const UpstreamLoop::TransferId id = transfer_.load();
  if (id != 0) loop_.Cancel(id);
  // A wait (backoff, cool-down) in progress must end now too: wake the exchange on the loop.
  auto self = shared_from_this();
  loop_.RunAfter(absl::ZeroDuration(), [self] { self->OnCancelWake(); });
}

void ChatExchange::Resume() {
  const UpstreamLoop::TransferId id = transfer_.load();
  if (id != 0) loop_.Resume(id);
}

void ChatExchange::StartOnLoop() {
  ScopedOverhead overhead(&overhead_nanos_);
  const absl::Time now = Now();
  deadline_ = std::min(client_deadline_, now + route_->timeouts.total_timeout);
  planner_ = std::make_unique<AttemptPlanner>(*route_, resilience_, deadline_, ThisThreadBitGen());
  if (cancelled_.load()) {
    Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  if (now >= client_deadline_) {
    Done(absl::DeadlineExceededError("the client's deadline passed before any attempt"));
    return;
  }
  if (route_->cache.mode != CacheMode::kOff) {
    cache_key_ = ChatCacheKey(route_->capability, request_,
                              request_.max_tokens.value_or(route_->default_max_tokens));
    if (route_->cache.mode == CacheMode::kFirst &&
        ServeFromCache(route_->cache.ttl, /*first_line=*/true)) {
      return;
    }
  }
  Run(planner_->First());
}

void ChatExchange::Run(const AttemptPlanner::Step& step) {
  if (step.kind == AttemptPlanner::Step::Kind::kGiveUp) {
    GiveUp(step.retry_hint);
    return;
  }
  if (step.delay <= absl::ZeroDuration()) {
    StartAttempt(step);
    return;
  }
  pending_step_ = step;
  waiting_ = true;
  auto self = shared_from_this();
  wait_timer_ = loop_.RunAfter(step.delay, [self] { self->OnWaitOver(); });
  if (wait_timer_ == 0) {
    waiting_ = false;
    planner_->Abandon();
    Done(absl::UnavailableError("the gateway is shutting down"));
  }
}

void ChatExchange::OnWaitOver() {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_ || !waiting_) return;
  waiting_ = false;
  wait_timer_ = 0;
  if (cancelled_.load()) {
    planner_->Abandon();
    Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  StartAttempt(pending_step_);
}

void ChatExchange::OnCancelWake() {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_) return;
  if (waiting_) {
    loop_.CancelTimer(wait_timer_);
    waiting_ = false;
    wait_timer_ = 0;
    planner_->Abandon();
    Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  const UpstreamLoop::TransferId id = transfer_.load();
  if (id != 0) loop_.Cancel(id);
}

void ChatExchange::StartAttempt(const AttemptPlanner::Step& step) {
  planner_->Begin();
  attempt_running_ = true;
  const TargetEntry& t = route_->targets[step.target];
  ChatParams params;
  params.model = t.model;
  params.messages = request_.messages;
  params.max_tokens = request_.max_tokens.value_or(route_->default_max_tokens);
  params.temperature = request_.temperature;
  params.top_p = request_.top_p;
  for (const std::string& s : request_.stop) params.stop.push_back(s);
  params.user = request_.user;
  params.stream = stream_;
  HttpRequest http = t.provider->adapter->BuildChatRequest(params);

  ++generation_;
  attempt_start_ = Now();
  http_status_ = 0;
  retry_after_ms_ = 0;
  body_.clear();
  sse_.reset();
  decoder_.reset();
  attempt_error_ = absl::OkStatus();
  finished_ = false;
  finish_ = ChatFinish();
  got_text_ = false;
  first_token_timed_out_ = false;
  first_token_timeout_ = step.first_token_timeout;

  TransferOptions options = route_->timeouts;
  const absl::Duration left = std::max(deadline_ - attempt_start_, absl::Milliseconds(1));
  options.total_timeout = left;
  options.first_byte_timeout = std::min(step.first_token_timeout, left);
  auto self = shared_from_this();
  const uint64_t generation = generation_;
  const UpstreamLoop::TransferId id = loop_.Start(std::move(http), options, self);
  // A stopping loop completes the transfer inline (CANCELLED): the exchange may be done already.
  if (done_ || generation != generation_ || !attempt_running_) return;
  transfer_.store(id);
  // A Cancel() that raced with this start may have read the previous id: cancel ourselves.
  if (cancelled_.load()) loop_.Cancel(id);
  // Streams get a true first-token limit: bytes without text (headers, pings) do not count.
  if (stream_ && first_token_timeout_ < left) {
    first_token_timer_ = loop_.RunAfter(
        first_token_timeout_, [self, generation] { self->OnFirstTokenTimeout(generation); });
  }
}

void ChatExchange::OnFirstTokenTimeout(uint64_t generation) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_ || generation != generation_ || !attempt_running_ || got_text_) return;
  first_token_timer_ = 0;
  first_token_timed_out_ = true;
  const UpstreamLoop::TransferId id = transfer_.load();
  if (id != 0) loop_.Cancel(id);
}

void ChatExchange::OnResponseStart(int http_status, int64_t retry_after_ms) {
  ScopedOverhead overhead(&overhead_nanos_);
  http_status_ = http_status;
  retry_after_ms_ = retry_after_ms;
  if (stream_ && http_status >= 200 && http_status < 300) {
    sse_ = std::make_unique<SseParser>();
    decoder_ = target().provider->adapter->NewStreamDecoder();
  }
}

TransferHandler::DataResult ChatExchange::OnData(std::string_view bytes) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (decoder_ == nullptr) {
    const size_t cap =
        (http_status_ >= 200 && http_status_ < 300) ? kMaxResponseBody : kMaxErrorBody;
    if (body_.size() + bytes.size() > cap) {
      if (http_status_ >= 200 && http_status_ < 300) {
        attempt_error_ = absl::ResourceExhaustedError(
            absl::StrCat("upstream response larger than ", cap, " bytes"));
        return DataResult::kAbort;
      }
      body_.append(bytes.substr(0, cap - body_.size()));
      return DataResult::kContinue;
    }
    body_.append(bytes);
    return DataResult::kContinue;
  }
  if (committed_ && listener_->Congested()) return DataResult::kPause;
  absl::Status status = sse_->Feed(bytes, [this](std::string_view event, std::string_view data) {
    return decoder_->OnEvent(event, data, *this);
  });
  if (!status.ok()) {
    attempt_error_ = std::move(status);
    return DataResult::kAbort;
  }
  return DataResult::kContinue;
}

void ChatExchange::OnText(std::string_view text) {
  if (text.empty()) return;
  if (!got_text_) {
    got_text_ = true;
    if (first_token_timer_ != 0) {
      loop_.CancelTimer(first_token_timer_);
      first_token_timer_ = 0;
    }
    planner_->FirstToken();
  }
  if (!committed_) Commit();
  text_.append(text);
  if (stream_) listener_->OnText(text);
}

void ChatExchange::OnFinish(const ChatFinish& finish) {
  finished_ = true;
  finish_ = finish;
}

void ChatExchange::Commit() {
  committed_ = true;
  const TargetEntry& t = target();
  start_.set_request_id(request_.request_id);
  start_.set_provider(t.provider->name);
  start_.set_model(t.model);
  start_.set_attempt(planner_->attempt_on_target());
  start_.set_fallback_position(t.fallback_position);
  listener_->OnCommit(start_);
}

absl::Status ChatExchange::AttemptResult(const absl::Status& transfer_status) {
  if (!attempt_error_.ok()) return attempt_error_;
  if (first_token_timed_out_ && transfer_status.code() == absl::StatusCode::kCancelled &&
      !cancelled_.load()) {
    return absl::DeadlineExceededError(
        absl::StrCat("upstream sent no token within ", absl::FormatDuration(first_token_timeout_)));
  }
  if (http_status_ >= 200 && http_status_ < 300) {
    if (!transfer_status.ok()) {
      if (committed_) {
        return absl::Status(transfer_status.code(), absl::StrCat("upstream stream interrupted: ",
                                                                 transfer_status.message()));
      }
      return transfer_status;
    }
    const ProviderAdapter& adapter = *target().provider->adapter;
    if (stream_) {
      sse_->Finish();
      return decoder_->OnEnd(*this);
    }
    absl::StatusOr<ChatResult> result = adapter.ParseChatResponse(body_);
    if (!result.ok()) return result.status();
    OnText(result->text);
    OnFinish(result->finish);
    return absl::OkStatus();
  }
  if (http_status_ != 0) {
    if (transfer_status.code() == absl::StatusCode::kCancelled) return transfer_status;
    ProviderError error = target().provider->adapter->ParseError(http_status_, body_);
    // The provider's retry-after header is authoritative; a delay read from the body is a fallback.
    if (retry_after_ms_ > 0) error.retry_after_ms = retry_after_ms_;
    return ProviderErrorStatus(error);
  }
  return transfer_status.ok() ? absl::UnavailableError("upstream closed without a response")
                              : transfer_status;
}

void ChatExchange::OnComplete(absl::Status transfer_status) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_) return;
  transfer_.store(0);
  attempt_running_ = false;
  if (first_token_timer_ != 0) {
    loop_.CancelTimer(first_token_timer_);
    first_token_timer_ = 0;
  }
  absl::Status status = AttemptResult(transfer_status);
  if (cancelled_.load() && !status.ok()) status = absl::CancelledError("cancelled by the client");
  if (status.ok() && !finished_)
    status = absl::InternalError("upstream stream ended without a finish");

  AttemptOutcome outcome;
  outcome.status = status;
  outcome.kind = ClassifyFailure(status, Now() >= deadline_);
  outcome.http_status = http_status_;
  outcome.retry_after_ms = retry_after_ms_;
  if (std::optional<ProviderError> error = ProviderErrorFromStatus(status)) {
    outcome.retry_after_ms = error->retry_after_ms;
  }
  outcome.committed = committed_;
  const AttemptPlanner::Step next = planner_->Finish(outcome, Now() - attempt_start_);

  if (status.ok()) {
    if (!cache_key_.empty()) {
      ResponseCache::Entry entry;
      entry.text = text_;
      entry.finish_reason = finish_.reason;
      entry.provider_finish_reason = finish_.provider_reason;
      entry.provider = target().provider->name;
      entry.model = target().model;
      entry.stored = Now();
      route_->response_cache->Put(cache_key_, std::move(entry));
    }
    Done(absl::OkStatus());
    return;
  }
  if (committed_) {
    Done(std::move(status));
    return;
  }
  last_error_ = std::move(status);
  last_kind_ = outcome.kind;
  Run(next);
}

void ChatExchange::GiveUp(absl::Duration retry_hint) {
  const bool availability_failure =
      last_kind_ != FailureKind::kCancelled && last_kind_ != FailureKind::kDeadline &&
      last_kind_ != FailureKind::kInvalidRequest && !cancelled_.load() && Now() < client_deadline_;
  if (availability_failure) {
    if (route_->cache.mode != CacheMode::kOff &&
        ServeFromCache(route_->cache.ttl + route_->cache.max_stale, /*first_line=*/false)) {
      return;
    }
    if (route_->degradation.static_response_enabled) {
      v1::CompletionStart start;
      start.set_degraded(true);
      resilience_.CountDegraded();
      start.set_fallback_position(route_->tiers + (route_->cache.mode != CacheMode::kOff ? 1 : 0));
      ServeStatic(start, route_->degradation.static_response, v1::FINISH_REASON_OTHER,
                  "turnpike_degraded");
      return;
    }
  }
  absl::Status status = last_error_;
  if (status.ok()) {
    // No attempt ran: every target was skipped (rate-limit cool-downs beyond the deadline).
    status = absl::UnavailableError(
        absl::StrCat("no target of capability \"", route_->capability, "\" is available now"));
  }
  if (availability_failure && route_->degradation.force_unavailable &&
      status.code() != absl::StatusCode::kUnavailable) {
    status = WithCode(status, absl::StatusCode::kUnavailable);
  }
  // When a target will be available again (a cool-down or an ejection ends), say so, unless the
  // provider's own retry-after already does.
  if (retry_hint > absl::ZeroDuration() &&
      (status.code() == absl::StatusCode::kUnavailable ||
       status.code() == absl::StatusCode::kResourceExhausted)) {
    std::optional<ProviderError> error = ProviderErrorFromStatus(status);
    if (!error.has_value() || error->retry_after_ms == 0) {
      AttachRetryInfo(status,
                      absl::ToInt64Milliseconds(absl::Ceil(retry_hint, absl::Milliseconds(1))));
    }
  }
  Done(std::move(status));
}

bool ChatExchange::ServeFromCache(absl::Duration max_age, bool first_line) {
  ResponseCache& cache = *route_->response_cache;
  const absl::Duration drop_after = route_->cache.ttl + route_->cache.max_stale;
  std::optional<ResponseCache::Hit> hit = cache.Get(cache_key_, Now(), max_age, drop_after);
  if (!hit.has_value()) return false;
  v1::CompletionStart start;
  start.set_provider(hit->entry.provider);
  start.set_model(hit->entry.model);
  start.set_cache_hit(true);
  start.set_stale(hit->age >= route_->cache.ttl);
  start.set_fallback_position(first_line ? 0 : route_->tiers);
  if (!first_line) resilience_.CountCacheFallback(start.stale());
  ServeStatic(start, std::move(hit->entry.text), hit->entry.finish_reason,
              std::move(hit->entry.provider_finish_reason));
  return true;
}

void ChatExchange::ServeStatic(const v1::CompletionStart& start, std::string text,
                               v1::FinishReason reason, std::string provider_reason) {
  done_ = true;
  start_ = start;
  start_.set_request_id(request_.request_id);
  committed_ = true;
  listener_->OnCommit(start_);
  if (!text.empty()) listener_->OnText(text);
  result_.set_finish_reason(reason);
  result_.set_provider_finish_reason(std::move(provider_reason));
  result_.mutable_usage();  // nothing was billed
  *result_.mutable_attempts() = planner_->attempts();
  RecordAttempts();
  listener_->OnDone(absl::OkStatus(), result_);
}

absl::Status ChatExchange::Decorate(absl::Status status) const {
  const bool attempted = planner_ != nullptr && !planner_->attempts().empty();
  // Upstream timeouts are UNAVAILABLE to the caller unless the caller's own deadline passed.
  if (status.code() == absl::StatusCode::kDeadlineExceeded && Now() < client_deadline_) {
    status = WithCode(status, absl::StatusCode::kUnavailable);
  }
  std::optional<ProviderError> error = ProviderErrorFromStatus(status);
  std::string prefix;
  if (error.has_value() && attempted) {
    const TargetEntry& t = target();
    v1::ProviderError detail;
    detail.set_provider(t.provider->name);
    detail.set_model(t.model);
    detail.set_http_status(error->http_status);
    detail.set_error_type(error->type);
    detail.set_error_code(error->code);
    detail.set_message(error->message);
    detail.set_retry_after_ms(error->retry_after_ms);
    prefix = absl::StrCat(t.provider->name, ": ");
    AttachDetail(status, detail);
    if (error->retry_after_ms > 0) AttachRetryInfo(status, error->retry_after_ms);
  }
  // Several targets failed: the caller cannot act on one provider's error code, so the request
  // is UNAVAILABLE (the attempt list says what each target did).
  const int targets = planner_ != nullptr ? planner_->targets_involved() : 0;
  if (!committed_ && targets > 1 && status.code() != absl::StatusCode::kCancelled &&
      status.code() != absl::StatusCode::kDeadlineExceeded &&
      status.code() != absl::StatusCode::kInvalidArgument &&
      status.code() != absl::StatusCode::kUnavailable) {
    status = WithCode(status, absl::StatusCode::kUnavailable);
  }
  if (!committed_ && targets > 1 && status.code() == absl::StatusCode::kUnavailable) {
    prefix = absl::StrCat("all ", targets, " targets of \"", route_->capability,
                          "\" failed; last: ", prefix);
  }
  if (!prefix.empty()) {
    status = WithMessagePrefix(status, prefix);
  }
  v1::PartialCompletion partial;
  if (planner_ != nullptr) *partial.mutable_attempts() = planner_->attempts();
  if (committed_) *partial.mutable_usage() = result_.usage();
  AttachDetail(status, partial);
  return status;
}

void ChatExchange::Done(absl::Status status) {
  done_ = true;
  RecordAttempts();
  if (planner_ != nullptr) *result_.mutable_attempts() = planner_->attempts();
  v1::Usage* usage = result_.mutable_usage();
  if (finished_ || committed_) {
    const TargetEntry& t = target();
    int64_t input = finish_.input_tokens;
    int64_t output = finish_.output_tokens;
    if (!status.ok() && committed_ && !finish_.usage_reported) {
      // Cut off before the provider reported usage: meter an estimate, never zero.
      size_t prompt_bytes = 0;
      if (request_.messages != nullptr) {
        for (const v1::Message& m : *request_.messages) prompt_bytes += m.content().size();
      }
      input = std::max(input, EstimateTokens(prompt_bytes));
      output = std::max(output, EstimateTokens(text_.size()));
    }
    usage->set_input_tokens(input);
    usage->set_output_tokens(output);
    usage->set_cost_usd_micros(RuntimeConfig::CostMicros(t, input, output));
  }
  if (status.ok()) {
    if (!committed_) Commit();
    result_.set_finish_reason(finish_.reason);
    result_.set_provider_finish_reason(finish_.provider_reason);
    if (!stream_) listener_->OnText(text_);
    listener_->OnDone(status, result_);
    return;
  }
  listener_->OnDone(Decorate(std::move(status)), result_);
}

}  // namespace turnpike
