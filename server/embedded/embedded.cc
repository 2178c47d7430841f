#include "server/embedded/embedded.h"

#include <unistd.h>

#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/bearer_channel.h"
#include "common/status.h"
#include "server/admission/admission.h"
#include "server/admission/gateway_admission.h"
#include "server/config/config_store.h"
#include "server/config/config_watch_client.h"
#include "server/config/health_reporter.h"
#include "server/config/key_use_table.h"
#include "server/config/runtime_config.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/embed_exchange.h"
#include "server/exchange/exchange_handle.h"
#include "server/grpc/call_env.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/telemetry/request_telemetry.h"
#include "server/upstream/upstream_loop.h"
#include "server/usage/usage_recorder.h"
#include "server/usage/usage_shipper.h"
#include "server/usage/usage_spool.h"

namespace turnpike {

namespace {

// One call in flight: what the Core cancels at shutdown and waits for.
class EmbeddedCall {
 public:
  virtual ~EmbeddedCall() = default;
  virtual void Cancel() = 0;
};

}  // namespace

// The assembled data plane: the same components, wired the same way, as turnpike-gateway's main
// (server/main.cc), minus the listeners. Thread-safe as Embedded says.
class Embedded::Core {
 public:
  explicit Core(Options options)
      : options_(std::move(options)),
        resilience_(ResilienceOptions(options_), Clock::Real(), bitgen_),
        telemetry_(/*access_log=*/false, &metrics_) {}

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
    if (health_ != nullptr) health_->Stop();
    if (watch_ != nullptr) watch_->Stop();
    // Every request has ended: its usage record is queued; make it durable (the shipper sends it
    // now, or the next process on this spool directory does).
    if (recorder_ != nullptr) recorder_->Flush();
    if (spool_ != nullptr) spool_->Flush();
    shipper_.reset();
    health_.reset();
    for (auto& loop : loops_) loop->Stop();
    // What the loops still hold (finished exchanges) goes now, while the metrics and sinks the
    // exchanges point to are alive.
    loops_.clear();
    // Every request has settled: give the leases back.
    admission_.admission.reset();
    watch_.reset();
    recorder_.reset();
    spool_.reset();
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
    if (options_.node_id.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      options_.node_id = absl::StrCat("embedded-", host, "-", getpid());
    }
    std::shared_ptr<const RuntimeConfig> file_config;
    if (from_file) {
      absl::StatusOr<config::v1::Snapshot> snapshot = LoadSnapshotFile(options_.config_file);
      if (!snapshot.ok()) return snapshot.status();
      absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
          RuntimeConfig::Build(*snapshot, RuntimeConfig::ProcessEnv(), resilience_);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options_.config_file, ": ", config.status().message()));
      }
      file_config = *std::move(config);
    }
    for (int i = 0; i < options_.upstream_loops; ++i) {
      absl::StatusOr<std::unique_ptr<UpstreamLoop>> loop = UpstreamLoop::Create({});
      if (!loop.ok()) return loop.status();
      loops_.push_back(*std::move(loop));
    }
    admission_ = MakeGatewayAdmission(options_.node_id, !from_file, store_, Clock::Real(),
                                      [this](const std::string& m) { Log(m); });
    std::vector<RequestFinishedSink*> sinks = {&telemetry_, &settler_};
    if (!from_file && !options_.usage_spool_dir.empty()) {
      UsageSpool::Options spool_options;
      spool_options.dir = options_.usage_spool_dir;
      spool_options.commit_interval = options_.usage_commit_interval;
      std::error_code ec;
      const auto parent = std::filesystem::path(spool_options.dir).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      absl::StatusOr<std::unique_ptr<UsageSpool>> spool =
          UsageSpool::Open(spool_options, Clock::Real());
      if (!spool.ok()) return spool.status();
      spool_ = *std::move(spool);
      recorder_ =
          std::make_unique<UsageRecorder>(*spool_, options_.node_id, UsageRecorder::Options());
      sinks.push_back(recorder_.get());
    }
    for (RequestFinishedSink* sink : options_.sinks) sinks.push_back(sink);
    finished_ = std::make_unique<RequestFinishedFanout>(std::move(sinks));
    envs_.resize(loops_.size());
    for (size_t i = 0; i < loops_.size(); ++i) {
      CallEnv& env = envs_[i];
      env.config = &store_;
      env.transport = loops_[i].get();
      env.resilience = &resilience_;
      env.finished = finished_.get();
      env.metrics = &metrics_;
      env.usage = recorder_.get();
      env.admission = admission_.admission.get();
    }
    if (from_file) {
      store_.Set(std::move(file_config));
      return absl::OkStatus();
    }
    return StartWatch();
  }

  absl::Status WaitUntilReady(absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (store_.Get() == nullptr) {
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
  static Resilience::Options ResilienceOptions(const Options& options) {
    Resilience::Options r;
    if (options.log) r.on_event = options.log;
    return r;
  }

  void Log(const std::string& message) const {
    if (options_.log) options_.log(message);
  }

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

  absl::Status StartWatch() {
    ConfigWatchClient::Options options;
    options.target = options_.control_plane;
    options.node_id = options_.node_id;
    options.snapshot_path = options_.snapshot_cache;
    options.build_version = "turnpike-embedded";
    options.credentials = grpc::InsecureChannelCredentials();
    if (!options_.node_token_file.empty()) {
      absl::StatusOr<std::string> token = ReadTokenFile(options_.node_token_file);
      if (!token.ok()) return token.status();
      options.node_token = *std::move(token);
    }
    options.log = [this](absl::LogSeverity severity, const std::string& message) {
      if (severity >= absl::LogSeverity::kWarning) Log(absl::StrCat("config watch: ", message));
    };
    auto apply = [this](const config::v1::Snapshot& snapshot) -> absl::Status {
      absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
          RuntimeConfig::Build(snapshot, RuntimeConfig::ProcessEnv(), resilience_, &key_uses_);
      if (!config.ok()) return config.status();
      store_.Set(*std::move(config));
      absl::MutexLock lock(&mu_);
      config_applied_ = true;
      return absl::OkStatus();
    };
    absl::StatusOr<std::unique_ptr<ConfigWatchClient>> client =
        ConfigWatchClient::Create(std::move(options), apply, Clock::Real(), watch_rng_);
    if (!client.ok()) return client.status();
    watch_ = *std::move(client);
    if (absl::Status cached = watch_->LoadCachedSnapshot();
        !cached.ok() && cached.code() != absl::StatusCode::kNotFound) {
      Log(absl::StrCat("last good snapshot not used: ", cached.message()));
    }
    watch_->Start();
    admission_.control_plane->SetChannel(watch_->channel());
    if (spool_ != nullptr) {
      shipper_ = std::make_unique<UsageShipper>(*spool_, watch_->channel(), UsageShipper::Options(),
                                                Clock::Real());
    }
    absl::StatusOr<std::unique_ptr<HealthReporter>> reporter = HealthReporter::Create(
        {.node_id = watch_->node_id(),
         .interval = options_.health_report_interval,
         .log_failure = {},
         .key_uses = [this] { return key_uses_.Uses(); }},
        watch_->channel(), [this] { return resilience_.Status(); }, Clock::Real());
    if (!reporter.ok()) return reporter.status();
    health_ = *std::move(reporter);
    health_->Start();
    return absl::OkStatus();
  }

  // Constant after Start().
  Options options_;
  absl::BitGen bitgen_;     // Resilience's (drawn under its lock)
  absl::BitGen watch_rng_;  // the watch client's (its thread only)
  Resilience resilience_;
  KeyUseTable key_uses_;
  std::vector<std::unique_ptr<UpstreamLoop>> loops_;
  ConfigStore store_;
  GatewayMetrics metrics_;
  GatewayAdmission admission_;
  AdmissionSettler settler_;
  RequestTelemetry telemetry_;
  std::unique_ptr<UsageSpool> spool_;
  std::unique_ptr<UsageRecorder> recorder_;
  std::unique_ptr<RequestFinishedFanout> finished_;
  std::vector<CallEnv> envs_;
  std::unique_ptr<ConfigWatchClient> watch_;
  std::unique_ptr<UsageShipper> shipper_;
  std::unique_ptr<HealthReporter> health_;

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
    const std::string authorization =
        options.caller_key.empty() ? "" : absl::StrCat("Bearer ", options.caller_key);
    absl::Status status = AdmitCompletionRequest(
        env_,
        [&authorization](const RuntimeConfig&) {
          CallerCredentials c;
          if (!authorization.empty()) c.authorization.emplace_back(authorization);
          return c;
        },
        DeadlineOf(options, r), &request_, &r);
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
    const std::string authorization =
        options.caller_key.empty() ? "" : absl::StrCat("Bearer ", options.caller_key);
    absl::Status status = AdmitEmbedRequest(
        env_,
        [&authorization](const RuntimeConfig&) {
          CallerCredentials c;
          if (!authorization.empty()) c.authorization.emplace_back(authorization);
          return c;
        },
        DeadlineOf(options, r), &request_, &r);
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
  return response;
}

absl::StatusOr<v1::EmbedResponse> Embedded::Embed(v1::EmbedRequest request,
                                                  const CallOptions& options) {
  return std::make_shared<EmbedCall>(core_.get(), std::move(request))->Run(options);
}

int Embedded::in_flight() const { return core_->in_flight(); }

}  // namespace turnpike
