// The asynchronous (completion-queue) call of turnpike.v1.CompletionService/StreamCompletion:
// it admits the request, starts a streaming ChatExchange, and writes the exchange's events to
// the client one message at a time. A call object lives from its accept until its last CQ
// operation and its exchange have finished (reference counted). Exchange events arrive on the
// transport thread and are queued under mu_ (OutboundQueue: coalescing and backpressure); gRPC
// writes are started from whichever thread has the next message, one at a time.
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "server/exchange/chat_exchange.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/grpc/outbound_queue.h"

namespace turnpike {
namespace {

enum TagKind { kRequest = 0, kWrite = 1, kFinish = 2, kDone = 3 };

class StreamCall final : public CallBase, public ChatListener {
 public:
  explicit StreamCall(CallEnv* env) : CallBase(env), responder_(&ctx_) {
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
      case kHeldRefusal:
        AnswerHeldRefusal();
        break;
    }
  }

  // ChatListener (loop thread).
  void OnCommit(const v1::CompletionStart& start) override {
    absl::MutexLock lock(&mu_);
    queue_.PushStart(start);
    Pump();
  }

  void OnText(std::string_view text) override {
    absl::MutexLock lock(&mu_);
    if (broken_) return;
    queue_.PushText(text);
    Pump();
  }

  void OnToolCall(const ToolCallFragment& fragment) override {
    absl::MutexLock lock(&mu_);
    if (broken_) return;
    queue_.PushToolCall(fragment.index, fragment.id, fragment.name, fragment.arguments);
    Pump();
  }

  bool Congested() override {
    absl::MutexLock lock(&mu_);
    return queue_.Congested();
  }

  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) {
        queue_.PushFinish(finish);
      }
      final_status_ = ToGrpcStatus(status);
      has_final_ = true;
      exchange_done_ = true;
      Pump();
    }
    Unref();  // the exchange's reference
  }

 private:
  void OnRequest(bool ok) {
    if (!ok) {  // server shutting down before a call arrived
      delete this;
      return;
    }
    MarkAccepted();
    accepted_nanos_ = OverheadNowNanos();
    exchange_request_ = BeginCall(RequestMethod::kStreamCompletion, ctx_, *env_->clock);
    if (!env_->shutting_down->load()) SpawnStreamCompletionCall(env_);
    Ref();  // for the done tag; refs_ is now 2 (active + done)
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
    if (HoldRefusal(status, [this, status] { Answer(status); })) {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
      return;
    }
    Answer(status);
  }

  void Answer(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    final_status_ = ToGrpcStatus(status);
    has_final_ = true;
    exchange_done_ = true;
    Pump();
  }

  void StartExchange(ExchangeRequest request) {
    Ref();  // for the exchange, released in OnDone
    auto exchange = ChatExchange::Create(std::move(request), ToChatRequest(request_),
                                         /*stream=*/true, this, *env_->transport, *env_->resilience,
                                         env_->finished, env_->metrics);
    overhead_ = exchange->overhead();
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = broken_;
    }
    // The client left while the request waited for admission: end it before any upstream work.
    if (gone) exchange->Cancel();
    exchange->Start();
    overhead_->fetch_add(OverheadNowNanos() - accepted_nanos_, std::memory_order_relaxed);
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
        queue_.Clear();
        if (!exchange_done_) cancel = exchange_;
      } else if (queue_.ResumeDue() && !exchange_done_) {
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
    if (broken_) queue_.Clear();
    if (!queue_.empty()) {
      SerializeTo(queue_.Pop(), &write_buffer_);
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

  grpc::ServerAsyncWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_buffer_;
  CallTag request_tag_{this, kRequest};
  CallTag write_tag_{this, kWrite};
  CallTag finish_tag_{this, kFinish};
  CallTag done_tag_{this, kDone};

  // Set on the CQ thread before the exchange starts; read-only afterwards.
  v1::StreamCompletionRequest request_;
  // What the exchange needs; moved into it once the request is admitted.
  ExchangeRequest exchange_request_;
  int64_t accepted_nanos_ = 0;  // for the overhead total
  // The exchange's overhead total (null before it exists); CQ-thread work adds to it.
  std::atomic<int64_t>* overhead_ = nullptr;

  absl::Mutex mu_;
  OutboundQueue queue_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer write_buffer_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool has_final_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnStreamCompletionCall(CallEnv* env) { new StreamCall(env); }

}  // namespace turnpike
