// The request and reply of a read-only HTTP route served beside /metrics (MetricsHttpServer's
// route handler, e.g. the control plane's /dashboard), kept free of libevent so a handler's
// library does not depend on the server's; and the reason phrase of the statuses Turnpike's HTTP
// servers answer with. Plain values and a pure function; no thread-safety concerns.
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

// The reason phrase for an HTTP status line (RFC 9110 section 15); "Error" for a status no Turnpike
// server sends.
inline const char* HttpReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_HTTP_ROUTE_H_
