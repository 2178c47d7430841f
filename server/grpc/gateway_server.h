// GatewayServer is turnpike-gateway's gRPC front: CompletionService, EmbeddingService and
// ClassificationService on the completion-queue async API (completion queues each with one polling
// thread, no thread per request), plus reflection and grpc.health.v1.Health (health_service.h, on
// the same queues), which says SERVING only once a config is loaded. Shutdown() stops accepting,
// lets calls in flight finish up to a drain deadline, cancels the rest and joins the threads.
// Thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_GATEWAY_SERVER_H_
#define TURNPIKE_SERVER_GRPC_GATEWAY_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/config/config_store.h"
#include "server/grpc/call_env.h"
#include "server/grpc/health_service.h"
#include "server/telemetry/request_telemetry.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {

class GatewayServer {
 public:
  struct Options {
    // "host:port" (port 0 = ephemeral) or "unix:/path".
    std::string listen = "127.0.0.1:50051";
    // The listener's credentials (server/grpc/listener_credentials.h); null = plaintext.
    std::shared_ptr<grpc::ServerCredentials> credentials;
    // Completion-queue threads; 0 = DefaultThreads().
    int threads = 0;
    // Largest request message accepted (gRPC answers RESOURCE_EXHAUSTED above it).
    int max_request_bytes = 4 << 20;
    // Pending accepts per method per completion queue.
    int accepts_per_queue = 32;
    bool access_log = true;
    // Required: the process-wide resilience state (owned by the caller, outlives the server).
    Resilience* resilience = nullptr;
    // Request metrics (owned by the caller, outlives the server); optional.
    GatewayMetrics* metrics = nullptr;
    // Where every request ends (owned by the caller, outlives the server); when null the server
    // uses its own RequestTelemetry (access log per `access_log`, and `metrics`).
    RequestFinishedSink* finished = nullptr;
    // Metering (owned by the caller, outlives the server); optional. It must also be one of the
    // sinks of `finished`.
    const UsageRecorder* usage = nullptr;
    // The time source of every call (deadlines, latency); must outlive the server.
    Clock* clock = &Clock::Real();
    // Rate limits and budgets (owned by the caller, outlives the server); optional. Its
    // AdmissionSettler must be one of the sinks of `finished`.
    Admission* admission = nullptr;
    // Slows down key guessing per peer address (owned by the caller, outlives the server);
    // optional: without it failed authentications are answered at once.
    PeerThrottle* auth_throttle = nullptr;
  };

  // Calls accepted on completion queue i run their upstream transfers on loops[i % size], so
  // each core's requests stay on one CQ thread and one loop thread. `loops` must not be empty
  // and outlive the server.
  static absl::StatusOr<std::unique_ptr<GatewayServer>> Start(Options options, ConfigStore& config,
                                                              std::vector<UpstreamLoop*> loops);
  ~GatewayServer();

  // Completion-queue threads when none are configured: half the cores, at least one. Every thread
  // that polls gRPC's sockets may read bytes meant for another's queue and must then wake it;
  // at low load one poller is fastest (docs/performance.md), and the other half of the cores
  // run the upstream loops.
  static int DefaultThreads();

  // The bound TCP port (0 for unix sockets).
  int port() const { return port_; }
  // The environments of the completion queues' calls (one per queue, each with its upstream
  // loop): the HTTP front door serves its requests with the same ones.
  std::vector<CallEnv*> call_envs() const {
    std::vector<CallEnv*> out;
    for (const auto& env : envs_) out.push_back(env.get());
    return out;
  }
  // Reports SERVING / NOT_SERVING on grpc.health.v1.Health (overall and per service).
  void SetServing(bool serving);
  // Stops accepting, waits for calls up to `drain`, cancels the rest, joins threads. Idempotent.
  void Shutdown(absl::Duration drain);

 private:
  GatewayServer() = default;

  RawCompletionService completion_;
  RawEmbeddingService embedding_;
  RawClassificationService classification_;
  HealthService health_{{"turnpike.v1.CompletionService", "turnpike.v1.EmbeddingService",
                         "turnpike.v1.ClassificationService"}};
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::unique_ptr<RequestFinishedSink> own_finished_;
  std::vector<std::unique_ptr<CallEnv>> envs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> live_calls_{0};
  std::atomic<int> active_calls_{0};
  Clock* clock_ = nullptr;
  bool shut_down_ = false;
  int port_ = 0;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_GATEWAY_SERVER_H_
