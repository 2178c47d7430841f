// The "gRPC floor": a trivial turnpike.v1.CompletionService that answers from memory, so the
// bench can measure what a gRPC hop itself costs on this machine in the same run as the gateway.
// A stream is one `start`, N `delta`s and one `finish` (written with WriteAndFinish, the cheapest
// way gRPC has); Complete returns the same text in one message. It uses the completion-queue
// async API with one thread and one queue per core, like the gateway. Per-call overrides:
// metadata `x-fake-chunks` and `x-fake-chunk-delay-ms`, named like the fake provider's headers.
// Start() and Shutdown() are called from one thread; the server's own threads do the rest.
#ifndef TURNPIKE_TOOLS_BENCH_FLOOR_SERVER_H_
#define TURNPIKE_TOOLS_BENCH_FLOOR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::bench {

class FloorServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:0";
    int threads = 0;  // 0: one per core
    int chunks = 5;
    int chunk_delay_ms = 0;
  };

  // Binds and starts serving; UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<FloorServer>> Start(const Options& options);
  ~FloorServer();

  int port() const { return port_; }
  // Stops accepting, cancels calls still running after `grace`, and joins the threads.
  void Shutdown(absl::Duration grace);

 private:
  explicit FloorServer(const Options& options) : options_(options) {}
  void Serve(grpc::ServerCompletionQueue* cq);

  const Options options_;
  v1::CompletionService::AsyncService service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_FLOOR_SERVER_H_
