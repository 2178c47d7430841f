// Prompt graceful shutdown for gRPC servers. grpc::Server::Shutdown(deadline) waits for every
// client connection to close, so one idle client channel holds a draining server until the
// deadline even with no call in flight. ShutdownPromptly() starts the same graceful shutdown
// (GOAWAY, no new calls, calls in flight continue) and, as soon as no call is active, closes the
// remaining connections, so an idle server stops at once and a busy one when its last call ends
// (or at the deadline, when what is left is cancelled).
// ActiveCallCounter counts a server's calls in flight with a server interceptor, for servers
// whose handlers do not count themselves (the gateway's call objects do).
// Thread-safe.
#ifndef TURNPIKE_COMMON_SERVER_DRAIN_H_
#define TURNPIKE_COMMON_SERVER_DRAIN_H_

#include <atomic>
#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/support/server_interceptor.h"

namespace turnpike {

class ActiveCallCounter {
 public:
  // Register with ServerBuilder::experimental().SetInterceptorCreators(); the counter must
  // outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Factory();
  int active() const { return active_.load(std::memory_order_acquire); }

 private:
  friend class CountingInterceptor;
  std::atomic<int> active_{0};
};

// Shuts `server` down within `grace`: see the header comment. `active_calls` reports calls in
// flight (accepted and not finished).
void ShutdownPromptly(grpc::Server& server, absl::Duration grace,
                      const std::function<int()>& active_calls);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_SERVER_DRAIN_H_
