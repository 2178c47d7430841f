// HttpFrontDoor is the gateway's OpenAI-compatible HTTP front (docs/openai-compatible.md):
// POST /v1/chat/completions (server-sent events or one JSON reply), POST /v1/embeddings and
// GET /v1/models on libevent's evhttp, one event thread. The door listens, routes each request to
// its endpoint's call (chat_call.cc, embed_call.cc, models_call.cc on HttpFrontDoor::Call,
// http_call.h) and drains at shutdown. Each request is parsed from OpenAI's JSON
// into the gateway's own request and then takes exactly the gRPC calls' path: the same
// admission (server/grpc/completion_admission.h: metering, snapshot, caller authorization), the
// same limits (AdmitToLimits), the same ChatExchange / EmbedExchange on the attempt driver and
// the same RequestFinished sinks; only the wire format differs (server/http/openai_wire.h).
//
// Threading: evhttp runs on the door's thread; exchange events arrive on the upstream loops and
// are handed to it through a queue (Post). Start() and Shutdown() from one controlling thread.
#ifndef TURNPIKE_SERVER_HTTP_HTTP_FRONT_DOOR_H_
#define TURNPIKE_SERVER_HTTP_HTTP_FRONT_DOOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/grpc/call_env.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;

namespace turnpike {

class HttpFrontDoor {
 public:
  struct Options {
    // "host:port" (port 0 = ephemeral).
    std::string listen = "127.0.0.1:8080";
    // Largest request body answered; a larger one gets 400 (evhttp itself closes bodies over
    // twice this with 413, before reading them).
    size_t max_body_bytes = 4 << 20;
  };

  // Requests are spread over `envs` (one per upstream loop) in turn; only their shared fields
  // (config, transport, resilience, finished, metrics, clock, usage, admission) are used. Each
  // must outlive the door.
  static absl::StatusOr<std::unique_ptr<HttpFrontDoor>> Start(Options options,
                                                              std::vector<CallEnv*> envs);
  ~HttpFrontDoor();

  int port() const { return port_; }
  // Stops accepting, lets requests in flight finish up to `drain`, cancels the rest, stops the
  // thread. Idempotent.
  void Shutdown(absl::Duration drain);

  // Runs `fn` on the door's thread (from any thread).
  void Post(std::function<void()> fn);

  // One request in flight (http_call.h).
  class Call;

 private:
  HttpFrontDoor() = default;
  static void Handle(evhttp_request* request, void* self);
  static void OnWake(int fd, short what, void* self);
  void Dispatch(evhttp_request* request);
  CallEnv* NextEnv();

  Options options_;
  std::vector<CallEnv*> envs_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* bound_ = nullptr;
  event* wake_event_ = nullptr;
  int wake_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<unsigned> next_env_{0};
  std::atomic<bool> shutting_down_{false};
  bool shut_down_ = false;
  // Calls accepted and not yet destroyed; shutdown waits for zero.
  std::atomic<int> live_calls_{0};

  absl::Mutex mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);

  // Event thread only: calls in flight, for cancelling at shutdown.
  std::vector<Call*> calls_;
  friend class Call;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_HTTP_HTTP_FRONT_DOOR_H_
