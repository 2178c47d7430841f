#include "server/embedded/embedded.h"

#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/status.h"
#include "server/admission/admission.h"
#include "server/config/runtime_config.h"
#include "server/core/gateway_core.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/embed_exchange.h"
#include "server/exchange/exchange_handle.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {

namespace {

// One call in flight: what the Core cancels at shutdown and waits for.
class EmbeddedCall {
 public:
  virtual ~EmbeddedCall() = default;
  virtual void Cancel() = 0;
};

}  // namespace

// The library's side of the core (server/core/gateway_core.h, the components turnpike-gateway's
// doors use): the calls in flight, and one call environment per upstream loop. Thread-safe as
// Embedded says.
class Embedded::Core {
 public:
  explicit Core(Options options) : options_(std::move(options)) {}

  ~Core() {
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
      mu_.AwaitWithTimeout(absl::Condition(this, &Core::Idle), options_.drain_timeout);
    }
    CancelAll();
    {
      absl::MutexLock lock(&mu_);
      // Cancelled exchanges still end through the driver (their on_done runs).
      mu_.AwaitWithTimeout(absl::Condition(this, &Core::Idle), absl::Seconds(30));
    }
    if (gateway_ == nullptr) return;
    gateway_->StopWatching();
    // Makes the usage records durable, stops the loops (what they hold goes while the metrics
    // and sinks are alive) and gives the leases back.
    gateway_->Shutdown();
  }

  absl::Status Start() {
    const bool from_file = !options_.config_file.empty();
    if (from_file == !options_.control_plane.empty()) {
      return absl::InvalidArgumentError(
          "Embedded needs exactly one of Options::config_file and Options::control_plane");
    }
    if (options_.upstream_loops < 1) {
      return absl::InvalidArgumentError("Options::upstream_loops must be at least 1");
    }
    GatewayCore::Options core;
    core.config_file = options_.config_file;
    core.control_plane = options_.control_plane;
    core.node_id = options_.node_id;
    if (core.node_id.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      core.node_id = absl::StrCat("embedded-", host, "-", getpid());
    }
    core.node_token_file = options_.node_token_file;
    core.snapshot_cache = options_.snapshot_cache;
    core.build_version = "turnpike-embedded";
    core.health_report_interval = options_.health_report_interval;
    core.usage_spool_dir = options_.usage_spool_dir;
    core.usage_commit_interval = options_.usage_commit_interval;
    core.upstream_loops = options_.upstream_loops;
    core.access_log = false;
    core.sinks = options_.sinks;
    // The application hears the warnings and errors of the library's threads.
    if (options_.log) {
      core.log = [log = options_.log](GatewayCore::LogLevel level, const std::string& message) {
        if (level >= GatewayCore::LogLevel::kWarning) log(message);
      };
    }
    absl::StatusOr<std::unique_ptr<GatewayCore>> gateway = GatewayCore::Create(std::move(core));
    if (!gateway.ok()) return gateway.status();
    gateway_ = *std::move(gateway);
    const std::vector<UpstreamLoop*> loops = gateway_->loops();
    envs_.resize(loops.size());
    for (size_t i = 0; i < loops.size(); ++i) {
      CallEnv& env = envs_[i];
      env.config = &gateway_->store();
      env.transport = loops[i];
      env.resilience = &gateway_->resilience();
      env.finished = gateway_->finished();
      env.metrics = &gateway_->metrics();
      env.usage = gateway_->usage();
      env.admission = gateway_->admission();
    }
    return gateway_->Start([this](const std::string&) {
      absl::MutexLock lock(&mu_);
      config_applied_ = true;
    });
  }

  absl::Status WaitUntilReady(absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (gateway_->store().Get() == nullptr) {
      if (mu_.AwaitWithDeadline(absl::Condition(&config_applied_), until)) break;
      if (absl::Now() >= until) {
        return absl::UnavailableError(absl::StrCat("no configuration from the control plane ",
                                                   options_.control_plane, " within ",
                                                   absl::FormatDuration(timeout)));
      }
    }
    return absl::OkStatus();
  }

  // A call enters: nullptr (UNAVAILABLE) once the Core is stopping. Else the environment of the
  // loop it runs on.
  CallEnv* Enter(const std::shared_ptr<EmbeddedCall>& call) {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return nullptr;
    calls_[call.get()] = call;
    return &envs_[next_env_++ % envs_.size()];
  }
  void Leave(EmbeddedCall* call) {
    absl::MutexLock lock(&mu_);
    calls_.erase(call);
  }
  int in_flight() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(calls_.size());
  }
  Clock& clock() { return Clock::Real(); }

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); }

  void CancelAll() {
    std::vector<std::shared_ptr<EmbeddedCall>> live;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [raw, weak] : calls_) {
        if (std::shared_ptr<EmbeddedCall> call = weak.lock()) live.push_back(std::move(call));
      }
    }
    for (const auto& call : live) call->Cancel();
  }

  // Constant after Start().
  const Options options_;
  std::unique_ptr<GatewayCore> gateway_;
  std::vector<CallEnv> envs_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool config_applied_ ABSL_GUARDED_BY(mu_) = false;
  size_t next_env_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<EmbeddedCall*, std::weak_ptr<EmbeddedCall>> calls_ ABSL_GUARDED_BY(mu_);
};

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
