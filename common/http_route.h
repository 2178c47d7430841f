// The request and reply of a read-only HTTP route served beside /metrics (MetricsHttpServer's
// route handler, e.g. the control plane's /dashboard), kept free of libevent so a handler's
// library does not depend on the server's. Plain values; no thread-safety concerns.
#ifndef TURNPIKE_COMMON_HTTP_ROUTE_H_
#define TURNPIKE_COMMON_HTTP_ROUTE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace turnpike {

// A GET (or HEAD) request, as a route handler sees it.
struct HttpGet {
  std::string path;
  // The query string's parameters, percent-decoded, in order (a name may repeat).
  std::vector<std::pair<std::string, std::string>> query;
  // The Authorization header's value, if sent.
  std::optional<std::string> authorization;
};

// A route handler's answer.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  // Extra response headers.
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_HTTP_ROUTE_H_
