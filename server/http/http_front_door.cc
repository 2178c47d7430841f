#include "server/http/http_front_door.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/string_view_compat.h"
#include "common/thread_name.h"
#include "server/http/http_call.h"
#include "server/http/openai_wire.h"

namespace turnpike {

namespace {

// Answers a request no call serves (unknown path, wrong method).
void ReplyPlainError(evhttp_request* request, int status, const char* reason,
                     const absl::Status& error) {
  evhttp_add_header(evhttp_request_get_output_headers(request), "Content-Type", "application/json");
  const std::string body = ToHttpError(error).body;
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(request, status, reason, out);
  evbuffer_free(out);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpFrontDoor>> HttpFrontDoor::Start(Options options,
                                                                    std::vector<CallEnv*> envs) {
  if (envs.empty()) return absl::InvalidArgumentError("HttpFrontDoor needs a call environment");
  std::string host;
  int port = 0;
  if (!SplitHostPort(options.listen, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP address \"", options.listen, "\" is not host:port"));
  }
  std::unique_ptr<HttpFrontDoor> door(new HttpFrontDoor());
  door->options_ = options;
  door->envs_ = std::move(envs);
  door->base_ = event_base_new();
  if (door->base_ == nullptr) return absl::InternalError("http: event_base_new failed");
  door->http_ = evhttp_new(door->base_);
  if (door->http_ == nullptr) return absl::InternalError("http: evhttp_new failed");
  evhttp_set_gencb(door->http_, &HttpFrontDoor::Handle, door.get());
  evhttp_set_allowed_methods(door->http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
  // Bodies up to twice the limit are read and answered 400 with a JSON error naming the limit;
  // evhttp refuses larger ones (413) without reading them.
  evhttp_set_max_body_size(door->http_, static_cast<ev_ssize_t>(options.max_body_bytes * 2));
  // A non-streaming completion may take minutes; idle kept-alive connections go after this.
  evhttp_set_timeout(door->http_, 600);
  door->bound_ =
      evhttp_bind_socket_with_handle(door->http_, host.c_str(), static_cast<uint16_t>(port));
  if (door->bound_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (address in use or invalid?)"));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(evhttp_bound_socket_get_fd(door->bound_), reinterpret_cast<sockaddr*>(&addr),
                  &len) == 0) {
    door->port_ =
        ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  door->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (door->wake_fd_ < 0) return absl::InternalError("http: eventfd failed");
  door->wake_event_ = event_new(door->base_, door->wake_fd_, EV_READ | EV_PERSIST,
                                &HttpFrontDoor::OnWake, door.get());
  event_add(door->wake_event_, nullptr);
  event_base* base = door->base_;
  door->thread_ = std::thread([base] {
    NameThisThread("tp-http-door");
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return door;
}

HttpFrontDoor::~HttpFrontDoor() {
  Shutdown(absl::ZeroDuration());
  if (wake_event_ != nullptr) event_free(wake_event_);
  if (http_ != nullptr) evhttp_free(http_);
  if (base_ != nullptr) event_base_free(base_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void HttpFrontDoor::Post(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void HttpFrontDoor::OnWake(int fd, short, void* self) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(fd, &count, sizeof(count));
  auto* door = static_cast<HttpFrontDoor*>(self);
  std::vector<std::function<void()>> run;
  {
    absl::MutexLock lock(&door->mu_);
    run.swap(door->posted_);
  }
  for (auto& fn : run) fn();
}

CallEnv* HttpFrontDoor::NextEnv() {
  return envs_[next_env_.fetch_add(1, std::memory_order_relaxed) % envs_.size()];
}

void HttpFrontDoor::Handle(evhttp_request* request, void* self) {
  static_cast<HttpFrontDoor*>(self)->Dispatch(request);
}

void HttpFrontDoor::Dispatch(evhttp_request* request) {
  const evhttp_cmd_type method = evhttp_request_get_command(request);
  const char* raw_path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
  absl::string_view path = raw_path == nullptr ? "" : raw_path;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (shutting_down_.load()) {
    ReplyPlainError(request, 503, "Service Unavailable",
                    absl::UnavailableError("the gateway is shutting down"));
    return;
  }
  const bool post = method == EVHTTP_REQ_POST;
  const bool get = method == EVHTTP_REQ_GET;
  if (path == "/v1/chat/completions" || path == "/v1/embeddings") {
    if (!post) {
      evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", "POST");
      ReplyPlainError(request, 405, "Method Not Allowed",
                      absl::InvalidArgumentError(absl::StrCat(path, " takes POST")));
      return;
    }
    if (path == "/v1/chat/completions") {
      RunChatCall(this, NextEnv(), request);
    } else {
      RunEmbedCall(this, NextEnv(), request);
    }
    return;
  }
  if (path == "/v1/models" || absl::StartsWith(path, "/v1/models/")) {
    if (!get) {
      evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", "GET");
      ReplyPlainError(request, 405, "Method Not Allowed",
                      absl::InvalidArgumentError(absl::StrCat(path, " takes GET")));
      return;
    }
    std::string_view one = path == "/v1/models" ? "" : Std(path.substr(strlen("/v1/models/")));
    RunModelsCall(this, NextEnv(), request, one);
    return;
  }
  ReplyPlainError(request, 404, "Not Found",
                  absl::NotFoundError(absl::StrCat(
                      "no route ", path,
                      "; this gateway serves POST /v1/chat/completions, POST /v1/embeddings and "
                      "GET /v1/models")));
}

void HttpFrontDoor::Shutdown(absl::Duration drain) {
  if (shut_down_ || base_ == nullptr || !thread_.joinable()) return;
  shut_down_ = true;
  shutting_down_.store(true);
  Post([this] {
    if (bound_ != nullptr) evhttp_del_accept_socket(http_, bound_);
    bound_ = nullptr;
  });
  const absl::Time drain_until = absl::Now() + drain;
  while (live_calls_.load() > 0 && absl::Now() < drain_until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  Post([this] {
    for (Call* call : std::vector<Call*>(calls_)) call->Cancel();
  });
  // Cancelled exchanges still end through the driver and send their last bytes.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (live_calls_.load() > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  Post([this] { event_base_loopbreak(base_); });
  thread_.join();
}

}  // namespace turnpike
