// How one upstream HTTP request becomes a libcurl easy handle, and how libcurl's result codes
// become statuses the retry policy understands (a connect, DNS or TLS failure carries
// kConnectFailurePayloadUrl: the request never reached the provider). Used by UpstreamLoop only.
// Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_UPSTREAM_CURL_EASY_H_
#define TURNPIKE_SERVER_UPSTREAM_CURL_EASY_H_

#include <curl/curl.h>

#include "absl/status/status.h"
#include "server/providers/provider_adapter.h"
#include "server/upstream/transport.h"

namespace turnpike {

struct EasyCallbacks {
  curl_write_callback write = nullptr;
  curl_write_callback header = nullptr;
  void* user_data = nullptr;     // passed to both callbacks and stored as CURLOPT_PRIVATE
  char* error_buffer = nullptr;  // CURL_ERROR_SIZE bytes
};

// Sets up `easy` (new, or reset for reuse) to POST `request` with `options`' connect and total
// timeouts, TCP_NODELAY and keep-alive, no redirects, no compression. The body is not copied:
// `request` must outlive the transfer. Returns the header list, which the caller frees with
// curl_slist_free_all() after the transfer.
curl_slist* ConfigureEasy(CURL* easy, const HttpRequest& request, const TransferOptions& options,
                          const EasyCallbacks& callbacks);

// The status of a transfer libcurl ended with `code` (`error` is its error buffer).
absl::Status CurlStatus(CURLcode code, const char* error);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_UPSTREAM_CURL_EASY_H_
