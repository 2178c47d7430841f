#include "server/http/http_call.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http_route.h"
#include "common/status.h"
#include "server/grpc/call_support.h"
#include "server/http/openai_wire.h"

namespace turnpike {

HttpFrontDoor::Call::Call(HttpFrontDoor* door, CallEnv* env, evhttp_request* request)
    : door_(door),
      env_(env),
      request_(request),
      connection_(evhttp_request_get_connection(request)) {
  door_->live_calls_.fetch_add(1);
  door_->calls_.push_back(this);
  evhttp_connection_set_closecb(connection_, &Call::OnClose, this);
  // evhttp reads nothing while a reply is pending, so it would notice a client that left only
  // at the next write; watching the socket for the peer's close cancels the upstream at once.
  const evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(connection_));
  if (fd >= 0) {
    // SSE chunks are small writes: without TCP_NODELAY each waits for the client's delayed ACK
    // (about 40 ms per chunk on Linux, measured by tools/dev bench scenario 7).
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer_closed_ = event_new(door_->base_, fd, EV_CLOSED, &Call::OnPeerClosed, this);
    if (peer_closed_ != nullptr) event_add(peer_closed_, nullptr);
  }
}

HttpFrontDoor::Call::~Call() { door_->live_calls_.fetch_sub(1); }

void HttpFrontDoor::Call::PostHere(std::function<void()> fn) {
  Ref();
  door_->Post([this, fn = std::move(fn)] {
    fn();
    Unref();
  });
}

std::vector<std::string> HttpFrontDoor::Call::Headers(const char* name) const {
  std::vector<std::string> out;
  evkeyvalq* headers = evhttp_request_get_input_headers(request_);
  for (evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next) {
    if (absl::EqualsIgnoreCase(h->key, name)) out.emplace_back(h->value);
  }
  return out;
}

ExchangeRequest HttpFrontDoor::Call::BeginRequest(RequestMethod method) const {
  ExchangeRequest r;
  r.method = method;
  r.accepted = env_->clock->MonotonicNow();
  r.accepted_wall = env_->clock->Now();
  const std::vector<std::string> traceparent = Headers("traceparent");
  if (!traceparent.empty()) r.trace_id = TraceIdOf(traceparent[0]);
  return r;
}

CallerCredentials HttpFrontDoor::Call::Credentials() const {
  CallerCredentials c;
  for (const std::string& v : authorization_) c.authorization.emplace_back(v);
  return c;
}

absl::StatusOr<std::string> HttpFrontDoor::Call::Body() const {
  const std::vector<std::string> type = Headers("Content-Type");
  if (type.empty() ||
      !absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(type[0]), "application/json")) {
    return InvalidFieldError("body", "Content-Type must be application/json");
  }
  evbuffer* in = evhttp_request_get_input_buffer(request_);
  const size_t size = evbuffer_get_length(in);
  if (size > door_->options_.max_body_bytes) {
    return InvalidFieldError("body", absl::StrCat("the body is ", size, " bytes; the limit is ",
                                                  door_->options_.max_body_bytes));
  }
  std::string body(size, '\0');
  evbuffer_copyout(in, body.data(), size);
  return body;
}

void HttpFrontDoor::Call::AdmitAndStart(const absl::Status& status, ExchangeRequest request,
                                        const RequestSize& size) {
  if (!status.ok()) {
    EmitRefused(env_->finished, request, status, *env_->clock);
    if (!HoldRefusal(status)) ReplyError(status);
    return;
  }
  Ref();  // the admission step
  AdmitToLimits(
      env_,
      [this](const std::string& key, const std::string& value) {
        absl::MutexLock lock(&allowance_mu_);
        allowance_.emplace_back(key, value);
      },
      std::move(request), size,
      [this](ExchangeRequest admitted, absl::Status s) {
        if (s.ok()) {
          StartExchange(std::move(admitted));
        } else {
          EmitRefused(env_->finished, admitted, s, *env_->clock);
          PostHere([this, s] { ReplyError(s); });
        }
        Unref();
      });
}

namespace {

// A refusal held back by the peer throttle, answered by a one-shot timer on the door's thread.
struct HeldRefusal {
  HttpFrontDoor::Call* call;
  absl::Status status;
};

}  // namespace

bool HttpFrontDoor::Call::HoldRefusal(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnauthenticated || env_->auth_throttle == nullptr ||
      connection_ == nullptr) {
    return false;
  }
  char* address = nullptr;
  ev_uint16_t port = 0;
  evhttp_connection_get_peer(connection_, &address, &port);
  const PeerThrottle::Verdict verdict =
      env_->auth_throttle->RecordFailure(address != nullptr ? address : "");
  if (!verdict.throttled()) return false;
  Ref();  // the timer's
  auto* held = new HeldRefusal{this, status};
  const timeval delay = absl::ToTimeval(verdict.hold);
  if (event_base_once(door_->base_, -1, EV_TIMEOUT, &Call::OnHeldRefusal, held, &delay) != 0) {
    delete held;
    env_->auth_throttle->Release();
    Unref();
    return false;
  }
  return true;
}

void HttpFrontDoor::Call::OnHeldRefusal(int, short, void* arg) {
  std::unique_ptr<HeldRefusal> held(static_cast<HeldRefusal*>(arg));
  Call* call = held->call;
  call->env_->auth_throttle->Release();
  call->ReplyError(held->status);
  call->Unref();
}

void HttpFrontDoor::Call::AddAllowanceHeaders() {
  absl::MutexLock lock(&allowance_mu_);
  for (const auto& [key, value] : allowance_) AddHeader(key, value);
}

void HttpFrontDoor::Call::AddHeader(const std::string& key, const std::string& value) {
  evhttp_add_header(evhttp_request_get_output_headers(request_), key.c_str(), value.c_str());
}

void HttpFrontDoor::Call::Reply(int status, std::string_view content_type, std::string_view body) {
  ForgetConnection();
  if (!request_id_.empty()) AddHeader("x-request-id", request_id_);
  AddHeader("Content-Type", std::string(content_type));
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(request_, status, HttpReasonPhrase(status), out);
  evbuffer_free(out);
  Done();
}

void HttpFrontDoor::Call::ReplyError(const absl::Status& status) {
  const HttpError error = ToHttpError(status);
  if (error.retry_after_seconds > 0) {
    AddHeader("retry-after", absl::StrCat(error.retry_after_seconds));
  }
  Reply(error.http_status, "application/json", error.body);
}

void HttpFrontDoor::Call::Done() {
  auto& calls = door_->calls_;
  calls.erase(std::remove(calls.begin(), calls.end(), this), calls.end());
  request_ = nullptr;
  Unref();
}

void HttpFrontDoor::Call::ForgetConnection() {
  StopWatchingPeer();
  if (evhttp_connection* c = connection_; c != nullptr) {
    evhttp_connection_set_closecb(c, nullptr, nullptr);
    connection_ = nullptr;
  }
}

void HttpFrontDoor::Call::StopWatchingPeer() {
  if (peer_closed_ != nullptr) event_free(peer_closed_);
  peer_closed_ = nullptr;
}

void HttpFrontDoor::Call::OnPeerClosed(int, short, void* self) {
  auto* call = static_cast<Call*>(self);
  call->StopWatchingPeer();
  call->Cancel();
}

void HttpFrontDoor::Call::OnClose(evhttp_connection*, void* self) {
  auto* call = static_cast<Call*>(self);
  call->StopWatchingPeer();
  // evhttp keeps the request (detached) until the reply is sent; the exchange's end sends it.
  call->connection_ = nullptr;
  call->Cancel();
}

}  // namespace turnpike
