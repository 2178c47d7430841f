// The asynchronous (completion-queue) calls of turnpike.v1.CompletionService. A call object
// lives from its accept until its last CQ operation and its ChatExchange have finished
// (reference counted). Upstream events arrive on the loop thread and are queued under mu_; gRPC
// writes are started from whichever thread has the next message, one at a time.
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "server/exchange/chat_exchange.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_env.h"
#include "server/grpc/request_validation.h"
#include "spdlog/spdlog.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kWrite = 1, kFinish = 2, kDone = 3 };

// Coalesced text above this many bytes pauses the upstream until the client reads.
constexpr size_t kHighWaterBytes = 64 << 10;
constexpr size_t kLowWaterBytes = 16 << 10;

absl::Time Monotonic() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

absl::Time DeadlineOf(const grpc::ServerContext& ctx) {
  const auto deadline = ctx.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return Monotonic() + absl::FromChrono(deadline - std::chrono::system_clock::now());
}

void Serialize(const google::protobuf::Message& message, grpc::ByteBuffer* out) {
  out->Clear();  // the serializer requires an empty buffer; ours are reused per write
  bool own;
  grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(message, out, &own);
}

ChatRequest ToChatRequest(const v1::StreamCompletionRequest& r) {
  ChatRequest c;
  c.messages = &r.messages();
  c.request_id = r.request_id();
  if (r.has_max_tokens()) c.max_tokens = r.max_tokens();
  if (r.has_temperature()) c.temperature = r.temperature();
  if (r.has_top_p()) c.top_p = r.top_p();
  c.stop.assign(r.stop().begin(), r.stop().end());
  c.user = r.user();
  return c;
}

void LogAccess(const char* method, const v1::StreamCompletionRequest& request,
               const std::string& caller, const v1::CompletionStart& start,
               const absl::Status& status, const v1::CompletionFinish& finish,
               absl::Duration latency) {
  spdlog::info(
      "access method={} request_id={} capability={} caller={} provider={} model={} status={} "
      "input_tokens={} output_tokens={} cost_usd_micros={} attempts={} latency_ms={:.3f}",
      method, request.request_id(), request.capability(), caller.empty() ? "-" : caller,
      start.provider().empty() ? "-" : start.provider(),
      start.model().empty() ? "-" : start.model(), absl::StatusCodeToString(status.code()),
      finish.usage().input_tokens(), finish.usage().output_tokens(),
      finish.usage().cost_usd_micros(), finish.attempts_size(),
      absl::ToDoubleMilliseconds(latency));
}

// Counts a finished request in the gateway's metrics (no-op without metrics).
void RecordRequest(CallEnv* env, GatewayMetrics::Method method, const Authorization& auth,
                   const absl::Status& status, int64_t start_nanos) {
  if (env->metrics == nullptr) return;
  env->metrics->RecordRequest(method, auth.route != nullptr ? auth.route->capability : "",
                              status.code(), MonotonicNanos() - start_nanos);
}

// Counts a request refused before any upstream work (parse, validation, authorization): all of
// its time was the gateway's own.
void RecordRejected(CallEnv* env, GatewayMetrics::Method method, const Authorization& auth,
                    const absl::Status& status, int64_t start_nanos) {
  RecordRequest(env, method, auth, status, start_nanos);
  if (env->metrics != nullptr) env->metrics->RecordOverhead(method, MonotonicNanos() - start_nanos);
}

// Shared front half of both completion methods: parse, validate, authorize.
absl::Status Admit(CallEnv* env, const grpc::ByteBuffer& buffer, const grpc::ServerContext& ctx,
                   v1::StreamCompletionRequest* request,
                   std::shared_ptr<const RuntimeConfig>* config, Authorization* auth) {
  if (absl::Status s = ParseCompletionRequest(buffer, request); !s.ok()) return s;
  if (absl::Status s = ValidateCompletionRequest(*request); !s.ok()) return s;
  if (request->request_id().empty()) request->set_request_id(NewRequestId());
  *config = env->config->Get();
  if (*config == nullptr) {
    absl::Status status = absl::UnavailableError("gateway has no configuration yet");
    AttachReason(status, "NOT_READY");
    return status;
  }
  absl::StatusOr<Authorization> authorized = Authorize(**config, ctx, request->capability());
  if (!authorized.ok()) return authorized.status();
  *auth = *std::move(authorized);
  return absl::OkStatus();
}

class StreamCall final : public CallBase, public ChatListener {
 public:
  explicit StreamCall(CallEnv* env) : env_(env), responder_(&ctx_) {
    env_->live_calls->fetch_add(1);
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->completion->RequestStreamCompletion(&ctx_, &request_buffer_, &responder_, env_->cq,
                                              env_->cq, &request_tag_);
  }

  void Proceed(int kind, bool ok) override {
    switch (kind) {
      case kRequest:
        OnRequest(ok);
        break;
      case kWrite:
        OnWriteDone(ok);
        break;
      case kFinish:
        Unref();
        break;
      case kDone:
        OnCallDone();
        break;
    }
  }

  // ChatListener (loop thread).
  void OnCommit(const v1::CompletionStart& start) override {
    absl::MutexLock lock(&mu_);
    start_ = start;
    queue_.emplace_back();
    *queue_.back().mutable_start() = start;
    Pump();
  }

  void OnText(std::string_view text) override {
    if (!first_text_ && env_->metrics != nullptr) {
      env_->metrics->RecordTimeToFirstToken(MonotonicNanos() - start_nanos_);
    }
    first_text_ = true;
    absl::MutexLock lock(&mu_);
    if (broken_) return;
    // Text that arrives while a write is in flight joins the pending delta: a slow reader gets
    // fewer, larger deltas instead of an unbounded queue.
    if (!queue_.empty() && queue_.back().has_delta()) {
      queue_.back().mutable_delta()->mutable_text()->append(text);
    } else {
      queue_.emplace_back();
      queue_.back().mutable_delta()->set_text(std::string(text));
    }
    queued_bytes_ += text.size();
    Pump();
  }

  bool Congested() override {
    absl::MutexLock lock(&mu_);
    if (queued_bytes_ > kHighWaterBytes) upstream_paused_ = true;
    return upstream_paused_;
  }

  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) {
        queue_.emplace_back();
        *queue_.back().mutable_finish() = finish;
      }
      final_status_ = ToGrpcStatus(status);
      has_final_ = true;
      exchange_done_ = true;
      Pump();
    }
    if (env_->access_log) {
      LogAccess("StreamCompletion", request_, auth_.caller, start_, status, finish,
                absl::Nanoseconds(MonotonicNanos() - start_nanos_));
    }
    RecordRequest(env_, GatewayMetrics::Method::kStreamCompletion, auth_, status, start_nanos_);
    Unref();  // the exchange's reference
  }

  ~StreamCall() override {
    if (accepted_) env_->active_calls->fetch_sub(1);
    env_->live_calls->fetch_sub(1);
  }

 private:
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void OnRequest(bool ok) {
    if (!ok) {  // server shutting down before a call arrived
      delete this;
      return;
    }
    accepted_ = true;
    env_->active_calls->fetch_add(1);
    start_nanos_ = MonotonicNanos();
    if (!env_->shutting_down->load()) SpawnStreamCompletionCall(env_);
    Ref();  // for the done tag; refs_ is now 2 (active + done)
    std::shared_ptr<const RuntimeConfig> config;
    absl::Status status = Admit(env_, request_buffer_, ctx_, &request_, &config, &auth_);
    request_buffer_.Clear();
    if (!status.ok()) {
      if (env_->access_log) {
        LogAccess("StreamCompletion", request_, auth_.caller, start_, status, {},
                  absl::Nanoseconds(MonotonicNanos() - start_nanos_));
      }
      RecordRejected(env_, GatewayMetrics::Method::kStreamCompletion, auth_, status, start_nanos_);
      absl::MutexLock lock(&mu_);
      final_status_ = ToGrpcStatus(status);
      has_final_ = true;
      exchange_done_ = true;
      Pump();
      return;
    }
    Ref();  // for the exchange, released in OnDone
    auto exchange = std::make_shared<ChatExchange>(
        std::move(config), auth_.route, ToChatRequest(request_), /*stream=*/true, *env_->loop,
        *env_->resilience, this, DeadlineOf(ctx_), env_->metrics);
    overhead_ = exchange->overhead();
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
    }
    exchange->Start();
    overhead_->fetch_add(MonotonicNanos() - start_nanos_, std::memory_order_relaxed);
  }

  void OnWriteDone(bool ok) {
    std::shared_ptr<ChatExchange> cancel;
    std::shared_ptr<ChatExchange> resume;
    {
      // Writes happen only after the exchange exists; it outlives this scope (exchange_ holds it).
      ScopedOverhead overhead(overhead_);
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!ok) {
        broken_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        if (!exchange_done_) cancel = exchange_;
      } else if (upstream_paused_ && queued_bytes_ <= kLowWaterBytes && !exchange_done_) {
        upstream_paused_ = false;
        resume = exchange_;
      }
      Pump();
    }
    if (cancel) cancel->Cancel();
    if (resume) resume->Resume();
    Unref();  // the write's reference
  }

  void OnCallDone() {
    std::shared_ptr<ChatExchange> cancel;
    if (ctx_.IsCancelled()) {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      if (!exchange_done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
    Unref();  // the done tag's reference
  }

  // Starts the next write or the finish, if none is in flight. Requires mu_.
  void Pump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_in_flight_ || finish_sent_) return;
    if (broken_) {
      queue_.clear();
      queued_bytes_ = 0;
    }
    if (!queue_.empty()) {
      Serialize(queue_.front(), &write_buffer_);
      if (queue_.front().has_delta()) queued_bytes_ = 0;
      queue_.pop_front();
      ExcludedFromOverhead grpc_call(overhead_);
      if (queue_.empty() && has_final_) {
        finish_sent_ = true;
        responder_.WriteAndFinish(write_buffer_, grpc::WriteOptions(), final_status_, &finish_tag_);
        return;
      }
      write_in_flight_ = true;
      Ref();
      responder_.Write(write_buffer_, &write_tag_);
      return;
    }
    if (has_final_) {
      finish_sent_ = true;
      ExcludedFromOverhead grpc_call(overhead_);
      responder_.Finish(final_status_, &finish_tag_);
    }
  }

  CallEnv* const env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_buffer_;
  CallTag request_tag_{this, kRequest};
  CallTag write_tag_{this, kWrite};
  CallTag finish_tag_{this, kFinish};
  CallTag done_tag_{this, kDone};
  std::atomic<int> refs_{1};
  bool accepted_ = false;  // a call arrived (counted in env_->active_calls)

  // Set on the CQ thread before the exchange starts; read-only afterwards.
  v1::StreamCompletionRequest request_;
  Authorization auth_;
  int64_t start_nanos_ = 0;
  // The exchange's overhead total (null before it exists); CQ-thread work adds to it.
  std::atomic<int64_t>* overhead_ = nullptr;
  bool first_text_ = false;  // loop thread only

  absl::Mutex mu_;
  std::deque<v1::StreamCompletionResponse> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ByteBuffer write_buffer_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool has_final_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool upstream_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
  v1::CompletionStart start_;  // written once in OnCommit before any OnDone
};

class CompleteCall final : public CallBase, public ChatListener {
 public:
  explicit CompleteCall(CallEnv* env) : env_(env), responder_(&ctx_) {
    env_->live_calls->fetch_add(1);
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->completion->RequestComplete(&ctx_, &request_buffer_, &responder_, env_->cq, env_->cq,
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
      case kDone:
        OnCallDone();
        break;
    }
  }

  void OnCommit(const v1::CompletionStart& start) override { *response_.mutable_start() = start; }
  void OnText(std::string_view text) override { response_.mutable_text()->append(text); }
  bool Congested() override { return false; }
  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    if (env_->access_log) {
      LogAccess("Complete", request_, auth_.caller, response_.start(), status, finish,
                absl::Nanoseconds(MonotonicNanos() - start_nanos_));
    }
    RecordRequest(env_, GatewayMetrics::Method::kComplete, auth_, status, start_nanos_);
    {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
      if (status.ok()) {
        *response_.mutable_finish() = finish;
        Serialize(response_, &response_buffer_);
        ExcludedFromOverhead grpc_call(overhead_);
        responder_.Finish(response_buffer_, grpc::Status::OK, &finish_tag_);
      } else {
        ExcludedFromOverhead grpc_call(overhead_);
        responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
      }
    }
    Unref();
  }

  ~CompleteCall() override {
    if (accepted_) env_->active_calls->fetch_sub(1);
    env_->live_calls->fetch_sub(1);
  }

 private:
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void OnRequest(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    accepted_ = true;
    env_->active_calls->fetch_add(1);
    start_nanos_ = MonotonicNanos();
    if (!env_->shutting_down->load()) SpawnCompleteCall(env_);
    Ref();  // done tag
    std::shared_ptr<const RuntimeConfig> config;
    absl::Status status = Admit(env_, request_buffer_, ctx_, &request_, &config, &auth_);
    request_buffer_.Clear();
    if (!status.ok()) {
      if (env_->access_log) {
        LogAccess("Complete", request_, auth_.caller, {}, status, {},
                  absl::Nanoseconds(MonotonicNanos() - start_nanos_));
      }
      RecordRejected(env_, GatewayMetrics::Method::kComplete, auth_, status, start_nanos_);
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
      responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
      return;
    }
    Ref();  // exchange
    auto exchange = std::make_shared<ChatExchange>(
        std::move(config), auth_.route, ToChatRequest(request_), /*stream=*/false, *env_->loop,
        *env_->resilience, this, DeadlineOf(ctx_), env_->metrics);
    overhead_ = exchange->overhead();
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
    }
    exchange->Start();
    overhead_->fetch_add(MonotonicNanos() - start_nanos_, std::memory_order_relaxed);
  }

  void OnCallDone() {
    std::shared_ptr<ChatExchange> cancel;
    if (ctx_.IsCancelled()) {
      absl::MutexLock lock(&mu_);
      if (!exchange_done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
    Unref();
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

  v1::StreamCompletionRequest request_;
  Authorization auth_;
  int64_t start_nanos_ = 0;
  std::atomic<int64_t>* overhead_ = nullptr;  // the exchange's overhead total, once it exists
  // Written only by the exchange (loop thread), before OnDone.
  v1::CompleteResponse response_;

  absl::Mutex mu_;
  grpc::ByteBuffer response_buffer_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnStreamCompletionCall(CallEnv* env) { new StreamCall(env); }
void SpawnCompleteCall(CallEnv* env) { new CompleteCall(env); }

}  // namespace turnpike
