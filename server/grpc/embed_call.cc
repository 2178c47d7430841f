// The asynchronous call of turnpike.v1.EmbeddingService/Embed and its upstream exchange, under
// the same retry, failover and circuit-breaker policy as completions (AttemptPlanner); only
// OpenAI-style providers embed.
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "common/thread_bit_gen.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_env.h"
#include "server/grpc/request_validation.h"
#include "server/resilience/attempt_planner.h"
#include "spdlog/spdlog.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kFinish = 2, kDone = 3 };
constexpr size_t kMaxBody = 64 << 20;

absl::Time Monotonic() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

// Runs the embedding request under the route's resilience policy (the same AttemptPlanner as
// completions: retries with backoff, failover, circuit breakers); reports once through `done`.
// All state lives on the loop thread; Start() and Cancel() only post to it.
class EmbedExchange : public TransferHandler, public std::enable_shared_from_this<EmbedExchange> {
 public:
  using DoneFn = std::function<void(absl::Status, v1::EmbedResponse)>;
  EmbedExchange(std::shared_ptr<const RuntimeConfig> config, const RouteEntry* route,
                const v1::EmbedRequest* request, UpstreamLoop& loop, Resilience& resilience,
                absl::Time deadline, DoneFn done)
      : config_(std::move(config)),
        route_(route),
        request_(request),
        loop_(loop),
        resilience_(resilience),
        client_deadline_(deadline),
        done_(std::move(done)) {}

  void Start() {
    auto self = shared_from_this();
    if (loop_.RunAfter(absl::ZeroDuration(), [self] { self->StartOnLoop(); }) == 0) {
      Finish(absl::UnavailableError("the gateway is shutting down"), {});
    }
  }
  void Cancel() {
    cancelled_.store(true);
    if (auto id = transfer_.load(); id != 0) loop_.Cancel(id);
    auto self = shared_from_this();
    loop_.RunAfter(absl::ZeroDuration(), [self] {
      if (self->finished_ || !self->waiting_) return;
      self->loop_.CancelTimer(self->timer_);
      self->waiting_ = false;
      self->planner_->Abandon();
      self->Finish(absl::CancelledError("cancelled by the client"), {});
    });
  }

  void OnResponseStart(int http_status, int64_t retry_after_ms) override {
    http_status_ = http_status;
    retry_after_ms_ = retry_after_ms;
  }
  DataResult OnData(std::string_view bytes) override {
    if (body_.size() + bytes.size() > kMaxBody) return DataResult::kAbort;
    body_.append(bytes);
    return DataResult::kContinue;
  }
  void OnComplete(absl::Status transfer_status) override {
    transfer_.store(0);
    const TargetEntry& target = route_->targets[planner_->current()];
    absl::Status status = transfer_status;
    v1::EmbedResponse response;
    if (status.ok() && http_status_ >= 200 && http_status_ < 300) {
      absl::StatusOr<EmbedResult> result = target.provider->adapter->ParseEmbedResponse(body_);
      if (result.ok()) {
        response.set_request_id(request_->request_id());
        response.set_provider(target.provider->name);
        response.set_model(target.model);
        for (size_t i = 0; i < result->vectors.size(); ++i) {
          auto* e = response.add_embeddings();
          e->set_index(static_cast<int>(i));
          e->mutable_values()->Add(result->vectors[i].begin(), result->vectors[i].end());
        }
        response.mutable_usage()->set_input_tokens(result->input_tokens);
        response.mutable_usage()->set_cost_usd_micros(
            RuntimeConfig::CostMicros(target, result->input_tokens, 0));
      }
      status = result.status();
    } else if (status.ok() || http_status_ >= 300) {
      if (http_status_ == 0) {
        status = absl::UnavailableError("upstream closed without a response");
      } else if (status.code() != absl::StatusCode::kCancelled) {
        ProviderError error = target.provider->adapter->ParseError(http_status_, body_);
        // The provider's retry-after header is authoritative; a delay read from the body is a
        // fallback.
        if (retry_after_ms_ > 0) error.retry_after_ms = retry_after_ms_;
        status = ProviderErrorStatus(error);
      }
    }
    if (cancelled_.load() && !status.ok()) status = absl::CancelledError("cancelled by the client");
    AttemptOutcome outcome;
    outcome.status = status;
    outcome.kind = ClassifyFailure(status, Now() >= deadline_);
    outcome.http_status = http_status_;
    outcome.retry_after_ms = retry_after_ms_;
    if (std::optional<ProviderError> e = ProviderErrorFromStatus(status)) {
      outcome.retry_after_ms = e->retry_after_ms;
    }
    const AttemptPlanner::Step next = planner_->Finish(outcome, Now() - attempt_start_);
    if (status.ok()) {
      Finish(status, std::move(response));
      return;
    }
    last_error_ = std::move(status);
    Run(next);
  }

 private:
  absl::Time Now() const { return resilience_.clock().MonotonicNow(); }

  void StartOnLoop() {
    deadline_ = std::min(client_deadline_, Now() + route_->timeouts.total_timeout);
    planner_ =
        std::make_unique<AttemptPlanner>(*route_, resilience_, deadline_, ThisThreadBitGen());
    if (cancelled_.load()) {
      Finish(absl::CancelledError("cancelled by the client"), {});
      return;
    }
    Run(planner_->First());
  }

  void Run(const AttemptPlanner::Step& step) {
    if (step.kind == AttemptPlanner::Step::Kind::kGiveUp) {
      absl::Status status =
          last_error_.ok()
              ? absl::UnavailableError(absl::StrCat("no target of capability \"",
                                                    route_->capability, "\" is available now"))
              : last_error_;
      if (step.retry_hint > absl::ZeroDuration() &&
          status.code() == absl::StatusCode::kUnavailable && !ProviderErrorFromStatus(status)) {
        AttachRetryInfo(
            status, absl::ToInt64Milliseconds(absl::Ceil(step.retry_hint, absl::Milliseconds(1))));
      }
      Finish(std::move(status), {});
      return;
    }
    if (step.delay <= absl::ZeroDuration()) {
      StartAttempt(step);
      return;
    }
    pending_ = step;
    waiting_ = true;
    auto self = shared_from_this();
    timer_ = loop_.RunAfter(step.delay, [self] {
      if (self->finished_ || !self->waiting_) return;
      self->waiting_ = false;
      if (self->cancelled_.load()) {
        self->planner_->Abandon();
        self->Finish(absl::CancelledError("cancelled by the client"), {});
        return;
      }
      self->StartAttempt(self->pending_);
    });
    if (timer_ == 0) {
      waiting_ = false;
      planner_->Abandon();
      Finish(absl::UnavailableError("the gateway is shutting down"), {});
    }
  }

  void StartAttempt(const AttemptPlanner::Step& step) {
    const TargetEntry& target = route_->targets[step.target];
    EmbedParams params;
    params.model = target.model;
    for (const std::string& input : request_->inputs()) params.inputs.push_back(input);
    if (request_->has_dimensions()) params.dimensions = request_->dimensions();
    params.user = request_->user();
    planner_->Begin();
    attempt_start_ = Now();
    http_status_ = 0;
    retry_after_ms_ = 0;
    body_.clear();
    absl::StatusOr<HttpRequest> http = target.provider->adapter->BuildEmbedRequest(params);
    if (!http.ok()) {
      // Not an upstream failure: this target cannot embed; the planner moves on.
      OnComplete(absl::FailedPreconditionError(
          absl::StrCat("provider \"", target.provider->name,
                       "\" cannot serve embeddings: ", http.status().message())));
      return;
    }
    TransferOptions options = route_->timeouts;
    const absl::Duration left = std::max(deadline_ - attempt_start_, absl::Milliseconds(1));
    options.total_timeout = left;
    options.first_byte_timeout = std::min(step.first_token_timeout, left);
    const auto id = loop_.Start(*std::move(http), options, shared_from_this());
    transfer_.store(id);
    if (cancelled_.load()) loop_.Cancel(id);
  }

  void Finish(absl::Status status, v1::EmbedResponse response) {
    finished_ = true;
    if (planner_ != nullptr) *response.mutable_attempts() = planner_->attempts();
    if (!status.ok() && planner_ != nullptr) {
      const TargetEntry& target = route_->targets[planner_->current()];
      if (status.code() == absl::StatusCode::kDeadlineExceeded && Now() < client_deadline_) {
        status = absl::UnavailableError(status.message());
      }
      if (std::optional<ProviderError> e = ProviderErrorFromStatus(status)) {
        absl::Status named(status.code(),
                           absl::StrCat(target.provider->name, ": ", status.message()));
        v1::ProviderError detail;
        detail.set_provider(target.provider->name);
        detail.set_model(target.model);
        detail.set_http_status(e->http_status);
        detail.set_error_type(e->type);
        detail.set_error_code(e->code);
        detail.set_message(e->message);
        detail.set_retry_after_ms(e->retry_after_ms);
        AttachDetail(named, detail);
        if (e->retry_after_ms > 0) AttachRetryInfo(named, e->retry_after_ms);
        status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
          if (!named.GetPayload(url).has_value()) named.SetPayload(url, payload);
        });
        status = std::move(named);
      }
      v1::PartialCompletion partial;
      *partial.mutable_attempts() = planner_->attempts();
      AttachDetail(status, partial);
    }
    done_(std::move(status), std::move(response));
  }

  const std::shared_ptr<const RuntimeConfig> config_;
  const RouteEntry* const route_;
  const v1::EmbedRequest* const request_;
  UpstreamLoop& loop_;
  Resilience& resilience_;
  const absl::Time client_deadline_;
  const DoneFn done_;
  std::atomic<bool> cancelled_{false};
  std::atomic<UpstreamLoop::TransferId> transfer_{0};
  // Loop-thread state.
  absl::Time deadline_;
  std::unique_ptr<AttemptPlanner> planner_;
  AttemptPlanner::Step pending_;
  UpstreamLoop::TimerId timer_ = 0;
  bool waiting_ = false;
  bool finished_ = false;
  absl::Status last_error_;
  absl::Time attempt_start_;
  int http_status_ = 0;
  int64_t retry_after_ms_ = 0;
  std::string body_;
};

class EmbedCall final : public CallBase {
 public:
  explicit EmbedCall(CallEnv* env) : env_(env), responder_(&ctx_) {
    env_->live_calls->fetch_add(1);
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->embedding->RequestEmbed(&ctx_, &request_buffer_, &responder_, env_->cq, env_->cq,
                                  &request_tag_);
  }

  void Proceed(int kind, bool ok) override {
    switch (kind) {
      case kRequest:
        OnRequest(ok);
        break;
      case kFinish:
        Unref();
        break;
      case kDone: {
        std::shared_ptr<EmbedExchange> cancel;
        if (ctx_.IsCancelled()) {
          absl::MutexLock lock(&mu_);
          if (!exchange_done_) cancel = exchange_;
        }
        if (cancel) cancel->Cancel();
        Unref();
        break;
      }
    }
  }

  ~EmbedCall() override {
    if (accepted_) env_->active_calls->fetch_sub(1);
    env_->live_calls->fetch_sub(1);
  }

 private:
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void Finish(const absl::Status& status, const v1::EmbedResponse& response) {
    if (env_->metrics != nullptr) {
      env_->metrics->RecordRequest(GatewayMetrics::Method::kEmbed,
                                   route_ != nullptr ? route_->capability : "", status.code(),
                                   MonotonicNanos() - start_nanos_);
    }
    absl::MutexLock lock(&mu_);
    exchange_done_ = true;
    if (status.ok()) {
      bool own;
      response_buffer_.Clear();
      grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(
          response, &response_buffer_, &own);
      responder_.Finish(response_buffer_, grpc::Status::OK, &finish_tag_);
    } else {
      responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
    }
  }

  void OnRequest(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    accepted_ = true;
    env_->active_calls->fetch_add(1);
    start_nanos_ = MonotonicNanos();
    if (!env_->shutting_down->load()) SpawnEmbedCall(env_);
    Ref();  // done tag
    absl::Status status = ParseEmbedRequest(request_buffer_, &request_);
    request_buffer_.Clear();
    if (status.ok()) status = ValidateEmbedRequest(request_);
    if (status.ok() && request_.request_id().empty()) request_.set_request_id(NewRequestId());
    std::shared_ptr<const RuntimeConfig> config = env_->config->Get();
    Authorization auth;
    if (status.ok()) {
      if (config == nullptr) {
        status = absl::UnavailableError("gateway has no configuration yet");
      } else {
        absl::StatusOr<Authorization> a = Authorize(*config, ctx_, request_.capability());
        if (a.ok()) {
          auth = *a;
          route_ = auth.route;
        } else {
          status = a.status();
        }
      }
    }
    if (!status.ok()) {
      Finish(status, {});
      return;
    }
    Ref();  // exchange
    const auto deadline = ctx_.deadline();
    const absl::Time abs_deadline =
        deadline == std::chrono::system_clock::time_point::max()
            ? absl::InfiniteFuture()
            : Monotonic() + absl::FromChrono(deadline - std::chrono::system_clock::now());
    auto exchange = std::make_shared<EmbedExchange>(
        std::move(config), auth.route, &request_, *env_->loop, *env_->resilience, abs_deadline,
        [this](absl::Status s, v1::EmbedResponse response) {
          Finish(s, response);
          Unref();
        });
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
    }
    exchange->Start();
  }

  CallEnv* const env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_buffer_;
  CallTag request_tag_{this, kRequest};
  CallTag finish_tag_{this, kFinish};
  CallTag done_tag_{this, kDone};
  std::atomic<int> refs_{1};
  bool accepted_ = false;  // a call arrived (counted in env_->active_calls)
  v1::EmbedRequest request_;
  int64_t start_nanos_ = 0;
  const RouteEntry* route_ = nullptr;  // set before the exchange starts; kept alive by it

  absl::Mutex mu_;
  grpc::ByteBuffer response_buffer_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<EmbedExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnEmbedCall(CallEnv* env) { new EmbedCall(env); }

}  // namespace turnpike
