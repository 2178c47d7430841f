// The asynchronous (completion-queue) call of turnpike.v1.ClassificationService/Classify
// (docs/classification.md): it admits the request as a completion on a classification route,
// runs a non-streaming ChatExchange whose replies are checked against the labels (a reply outside
// them fails its attempt, and the driver tries once more), and answers with the labels only. A
// call object lives from its accept until its last CQ operation and its exchange have finished
// (reference counted).
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/classification.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/grpc/request_validation.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kFinish = 2, kDone = 3 };

class ClassifyCall final : public CallBase, public ChatListener {
 public:
  explicit ClassifyCall(CallEnv* env) : CallBase(env), responder_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->classification->RequestClassify(&ctx_, &request_buffer_, &responder_, env_->cq, env_->cq,
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
  void OnText(std::string_view text) override { reply_.text.append(text); }
  // The exchange delivers each call whole (chat_exchange.h).
  void OnToolCall(const ToolCallFragment& fragment) override {
    v1::ToolCall& call = reply_.tool_calls.emplace_back();
    call.set_id(std::string(fragment.id));
    call.set_name(std::string(fragment.name));
    call.set_arguments_json(std::string(fragment.arguments));
  }
  bool Congested() override { return false; }
  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    absl::Status result = status;
    if (result.ok()) {
      // The exchange checked the reply already; a cached answer is read the same way.
      absl::StatusOr<std::vector<std::string>> labels = ReadLabels(request_, reply_);
      if (labels.ok()) {
        for (const std::string& label : *labels) response_.add_labels(label);
        response_.set_label(labels->front());
        *response_.mutable_finish() = finish;
      } else {
        result = labels.status();
      }
    }
    {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
      ExcludedFromOverhead grpc_call(overhead_);
      if (result.ok()) {
        SerializeTo(response_, &response_buffer_);
        responder_.Finish(response_buffer_, grpc::Status::OK, &finish_tag_);
      } else {
        responder_.FinishWithError(ToGrpcStatus(result), &finish_tag_);
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
    exchange_request_ = BeginCall(RequestMethod::kClassify, ctx_, *env_->clock);
    if (!env_->shutting_down->load()) SpawnClassifyCall(env_);
    Ref();  // done tag
    absl::Status status = ParseClassifyRequest(request_buffer_, &request_);
    request_buffer_.Clear();
    if (status.ok()) {
      status = AdmitClassifyRequest(
          env_,
          [this](const RuntimeConfig& config) {
            return CallerCredentialsOf(ctx_, config.has_cert_callers());
          },
          DeadlineFromGrpc(ctx_, *env_->clock), &request_, &plan_, &exchange_request_);
    }
    if (!status.ok()) {
      Refuse(exchange_request_, status);
      return;
    }
    Ref();  // for the admission step, released once it has answered
    AdmitToLimits(env_, &ctx_, std::move(exchange_request_), CompletionSize(plan_->completion),
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
    absl::MutexLock lock(&mu_);
    exchange_done_ = true;
    responder_.FinishWithError(ToGrpcStatus(status), &finish_tag_);
  }

  void StartExchange(ExchangeRequest request) {
    Ref();  // exchange
    auto exchange = ChatExchange::Create(std::move(request), ClassificationChat(request_, *plan_),
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

  v1::ClassifyRequest request_;
  // The completion the classification is served as; the exchange points into it.
  std::unique_ptr<ClassificationPlan> plan_;
  // What the exchange needs; moved into it once the request is admitted.
  ExchangeRequest exchange_request_;
  int64_t accepted_nanos_ = 0;                // for the overhead total
  std::atomic<int64_t>* overhead_ = nullptr;  // the exchange's overhead total, once it exists
  // Written only by the exchange (loop thread), before OnDone.
  ChatResult reply_;
  v1::ClassifyResponse response_;

  absl::Mutex mu_;
  grpc::ByteBuffer response_buffer_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // the client left (done tag)
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnClassifyCall(CallEnv* env) { new ClassifyCall(env); }

}  // namespace turnpike
