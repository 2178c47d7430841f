#include "server/grpc/gateway_server.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/server_drain.h"
#include "common/thread_name.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace turnpike {
namespace {

void PollQueue(grpc::ServerCompletionQueue* cq) {
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
    auto* call_tag = static_cast<CallTag*>(tag);
    call_tag->call->Proceed(call_tag->kind, ok);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<GatewayServer>> GatewayServer::Start(
    Options options, ConfigStore& config, std::vector<UpstreamLoop*> loops) {
  if (options.resilience == nullptr) {
    return absl::InvalidArgumentError("GatewayServer::Options::resilience is required");
  }
  if (loops.empty()) return absl::InvalidArgumentError("GatewayServer needs an upstream loop");
  std::unique_ptr<GatewayServer> server(new GatewayServer());
  server->clock_ = options.clock;
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Health is served on the completion queues (health_service.h), never by gRPC's default
  // service, even where another server in the process turned that on.
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.AddListeningPort(
      options.listen,
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      &server->port_);
  builder.RegisterService(&server->completion_);
  builder.RegisterService(&server->embedding_);
  builder.RegisterService(&server->classification_);
  builder.RegisterService(&server->health_);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  // Small replies and long streams: keep latency low rather than batching.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const int threads = options.threads > 0 ? options.threads : DefaultThreads();
  for (int i = 0; i < threads; ++i) server->cqs_.push_back(builder.AddCompletionQueue());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (address in use or invalid?)"));
  }
  if (!absl::StartsWith(options.listen, "unix:") && server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  server->SetServing(false);
  RequestFinishedSink* finished = options.finished;
  if (finished == nullptr) {
    server->own_finished_ = std::make_unique<RequestTelemetry>(options.access_log, options.metrics);
    finished = server->own_finished_.get();
  }
  for (size_t q = 0; q < server->cqs_.size(); ++q) {
    auto& cq = server->cqs_[q];
    auto env = std::make_unique<CallEnv>();
    env->completion = &server->completion_;
    env->embedding = &server->embedding_;
    env->classification = &server->classification_;
    env->health = &server->health_;
    env->cq = cq.get();
    env->config = &config;
    env->transport = loops[q % loops.size()];
    env->metrics = options.metrics;
    env->resilience = options.resilience;
    env->shutting_down = &server->shutting_down_;
    env->live_calls = &server->live_calls_;
    env->active_calls = &server->active_calls_;
    env->finished = finished;
    env->clock = options.clock;
    env->usage = options.usage;
    env->admission = options.admission;
    env->auth_throttle = options.auth_throttle;
    for (int i = 0; i < options.accepts_per_queue; ++i) {
      SpawnStreamCompletionCall(env.get());
      SpawnCompleteCall(env.get());
      SpawnEmbedCall(env.get());
      SpawnClassifyCall(env.get());
    }
    SpawnHealthCheckCall(env.get());
    SpawnHealthWatchCall(env.get());
    server->envs_.push_back(std::move(env));
  }
  for (auto& cq : server->cqs_) {
    grpc::ServerCompletionQueue* q = cq.get();
    server->threads_.emplace_back([q] {
      NameThisThread("tp-grpc-cq");
      PollQueue(q);
    });
  }
  return server;
}

GatewayServer::~GatewayServer() { Shutdown(absl::ZeroDuration()); }

int GatewayServer::DefaultThreads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
}

void GatewayServer::SetServing(bool serving) { health_.SetServing(serving); }

void GatewayServer::Shutdown(absl::Duration drain) {
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_.store(true);
  SetServing(false);
  // Stops accepting at once; calls in flight get until the deadline, then are cancelled. Idle
  // client connections do not hold the drain: it ends when the last call does.
  ShutdownPromptly(*server_, drain, [this] { return active_calls_.load(); });
  // Cancelled calls still finish their upstream exchange and final CQ operations; the queues
  // must stay open until every call object is gone.
  const absl::Time give_up = clock_->MonotonicNow() + absl::Seconds(10);
  while (live_calls_.load() > 0 && clock_->MonotonicNow() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace turnpike
