// The asynchronous (completion-queue) call of turnpike.v1.CompletionService/Complete: it admits
// the request, runs a non-streaming ChatExchange and answers once. A call object lives from its
// accept until its last CQ operation and its exchange have finished (reference counted).
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "server/exchange/chat_exchange.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kFinish = 2, kDone = 3 };

class CompleteCall final : public CallBase, public ChatListener {
 public:
  explicit CompleteCall(CallEnv* env) : CallBase(env), responder_(&ctx_) {
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
      case kHeldRefusal:
        AnswerHeldRefusal();
        break;
    }
  }

  void OnCommit(const v1::CompletionStart& start) override { *response_.mutable_start() = start; }
  void OnText(std::string_view text) override { response_.mutable_text()->append(text); }
  // The exchange delivers each call whole (chat_exchange.h).
  void OnToolCall(const ToolCallFragment& fragment) override {
    v1::ToolCall* call = response_.add_tool_calls();
    call->set_id(std::string(fragment.id));
    call->set_name(std::string(fragment.name));
    call->set_arguments_json(std::string(fragment.arguments));
  }
  bool Congested() override { return false; }
  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
      if (status.ok()) {
        *response_.mutable_finish() = finish;
        SerializeTo(response_, &response_buffer_);
        ExcludedFromOverhead grpc_call(overhead_);
        responder_.Finish(response_buffer_, grpc::Status::OK, &finish_tag_);
      } else {
        ExcludedFromOverhead grpc_call(overhead_);
        responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
      }
    }
    Unref();
  }

 private:
  void OnRequest(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    MarkAccepted();
    accepted_nanos_ = OverheadNowNanos();
    exchange_request_ = BeginCall(RequestMethod::kComplete, ctx_, *env_->clock);
    if (!env_->shutting_down->load()) SpawnCompleteCall(env_);
    Ref();  // done tag
    absl::Status status =
        AdmitCompletion(env_, request_buffer_, ctx_, &request_, &exchange_request_);
    request_buffer_.Clear();
    if (!status.ok()) {
      Refuse(exchange_request_, status);
      return;
    }
    Ref();  // for the admission step, released once it has answered
    AdmitToLimits(env_, &ctx_, std::move(exchange_request_), CompletionSize(request_),
                  [this](ExchangeRequest admitted, absl::Status s) {
                    if (s.ok()) {
                      StartExchange(std::move(admitted));
                    } else {
                      Refuse(admitted, s);
                    }
                    Unref();
                  });
  }

  void Refuse(const ExchangeRequest& request, const absl::Status& status) {
    EmitRefused(env_->finished, request, status, *env_->clock);
    {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
    }
    if (HoldRefusal(status, [this, status] { Answer(status); })) return;
    Answer(status);
  }

  void Answer(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
  }

  void StartExchange(ExchangeRequest request) {
    Ref();  // exchange
    auto exchange = ChatExchange::Create(std::move(request), ToChatRequest(request_),
                                         /*stream=*/false, this, *env_->transport,
                                         *env_->resilience, env_->finished, env_->metrics);
    overhead_ = exchange->overhead();
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = cancelled_;
    }
    // The client left while the request waited for admission: end it before any upstream work.
    if (gone) exchange->Cancel();
    exchange->Start();
    overhead_->fetch_add(OverheadNowNanos() - accepted_nanos_, std::memory_order_relaxed);
  }

  void OnCallDone() {
    std::shared_ptr<ChatExchange> cancel;
    if (ctx_.IsCancelled()) {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!exchange_done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
    Unref();
  }

  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_buffer_;
  CallTag request_tag_{this, kRequest};
  CallTag finish_tag_{this, kFinish};
  CallTag done_tag_{this, kDone};

  v1::StreamCompletionRequest request_;
  // What the exchange needs; moved into it once the request is admitted.
  ExchangeRequest exchange_request_;
  int64_t accepted_nanos_ = 0;                // for the overhead total
  std::atomic<int64_t>* overhead_ = nullptr;  // the exchange's overhead total, once it exists
  // Written only by the exchange (loop thread), before OnDone.
  v1::CompleteResponse response_;

  absl::Mutex mu_;
  grpc::ByteBuffer response_buffer_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // the client left (done tag)
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnCompleteCall(CallEnv* env) { new CompleteCall(env); }

}  // namespace turnpike
