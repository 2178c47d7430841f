// HttpFrontDoor::Call is one HTTP request in flight at the OpenAI-compatible front door
// (http_front_door.h): what every endpoint shares: the request's headers, body and credentials,
// the whole replies and OpenAI error replies, the watch on the client's socket that cancels the
// call when the client leaves, and for the POST endpoints the admission sequence after parsing
// (refusal event and reply, or limits and then the exchange). The endpoints are chat_call.cc,
// embed_call.cc and models_call.cc; the door starts them with the Run* functions below.
//
// Threading: reference counted. The HTTP side (until its reply is handed back to evhttp), the
// exchange (until it ends), the admission step and each posted closure hold one reference.
// Members marked "event thread" are touched only on the door's thread.
#ifndef TURNPIKE_SERVER_HTTP_HTTP_CALL_H_
#define TURNPIKE_SERVER_HTTP_HTTP_CALL_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/exchange/attempt_driver.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_env.h"
#include "server/grpc/limits_admission.h"
#include "server/http/http_front_door.h"

struct event;
struct evhttp_connection;

namespace turnpike {

class HttpFrontDoor::Call {
 public:
  // Registers the call with `door` and starts watching the client's socket. Event thread.
  Call(HttpFrontDoor* door, CallEnv* env, evhttp_request* request);
  virtual ~Call();

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Runs `fn` on the door's thread with this call alive.
  void PostHere(std::function<void()> fn);

  // The caller left, or the gateway stops: end the upstream work. Event thread.
  virtual void Cancel() = 0;

 protected:
  // The request's header `name`, every value.
  std::vector<std::string> Headers(const char* name) const;
  // The facts of the request known at its start (method, times, trace id).
  ExchangeRequest BeginRequest(RequestMethod method) const;
  // The credentials presented: the Authorization headers (no client certificates over HTTP).
  CallerCredentials Credentials() const;
  // Reads the body: 400 unless it is JSON within the size limit. Event thread.
  absl::StatusOr<std::string> Body() const;

  // The POST endpoints' common path once the body is parsed and the request authorized
  // (`status`: the outcome of both). Refused: the refusal's RequestFinished event and the error
  // reply. Admitted: the request passes its limits (the allowance goes to the reply's headers,
  // AddAllowanceHeaders) and StartExchange runs, on this thread or the lease manager's; refused
  // there, the event and the error reply as before. Event thread.
  void AdmitAndStart(const absl::Status& status, ExchangeRequest request, const RequestSize& size);
  // Starts the admitted request's exchange (and takes the exchange's reference).
  virtual void StartExchange(ExchangeRequest request) = 0;
  // The remaining allowance of the request's limits, as reply headers. Event thread.
  void AddAllowanceHeaders();

  void AddHeader(const std::string& key, const std::string& value);
  // Hands the request back to evhttp with a whole reply and drops the HTTP side's reference.
  // After the client left this only frees the request. Event thread.
  void Reply(int status, std::string_view content_type, std::string_view body);
  // OpenAI's error JSON with the status's HTTP status (and retry-after). Event thread.
  void ReplyError(const absl::Status& status);
  // A failed authentication's refusal waits for its peer address's throttle (docs/security.md,
  // "Brute force"): true when a one-shot timer on the door's thread will reply later (holding a
  // reference); false when the caller replies now. Event thread.
  bool HoldRefusal(const absl::Status& status);
  // The end of the HTTP side: out of the door's registry, its reference dropped. Event thread.
  void Done();
  // No close callback once the reply is handed back: a kept-alive connection outlives the call.
  void ForgetConnection();

  HttpFrontDoor* const door_;
  CallEnv* const env_;
  evhttp_request* request_;        // event thread; null once handed back
  evhttp_connection* connection_;  // event thread; null once the client left or the reply went
  std::vector<std::string> authorization_;
  std::string request_id_;  // event thread; echoed as x-request-id once known

 private:
  void StopWatchingPeer();
  static void OnPeerClosed(int fd, short what, void* self);
  static void OnClose(evhttp_connection* connection, void* self);
  static void OnHeldRefusal(int fd, short what, void* held);

  event* peer_closed_ = nullptr;  // event thread: EV_CLOSED on the socket while the call runs
  std::atomic<int> refs_{1};
  absl::Mutex allowance_mu_;
  std::vector<std::pair<std::string, std::string>> allowance_ ABSL_GUARDED_BY(allowance_mu_);
};

// The endpoints: each creates its call for `request` and runs it. Event thread.
void RunChatCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request);   // chat
void RunEmbedCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request);  // embeddings
void RunModelsCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request,  // models
                   std::string_view one);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_HTTP_HTTP_CALL_H_
