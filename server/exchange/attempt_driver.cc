#include "server/exchange/attempt_driver.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "common/thread_bit_gen.h"
#include "server/exchange/failure_status.h"

namespace turnpike {
namespace {

// Error bodies are kept up to this size for ParseError; the rest is dropped.
constexpr size_t kMaxErrorBody = 64 << 10;

bool IsSuccess(int http_status) { return http_status >= 200 && http_status < 300; }

}  // namespace

AttemptDriver::AttemptDriver(ExchangeRequest request, UpstreamTransport& transport,
                             Resilience& resilience, RequestFinishedSink* sink,
                             GatewayMetrics* metrics)
    : request_(std::move(request)),
      transport_(transport),
      resilience_(resilience),
      sink_(sink),
      metrics_(metrics) {}

AttemptDriver::~AttemptDriver() {
  if (metrics_ != nullptr) {
    metrics_->RecordOverhead(static_cast<GatewayMetrics::Method>(request_.method),
                             overhead_nanos_.load(std::memory_order_relaxed));
  }
}

void AttemptDriver::Start() {
  auto self = shared_from_this();
  if (!transport_.Post([self] { self->StartOnTransport(); })) {
    // The transport has stopped: nothing can run, and no other thread touches the driver yet.
    deadline_ = request_.deadline;
    // The transport's random source belongs to its thread; this is another one.
    planner_ =
        std::make_unique<AttemptPlanner>(route(), resilience_, deadline_, ThisThreadBitGen());
    Done(absl::UnavailableError("the gateway is shutting down"));
  }
}

void AttemptDriver::Cancel() {
  cancelled_.store(true);
  const UpstreamTransport::TransferId id = transfer_.load();
  if (id != 0) transport_.Cancel(id);
  // A wait (backoff, cool-down) in progress must end now too: wake the driver on its thread.
  auto self = shared_from_this();
  transport_.Post([self] { self->OnCancelWake(); });
}

void AttemptDriver::Resume() {
  const UpstreamTransport::TransferId id = transfer_.load();
  if (id != 0) transport_.Resume(id);
}

void AttemptDriver::StartOnTransport() {
  ScopedOverhead overhead(&overhead_nanos_);
  const absl::Time now = Now();
  deadline_ = std::min(request_.deadline, now + route().timeouts.total_timeout);
  planner_ = std::make_unique<AttemptPlanner>(route(), resilience_, deadline_, transport_.random());
  if (cancelled_.load()) {
    Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  if (now >= request_.deadline) {
    Done(absl::DeadlineExceededError("the client's deadline passed before any attempt"));
    return;
  }
  if (ServeFirst()) {
    Done(absl::OkStatus());
    return;
  }
  // Targets that cannot serve what the request uses are out before anything goes upstream.
  v1::RequestFeature missing = v1::REQUEST_FEATURE_UNSPECIFIED;
  size_t excluded = 0;
  for (size_t i = 0; i < route().targets.size(); ++i) {
    const v1::RequestFeature f = UnsupportedFeature(route().targets[i]);
    if (f == v1::REQUEST_FEATURE_UNSPECIFIED) continue;
    if (missing == v1::REQUEST_FEATURE_UNSPECIFIED) missing = f;
    ++excluded;
    planner_->Exclude(i, absl::StrCat("the provider does not support ", Absl(FeatureName(f)),
                                      " (docs/tools.md)"));
  }
  if (excluded > 0 && excluded == route().targets.size()) {
    Done(absl::FailedPreconditionError(
        absl::StrCat("no target of capability \"", route().capability, "\" supports ",
                     Absl(FeatureName(missing)), ", which the request uses (docs/tools.md)")));
    return;
  }
  Run(planner_->First());
}

void AttemptDriver::Run(const AttemptPlanner::Step& step) {
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
  wait_timer_ = transport_.RunAfter(step.delay, [self] { self->OnWaitOver(); });
  if (wait_timer_ == 0) {
    waiting_ = false;
    planner_->Abandon();
    Done(absl::UnavailableError("the gateway is shutting down"));
  }
}

void AttemptDriver::OnWaitOver() {
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

void AttemptDriver::OnCancelWake() {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_) return;
  if (waiting_) {
    transport_.CancelTimer(wait_timer_);
    waiting_ = false;
    wait_timer_ = 0;
    planner_->Abandon();
    Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  const UpstreamTransport::TransferId id = transfer_.load();
  if (id != 0) transport_.Cancel(id);
}

void AttemptDriver::StartAttempt(const AttemptPlanner::Step& step) {
  planner_->Begin();
  attempt_running_ = true;
  ++generation_;
  attempt_start_ = Now();
  http_status_ = 0;
  retry_after_ms_ = 0;
  error_body_.clear();
  attempt_error_ = absl::OkStatus();
  got_token_ = false;
  first_token_timed_out_ = false;
  first_token_timeout_ = step.first_token_timeout;
  ResetAttempt();

  const TargetEntry& t = route().targets[step.target];
  absl::StatusOr<HttpRequest> http = BuildRequest(t);
  if (!http.ok()) {
    // Not an upstream failure: this target cannot serve the request; the planner moves on.
    FinishAttempt(http.status());
    return;
  }
  // Propagate the caller's trace to the provider (W3C Trace Context), one span per attempt.
  if (!request_.trace_id.empty()) {
    const uint64_t span = absl::Uniform<uint64_t>(transport_.random(), 1, UINT64_MAX);
    http->headers.push_back(
        absl::StrFormat("traceparent: 00-%s-%016x-01", request_.trace_id, span));
  }
  TransferOptions options = route().timeouts;
  const absl::Duration left = std::max(deadline_ - attempt_start_, absl::Milliseconds(1));
  options.total_timeout = left;
  options.first_byte_timeout = std::min(step.first_token_timeout, left);
  auto self = shared_from_this();
  const uint64_t generation = generation_;
  const UpstreamTransport::TransferId id = transport_.Start(*std::move(http), options, self);
  // A stopping transport completes the transfer inline (CANCELLED): the request may be over.
  if (done_ || generation != generation_ || !attempt_running_) return;
  transfer_.store(id);
  // A Cancel() that raced with this start may have read the previous id: cancel ourselves.
  if (cancelled_.load()) transport_.Cancel(id);
  if (WantsFirstTokenTimer() && first_token_timeout_ < left) {
    first_token_timer_ = transport_.RunAfter(
        first_token_timeout_, [self, generation] { self->OnFirstTokenTimeout(generation); });
  }
}

void AttemptDriver::OnFirstTokenTimeout(uint64_t generation) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_ || generation != generation_ || !attempt_running_ || got_token_) return;
  first_token_timer_ = 0;
  first_token_timed_out_ = true;
  const UpstreamTransport::TransferId id = transfer_.load();
  if (id != 0) transport_.Cancel(id);
}

void AttemptDriver::MarkCommitted() {
  if (committed_) return;
  committed_ = true;
  committed_at_ = Now();
}

void AttemptDriver::MarkFirstToken() {
  if (got_token_) return;
  got_token_ = true;
  if (first_token_timer_ != 0) {
    transport_.CancelTimer(first_token_timer_);
    first_token_timer_ = 0;
  }
  planner_->FirstToken();
}

void AttemptDriver::OnResponseStart(int http_status, int64_t retry_after_ms) {
  ScopedOverhead overhead(&overhead_nanos_);
  http_status_ = http_status;
  retry_after_ms_ = retry_after_ms;
  if (IsSuccess(http_status)) OnSuccessStart();
}

TransferHandler::DataResult AttemptDriver::OnData(std::string_view bytes) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (IsSuccess(http_status_)) return OnSuccessBody(bytes);
  // An error body: keep the start of it for ParseError, drop the rest.
  const size_t room = kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size());
  error_body_.append(bytes.substr(0, room));
  return DataResult::kContinue;
}

absl::Status AttemptDriver::AttemptResult(const absl::Status& transfer_status) {
  if (!attempt_error_.ok()) return attempt_error_;
  if (first_token_timed_out_ && transfer_status.code() == absl::StatusCode::kCancelled &&
      !cancelled_.load()) {
    return absl::DeadlineExceededError(
        absl::StrCat("upstream sent no token within ", absl::FormatDuration(first_token_timeout_)));
  }
  if (IsSuccess(http_status_)) {
    if (!transfer_status.ok()) {
      if (committed_) return WithMessagePrefix(transfer_status, "upstream stream interrupted: ");
      return transfer_status;
    }
    return OnSuccessEnd();
  }
  if (http_status_ != 0) {
    if (transfer_status.code() == absl::StatusCode::kCancelled) return transfer_status;
    ProviderError error = target().provider->adapter->ParseError(http_status_, error_body_);
    // The provider's retry-after header is authoritative; a delay read from the body is a fallback.
    if (retry_after_ms_ > 0) error.retry_after_ms = retry_after_ms_;
    return ProviderErrorStatus(error);
  }
  return transfer_status.ok() ? absl::UnavailableError("upstream closed without a response")
                              : transfer_status;
}

void AttemptDriver::OnComplete(absl::Status transfer_status) {
  ScopedOverhead overhead(&overhead_nanos_);
  if (done_) return;
  FinishAttempt(AttemptResult(transfer_status));
}

void AttemptDriver::FinishAttempt(absl::Status status) {
  // A provider's free text reaches the caller, the attempt list and every log.
  status = RedactProviderText(std::move(status), route());
  transfer_.store(0);
  attempt_running_ = false;
  if (first_token_timer_ != 0) {
    transport_.CancelTimer(first_token_timer_);
    first_token_timer_ = 0;
  }
  if (cancelled_.load() && !status.ok()) status = absl::CancelledError("cancelled by the client");

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
    OnSucceeded();
    Done(absl::OkStatus());
    return;
  }
  if (committed_) {
    Done(std::move(status));
    return;
  }
  last_error_ = std::move(status);
  last_kind_ = outcome.kind;
  if (last_attempt_) {
    GiveUp(absl::ZeroDuration());
    return;
  }
  Run(next);
}

void AttemptDriver::GiveUp(absl::Duration retry_hint) {
  const bool availability_failure =
      last_kind_ != FailureKind::kCancelled && last_kind_ != FailureKind::kDeadline &&
      last_kind_ != FailureKind::kInvalidRequest && !cancelled_.load() && Now() < request_.deadline;
  if (availability_failure && ServeFallback()) {
    Done(absl::OkStatus());
    return;
  }
  Done(GiveUpStatus(last_error_, route(), availability_failure, retry_hint));
}

void AttemptDriver::Done(absl::Status status) {
  done_ = true;
  RequestFinished event;
  event.method = request_.method;
  event.request_id = request_.request_id;
  event.capability = route().capability;
  event.caller = request_.caller;
  event.end_user = request_.end_user;
  event.trace_id = request_.trace_id;
  event.tags = request_.tags;
  event.config_version = request_.config->version();
  if (attempted()) {
    const TargetEntry& t = target();
    event.provider = t.provider->name;
    event.model = t.model;
    event.credential = t.provider->credential;
    event.provider_kind = t.provider->kind;
    event.provider_host = t.provider->host;
    event.attempts = planner_->attempts();
  }
  FillOutcome(status, event);
  if (route().content_policy != config::v1::CONTENT_POLICY_NONE &&
      route().content_policy != config::v1::CONTENT_POLICY_UNSPECIFIED) {
    auto content = std::make_shared<RequestContent>();
    content->policy = route().content_policy;
    content->redactor = route().redactor != nullptr ? route().redactor : Redactor::Default();
    CaptureContent(*content);
    event.content = std::move(content);
  }
  if (request_.degraded) event.degraded = true;
  event.tier_chain = route().tier_chain;
  event.variant = route().variant;
  event.latency_class = request_.latency_class;
  event.admission = request_.admission;
  if (!status.ok()) {
    FailureFacts facts;
    facts.caller_deadline_passed = Now() >= request_.deadline;
    if (attempted()) facts.target = &target();
    if (planner_ != nullptr) {
      facts.targets_involved = planner_->targets_involved();
      facts.attempts = &planner_->attempts();
    }
    facts.committed = committed_;
    status = DecorateFailure(std::move(status), facts, route(), event);
  }
  event.partial = !status.ok() && committed_;
  event.status = status;
  event.start_time = request_.accepted_wall;
  const absl::Time now = Now();
  event.latency = now - request_.accepted;
  if (committed_at_ != absl::InfiniteFuture()) {
    event.time_to_first_token = committed_at_ - request_.accepted;
  }
  if (sink_ != nullptr) sink_->OnRequestDecided(event);
  Deliver(status, event);
  if (sink_ != nullptr) {
    event.overhead_nanos = overhead_nanos_.load(std::memory_order_relaxed);
    sink_->OnRequestFinished(event);
  }
}

}  // namespace turnpike
