// MetricsHttpServer serves GET /metrics (Prometheus text format 0.0.4) over HTTP/1.1 on its own
// thread, with libevent's evhttp; over HTTPS (TLS 1.2 or later) when given a certificate source,
// whose current certificate each new connection gets, so a reloaded certificate is used from
// the next scrape on. Scrapes never touch request-serving threads: the page
// is rendered by the registry's lock-free reads and collectors on the server's thread. Other
// paths go to an optional read-only route handler (the control plane's /dashboard) on the same
// thread, else 404; any method but GET and HEAD is 405.
// Thread-safe: Start() once; Stop() (or the destructor) from any thread other than its own.
#ifndef TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_
#define TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/http_route.h"
#include "common/metrics.h"
#include "common/tls_files.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct evhttp_uri;
struct bufferevent;
struct ssl_ctx_st;

namespace turnpike {

class MetricsHttpServer {
 public:
  // The certificate and key to serve with, read per connection (e.g. CertificateWatch::current).
  using TlsSource = std::function<std::shared_ptr<const TlsMaterial>()>;
  // Answers a GET for a path other than /metrics; nullopt for a path it does not serve (404).
  // Runs on the server's thread: a slow handler delays scrapes.
  using Routes = std::function<std::optional<HttpReply>(const HttpGet&)>;

  // Binds `listen` ("host:port", port 0 = ephemeral) and starts serving `registry`, which must
  // outlive the server: plain HTTP, or HTTPS when `tls` is set. Fails with a clear message if the
  // address cannot be bound. `routes`, if set, serves the other paths.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  const MetricsRegistry& registry,
                                                                  TlsSource tls = nullptr,
                                                                  Routes routes = nullptr);
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
  static void ServeRoute(MetricsHttpServer& server, evhttp_request* request, const evhttp_uri* uri,
                         const char* path);
  // evhttp's connection factory under TLS: a TLS bufferevent on the current certificate.
  static bufferevent* NewTlsConnection(event_base* base, void* self);

  const MetricsRegistry& registry_;
  TlsSource tls_;
  Routes routes_;
  // Only touched on the server's thread: the context built from `ctx_material_`. Connections
  // hold their own reference, so replacing it never cuts one.
  std::shared_ptr<const TlsMaterial> ctx_material_;
  ssl_ctx_st* ctx_ = nullptr;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_METRICS_HTTP_SERVER_H_
