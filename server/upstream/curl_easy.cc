#include "server/upstream/curl_easy.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace turnpike {
namespace {

absl::Status ConnectFailure(std::string message) {
  absl::Status status = absl::UnavailableError(std::move(message));
  status.SetPayload(kConnectFailurePayloadUrl, absl::Cord());
  return status;
}

}  // namespace

curl_slist* ConfigureEasy(CURL* easy, const HttpRequest& request, const TransferOptions& options,
                          const EasyCallbacks& callbacks) {
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  // No "Expect: 100-continue" round trip for large bodies.
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, callbacks.write);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, callbacks.user_data);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, callbacks.header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, callbacks.user_data);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, callbacks.user_data);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, callbacks.error_buffer);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.total_timeout)));
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, nullptr);
  return headers;
}

absl::Status CurlStatus(CURLcode code, const char* error) {
  std::string detail = error[0] != '\0' ? std::string(error) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(absl::StrCat("upstream timed out: ", detail));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return ConnectFailure(absl::StrCat("upstream host not found: ", detail));
    case CURLE_COULDNT_CONNECT:
      return ConnectFailure(absl::StrCat("upstream connect failed: ", detail));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
      return ConnectFailure(absl::StrCat("upstream TLS failure: ", detail));
    default:
      return absl::UnavailableError(absl::StrCat("upstream connection failed: ", detail));
  }
}

}  // namespace turnpike
