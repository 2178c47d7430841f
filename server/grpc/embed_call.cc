// The asynchronous call of turnpike.v1.EmbeddingService/Embed: it translates the request to the
// attempt driver's (an EmbedExchange, under the same retry, failover and circuit-breaker policy
// as completions) and the driver's answer back.
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "server/exchange/embed_exchange.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/grpc/request_validation.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kFinish = 2, kDone = 3 };

class EmbedCall final : public CallBase {
 public:
  explicit EmbedCall(CallEnv* env) : CallBase(env), responder_(&ctx_) {
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
      case kHeldRefusal:
        AnswerHeldRefusal();
        break;
      case kDone: {
        std::shared_ptr<EmbedExchange> cancel;
        if (ctx_.IsCancelled()) {
          absl::MutexLock lock(&mu_);
          cancelled_ = true;
          if (!exchange_done_) cancel = exchange_;
        }
        if (cancel) cancel->Cancel();
        Unref();
        break;
      }
    }
  }

 private:
  void Finish(const absl::Status& status, const v1::EmbedResponse& response) {
    absl::MutexLock lock(&mu_);
    exchange_done_ = true;
    if (status.ok()) {
      SerializeTo(response, &response_buffer_);
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
    MarkAccepted();
    ExchangeRequest r = BeginCall(RequestMethod::kEmbed, ctx_, *env_->clock);
    if (!env_->shutting_down->load()) SpawnEmbedCall(env_);
    Ref();  // done tag
    absl::Status status = ParseEmbedRequest(request_buffer_, &request_);
    request_buffer_.Clear();
    if (status.ok()) {
      status = AdmitEmbedRequest(
          env_,
          [this](const RuntimeConfig& config) {
            return CallerCredentialsOf(ctx_, config.has_cert_callers());
          },
          DeadlineFromGrpc(ctx_, *env_->clock), &request_, &r);
    }
    if (!status.ok()) {
      EmitRefused(env_->finished, r, status, *env_->clock);
      if (!HoldRefusal(status, [this, status] { Finish(status, {}); })) Finish(status, {});
      return;
    }
    Ref();  // for the admission step, released once it has answered
    AdmitToLimits(env_, &ctx_, std::move(r), EmbedSize(request_),
                  [this](ExchangeRequest admitted, absl::Status s) {
                    if (s.ok()) {
                      StartExchange(std::move(admitted));
                    } else {
                      EmitRefused(env_->finished, admitted, s, *env_->clock);
                      Finish(s, {});
                    }
                    Unref();
                  });
  }

  void StartExchange(ExchangeRequest r) {
    Ref();  // exchange
    auto exchange = EmbedExchange::Create(
        std::move(r), &request_,
        [this](const absl::Status& s, const v1::EmbedResponse& response) {
          Finish(s, response);
          Unref();
        },
        *env_->transport, *env_->resilience, env_->finished, env_->metrics);
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = cancelled_;
    }
    // The client left while the request waited for admission: end it before any upstream work.
    if (gone) exchange->Cancel();
    exchange->Start();
  }

  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_buffer_;
  CallTag request_tag_{this, kRequest};
  CallTag finish_tag_{this, kFinish};
  CallTag done_tag_{this, kDone};
  v1::EmbedRequest request_;

  absl::Mutex mu_;
  grpc::ByteBuffer response_buffer_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // the client left (done tag)
  std::shared_ptr<EmbedExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnEmbedCall(CallEnv* env) { new EmbedCall(env); }

}  // namespace turnpike
