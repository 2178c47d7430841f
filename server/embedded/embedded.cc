#include "server/embedded/embedded.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status.h"
#include "server/config/runtime_config.h"
#include "server/embedded/embedded_core.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/embed_exchange.h"
#include "server/exchange/exchange_handle.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"

namespace turnpike {

namespace {

using Core = Embedded::Core;

// The facts of a call known when it starts (as BeginCall for gRPC), and its deadline on the
// gateway's clock.
ExchangeRequest BeginEmbeddedCall(RequestMethod method, const Embedded::CallOptions& options,
                                  Clock& clock) {
  ExchangeRequest r;
  r.method = method;
  r.accepted = clock.MonotonicNow();
  r.accepted_wall = clock.Now();
  if (!options.traceparent.empty()) r.trace_id = TraceIdOf(options.traceparent);
  return r;
}

// The caller key as the gRPC door's metadata would carry it. The credentials it gives view its
// header: keep it for the call's admission.
class KeyCredentials {
 public:
  explicit KeyCredentials(const std::string& key)
      : header_(key.empty() ? "" : absl::StrCat("Bearer ", key)) {}
  CallerCredentials operator()(const RuntimeConfig&) const {
    CallerCredentials c;
    if (!header_.empty()) c.authorization.emplace_back(header_);
    return c;
  }

 private:
  const std::string header_;
};

absl::Time DeadlineOf(const Embedded::CallOptions& options, const ExchangeRequest& r) {
  return options.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                     : r.accepted + options.timeout;
}

absl::Status ShuttingDown() {
  absl::Status status = absl::UnavailableError("the embedded gateway is shutting down");
  AttachReason(status, "SHUTTING_DOWN");
  return status;
}

// The state every call shares: its place in the Core's registry, its exchange (for Cancel,
// server/exchange/exchange_handle.h), and the notification its waiters block on.
template <typename Exchange>
class CallState : public EmbeddedCall {
 public:
  explicit CallState(Core* core) : core_(core) {}

  void Cancel() override { exchange_.Cancel(); }
  void Wait() { done_.WaitForNotification(); }

 protected:
  // Registers the call; false (nothing registered) once the Core is stopping.
  bool Enter(std::shared_ptr<EmbeddedCall> self) {
    env_ = core_->Enter(self);
    if (env_ == nullptr) return false;
    self_ = std::move(self);
    return true;
  }
  void Started(std::shared_ptr<Exchange> exchange) { exchange_.Start(std::move(exchange)); }
  void MarkExchangeDone() { exchange_.Done(); }
  // The call's last act: the Core forgets it (so in_flight() no longer counts it once a waiter
  // wakes), waiters wake, and its self-reference goes (the object may be destroyed when this
  // returns). After Leave the Core may be gone: only the call's own members are touched.
  void Finished() {
    std::shared_ptr<EmbeddedCall> keep = std::move(self_);
    if (keep != nullptr) core_->Leave(this);
    done_.Notify();
  }

  Core* const core_;
  CallEnv* env_ = nullptr;  // set by Enter

 private:
  std::shared_ptr<EmbeddedCall> self_;  // from Enter until Finished
  absl::Notification done_;
  ExchangeHandle<Exchange> exchange_;
};

// A completion, streamed to callbacks (or collected for Complete).
class ChatCall final : public CallState<ChatExchange>,
                       public ChatListener,
                       public Embedded::Stream,
                       public std::enable_shared_from_this<ChatCall> {
 public:
  ChatCall(Core* core, v1::StreamCompletionRequest request, bool stream,
           Embedded::StreamCallbacks callbacks)
      : CallState(core),
        request_(std::move(request)),
        stream_(stream),
        callbacks_(std::move(callbacks)) {}

  void Run(const Embedded::CallOptions& options) {
    ExchangeRequest r =
        BeginEmbeddedCall(stream_ ? RequestMethod::kStreamCompletion : RequestMethod::kComplete,
                          options, core_->clock());
    if (!Enter(shared_from_this())) {
      Done(ShuttingDown(), {});
      return;
    }
    const KeyCredentials credentials(options.caller_key);
    absl::Status status =
        AdmitCompletionRequest(env_, credentials, DeadlineOf(options, r), &request_, &r);
    if (!status.ok()) {
      EmitRefused(env_->finished, r, status, core_->clock());
      Done(status, {});
      return;
    }
    AdmitToLimits(
        env_, [](const std::string&, const std::string&) {}, std::move(r), CompletionSize(request_),
        [this](ExchangeRequest admitted, absl::Status s) {
          if (!s.ok()) {
            EmitRefused(env_->finished, admitted, s, core_->clock());
            Done(s, {});
            return;
          }
          Started(ChatExchange::Create(std::move(admitted), ToChatRequest(request_), stream_, this,
                                       *env_->transport, *env_->resilience, env_->finished,
                                       env_->metrics));
        });
  }

  // Embedded::Stream.
  void Cancel() override { CallState::Cancel(); }
  void Wait() override { CallState::Wait(); }

  // ChatListener (upstream loop thread).
  void OnCommit(const v1::CompletionStart& start) override {
    if (callbacks_.on_start) callbacks_.on_start(start);
  }
  void OnText(std::string_view text) override {
    if (callbacks_.on_text) callbacks_.on_text(text);
  }
  void OnToolCall(const ToolCallFragment& fragment) override {
    if (!callbacks_.on_tool_call) return;
    v1::ToolCallDelta delta;
    delta.set_index(fragment.index);
    delta.set_id(std::string(fragment.id));
    delta.set_name(std::string(fragment.name));
    delta.set_arguments(std::string(fragment.arguments));
    callbacks_.on_tool_call(delta);
  }
  // The callbacks consume the text as it comes: nothing queues here.
  bool Congested() override { return false; }
  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    MarkExchangeDone();
    Done(status, finish);
  }

 private:
  void Done(const absl::Status& status, const v1::CompletionFinish& finish) {
    if (callbacks_.on_done) callbacks_.on_done(status, finish);
    Finished();
  }

  v1::StreamCompletionRequest request_;  // outlives the exchange (it reads the messages)
  const bool stream_;
  const Embedded::StreamCallbacks callbacks_;
};

// Embeddings.
class EmbedCall final : public CallState<EmbedExchange>,
                        public std::enable_shared_from_this<EmbedCall> {
 public:
  EmbedCall(Core* core, v1::EmbedRequest request) : CallState(core), request_(std::move(request)) {}

  // Runs the call and waits for its answer.
  absl::StatusOr<v1::EmbedResponse> Run(const Embedded::CallOptions& options) {
    ExchangeRequest r = BeginEmbeddedCall(RequestMethod::kEmbed, options, core_->clock());
    if (!Enter(shared_from_this())) return ShuttingDown();
    const KeyCredentials credentials(options.caller_key);
    absl::Status status =
        AdmitEmbedRequest(env_, credentials, DeadlineOf(options, r), &request_, &r);
    if (!status.ok()) {
      EmitRefused(env_->finished, r, status, core_->clock());
      Finished();
      return status;
    }
    AdmitToLimits(
        env_, [](const std::string&, const std::string&) {}, std::move(r), EmbedSize(request_),
        [this](ExchangeRequest admitted, absl::Status s) {
          if (!s.ok()) {
            EmitRefused(env_->finished, admitted, s, core_->clock());
            Answer(s, {});
            return;
          }
          Started(EmbedExchange::Create(
              std::move(admitted), &request_,
              [this](const absl::Status& result, const v1::EmbedResponse& response) {
                MarkExchangeDone();
                Answer(result, response);
              },
              *env_->transport, *env_->resilience, env_->finished, env_->metrics));
        });
    Wait();
    return std::move(answer_);
  }

 private:
  void Answer(const absl::Status& status, const v1::EmbedResponse& response) {
    if (status.ok()) {
      answer_ = response;
    } else {
      answer_ = status;
    }
    Finished();
  }

  v1::EmbedRequest request_;  // outlives the exchange
  // Written once before Finished(), read after Wait().
  absl::StatusOr<v1::EmbedResponse> answer_ = absl::UnknownError("no answer");
};

}  // namespace

Embedded::Embedded(std::unique_ptr<Core> core) : core_(std::move(core)) {}
Embedded::~Embedded() = default;

absl::StatusOr<std::unique_ptr<Embedded>> Embedded::Create(Options options) {
  auto core = std::make_unique<Core>(std::move(options));
  if (absl::Status s = core->Start(); !s.ok()) return s;
  return std::unique_ptr<Embedded>(new Embedded(std::move(core)));
}

absl::Status Embedded::WaitUntilReady(absl::Duration timeout) {
  return core_->WaitUntilReady(timeout);
}

std::unique_ptr<Embedded::Stream> Embedded::StreamCompletion(v1::StreamCompletionRequest request,
                                                             const CallOptions& options,
                                                             StreamCallbacks callbacks) {
  auto call =
      std::make_shared<ChatCall>(core_.get(), std::move(request), true, std::move(callbacks));
  call->Run(options);
  // The handle shares the call: it stays valid after the call has ended.
  class Handle final : public Stream {
   public:
    explicit Handle(std::shared_ptr<ChatCall> call) : call_(std::move(call)) {}
    void Cancel() override { call_->Cancel(); }
    void Wait() override { call_->Wait(); }

   private:
    const std::shared_ptr<ChatCall> call_;
  };
  return std::make_unique<Handle>(std::move(call));
}

absl::StatusOr<v1::CompleteResponse> Embedded::Complete(const v1::CompleteRequest& request,
                                                        const CallOptions& options) {
  // The two requests share their fields' numbers: the gRPC door parses both into this one too.
  v1::StreamCompletionRequest stream_request;
  if (!stream_request.ParseFromString(request.SerializeAsString())) {
    return absl::InternalError("CompleteRequest did not convert");
  }
  v1::CompleteResponse response;
  absl::Status status;
  StreamCallbacks callbacks;
  // The call's callbacks run one after another on one thread, and Wait() orders them before the
  // reads below.
  callbacks.on_start = [&response](const v1::CompletionStart& start) {
    *response.mutable_start() = start;
  };
  callbacks.on_text = [&response](std::string_view text) { response.mutable_text()->append(text); };
  ToolCallAssembler tool_calls;
  callbacks.on_tool_call = [&tool_calls](const v1::ToolCallDelta& d) {
    tool_calls.Add(ToolCallFragment{d.index(), d.id(), d.name(), d.arguments()});
  };
  callbacks.on_done = [&response, &status](const absl::Status& s,
                                           const v1::CompletionFinish& finish) {
    status = s;
    if (s.ok()) *response.mutable_finish() = finish;
  };
  auto call = std::make_shared<ChatCall>(core_.get(), std::move(stream_request), false,
                                         std::move(callbacks));
  call->Run(options);
  call->Wait();
  if (!status.ok()) return status;
  for (const v1::ToolCall& c : tool_calls.calls()) *response.add_tool_calls() = c;
  return response;
}

absl::StatusOr<v1::EmbedResponse> Embedded::Embed(v1::EmbedRequest request,
                                                  const CallOptions& options) {
  return std::make_shared<EmbedCall>(core_.get(), std::move(request))->Run(options);
}

int Embedded::in_flight() const { return core_->in_flight(); }

}  // namespace turnpike
