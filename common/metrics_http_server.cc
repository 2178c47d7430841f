#include "common/metrics_http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

// A server context for `m`: TLS 1.2 at least, the certificate chain and key from the PEMs.
// Null if OpenSSL refuses them (LoadTlsMaterial has checked them, so only on memory failure).
SSL_CTX* NewServerContext(const TlsMaterial& m) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  bool ok = true;
  BIO* cert_bio = BIO_new_mem_buf(m.cert_pem.data(), static_cast<int>(m.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  ok = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {  // the rest of the chain
    X509* ca = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    if (ca == nullptr) break;
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      ok = false;
    }
  }
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(m.key_pem.data(), static_cast<int>(m.key_pem.size()));
  EVP_PKEY* key = ok ? PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr) : nullptr;
  ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  BIO_free(key_bio);
  ERR_clear_error();
  if (!ok) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

bufferevent* MetricsHttpServer::NewTlsConnection(event_base* base, void* self) {
  auto* server = static_cast<MetricsHttpServer*>(self);
  std::shared_ptr<const TlsMaterial> material = server->tls_();
  if (material != nullptr && material != server->ctx_material_) {
    if (SSL_CTX* ctx = NewServerContext(*material); ctx != nullptr) {
      if (server->ctx_ != nullptr) SSL_CTX_free(server->ctx_);
      server->ctx_ = ctx;
      server->ctx_material_ = std::move(material);
    }
  }
  SSL* ssl = SSL_new(server->ctx_);  // ctx_ is set from Start() on
  // A null bufferevent would make evhttp serve this connection in clear: never on a TLS listener.
  // SSL_new fails only when out of memory.
  if (ssl == nullptr) std::abort();
  return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE);
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, const MetricsRegistry& registry, TlsSource tls, Routes routes) {
  static std::once_flag threads_once;
  std::call_once(threads_once, [] { evthread_use_pthreads(); });
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", listen, "\" is not host:port"));
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(registry));
  server->routes_ = std::move(routes);
  server->base_ = event_base_new();
  if (server->base_ == nullptr) return absl::InternalError("metrics: event_base_new failed");
  server->http_ = evhttp_new(server->base_);
  if (server->http_ == nullptr) return absl::InternalError("metrics: evhttp_new failed");
  evhttp_set_gencb(server->http_, &MetricsHttpServer::Handle, server.get());
  if (tls != nullptr) {
    server->tls_ = std::move(tls);
    std::shared_ptr<const TlsMaterial> material = server->tls_();
    if (material == nullptr) return absl::InvalidArgumentError("metrics: no TLS certificate");
    server->ctx_ = NewServerContext(*material);
    if (server->ctx_ == nullptr) {
      return absl::InternalError("metrics: OpenSSL refused the TLS certificate or key");
    }
    server->ctx_material_ = std::move(material);
    evhttp_set_bevcb(server->http_, &MetricsHttpServer::NewTlsConnection, server.get());
  }
  evhttp_bound_socket* bound =
      evhttp_bind_socket_with_handle(server->http_, host.c_str(), static_cast<uint16_t>(port));
  if (bound == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, " (address in use or not local?)"));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&addr), &len) ==
      0) {
    server->port_ = addr.ss_family == AF_INET6
                        ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                        : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  event_base* base = server->base_;
  server->thread_ = std::thread([base] {
    NameThisThread("tp-metrics-http");
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return server;
}

void MetricsHttpServer::ServeRoute(MetricsHttpServer& server, evhttp_request* request,
                                   const evhttp_uri* uri, const char* path) {
  HttpGet get;
  get.path = path;
  if (const char* query = evhttp_uri_get_query(uri); query != nullptr) {
    evkeyvalq params;
    if (evhttp_parse_query_str(query, &params) != 0) {
      evhttp_send_error(request, HTTP_BADREQUEST, "malformed query string");
      return;
    }
    for (evkeyval* kv = params.tqh_first; kv != nullptr; kv = kv->next.tqe_next) {
      get.query.emplace_back(kv->key, kv->value);
    }
    evhttp_clear_headers(&params);
  }
  if (const char* auth =
          evhttp_find_header(evhttp_request_get_input_headers(request), "Authorization");
      auth != nullptr) {
    get.authorization = auth;
  }
  std::optional<HttpReply> reply = server.routes_(get);
  if (!reply.has_value()) {
    evhttp_send_error(request, HTTP_NOTFOUND, "not found");
    return;
  }
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Content-Type", reply->content_type.c_str());
  for (const auto& [name, value] : reply->headers) {
    evhttp_add_header(headers, name.c_str(), value.c_str());
  }
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, reply->body.data(), reply->body.size());
  evhttp_send_reply(request, reply->status, HttpReasonPhrase(reply->status), body);
  evbuffer_free(body);
}

void MetricsHttpServer::Handle(evhttp_request* request, void* self) {
  auto* server = static_cast<MetricsHttpServer*>(self);
  const evhttp_cmd_type method = evhttp_request_get_command(request);
  if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
    evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", "GET, HEAD");
    evhttp_send_error(request, 405, "only GET /metrics is served here");
    return;
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
  const char* path = evhttp_uri_get_path(uri);
  if (path != nullptr && std::string_view(path) != "/metrics" && server->routes_ != nullptr) {
    ServeRoute(*server, request, uri, path);
    return;
  }
  if (path == nullptr || std::string_view(path) != "/metrics") {
    evhttp_send_error(request, HTTP_NOTFOUND, "only /metrics is served here");
    return;
  }
  const std::string page = server->registry_.Render();
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, page.data(), page.size());
  evhttp_send_reply(request, HTTP_OK, "OK", body);
  evbuffer_free(body);
}

void MetricsHttpServer::Stop() {
  if (base_ == nullptr) return;
  // loopbreak() from here would be lost if the thread has not entered its loop yet (the loop
  // clears the flag on entry), so queue an event that breaks the loop from inside it.
  static const timeval kNow = {0, 0};
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* base) {
        event_base_loopbreak(static_cast<event_base*>(base));
      },
      base_, &kNow);
  if (thread_.joinable()) thread_.join();
  evhttp_free(http_);
  event_base_free(base_);
  http_ = nullptr;
  base_ = nullptr;
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  ctx_ = nullptr;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

}  // namespace turnpike
