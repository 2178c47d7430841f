// MetricsHttpServer serves GET /metrics (Prometheus text format 0.0.4) over plain HTTP/1.1 on
// its own thread, with libevent's evhttp. Scrapes never touch request-serving threads: the page
// is rendered by the registry's lock-free reads and collectors on the server's thread. Any
// other path is 404, any other method 405.
// Thread-safe: Start() once; Stop() (or the destructor) from any thread other than its own.
#ifndef TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_
#define TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/metrics.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace turnpike {

class MetricsHttpServer {
 public:
  // Binds `listen` ("host:port", port 0 = ephemeral) and starts serving `registry`, which must
  // outlive the server. Fails with a clear message if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  const MetricsRegistry& registry);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // Stops serving and joins the thread. Idempotent.
  void Stop();

 private:
  explicit MetricsHttpServer(const MetricsRegistry& registry) : registry_(registry) {}
  static void Handle(evhttp_request* request, void* self);

  const MetricsRegistry& registry_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_
