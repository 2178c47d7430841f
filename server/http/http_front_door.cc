#include "server/http/http_front_door.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/embed_exchange.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_support.h"
#include "server/grpc/completion_admission.h"
#include "server/grpc/limits_admission.h"
#include "server/http/openai_wire.h"

namespace turnpike {

// The queue of a stream's text between the upstream loop and the socket: above this many bytes
// not yet written the exchange pauses the upstream; it resumes below the low mark
// (docs/architecture.md, "Backpressure").
constexpr int64_t kCongestedBytes = 64 << 10;
constexpr int64_t kResumeBytes = 16 << 10;

// One HTTP request in flight. Reference counted: the HTTP side (until its reply is handed back
// to evhttp), the exchange (until OnDone), the admission step and each posted closure hold one.
// Fields marked "event thread" are touched only on the door's thread.
class HttpFrontDoor::Call {
 public:
  Call(HttpFrontDoor* door, CallEnv* env, evhttp_request* request)
      : door_(door), env_(env), request_(request) {
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
  virtual ~Call() { door_->live_calls_.fetch_sub(1); }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Runs `fn` on the door's thread with this call alive.
  void PostHere(std::function<void()> fn) {
    Ref();
    door_->Post([this, fn = std::move(fn)] {
      fn();
      Unref();
    });
  }

  // The caller left, or the gateway stops: end the upstream work. Event thread.
  virtual void Cancel() = 0;

 protected:
  // The request's header `name`, every value.
  std::vector<std::string> Headers(const char* name) const {
    std::vector<std::string> out;
    evkeyvalq* headers = evhttp_request_get_input_headers(request_);
    for (evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next) {
      if (absl::EqualsIgnoreCase(h->key, name)) out.emplace_back(h->value);
    }
    return out;
  }

  ExchangeRequest BeginRequest(RequestMethod method) const {
    ExchangeRequest r;
    r.method = method;
    r.accepted = env_->clock->MonotonicNow();
    r.accepted_wall = env_->clock->Now();
    const std::vector<std::string> traceparent = Headers("traceparent");
    if (!traceparent.empty()) r.trace_id = TraceIdOf(traceparent[0]);
    return r;
  }

  // The credentials presented: the Authorization headers (no client certificates over HTTP).
  CallerCredentials Credentials() const {
    CallerCredentials c;
    for (const std::string& v : authorization_) c.authorization.emplace_back(v);
    return c;
  }

  // Reads the body: 400 unless it is JSON within the size limit. Event thread.
  absl::StatusOr<std::string> Body() const {
    const std::vector<std::string> type = Headers("Content-Type");
    if (type.empty() || !absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(type[0]),
                                                    "application/json")) {
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

  void AddHeader(const std::string& key, const std::string& value) {
    evhttp_add_header(evhttp_request_get_output_headers(request_), key.c_str(), value.c_str());
  }

  // Hands the request back to evhttp with a whole reply and drops the HTTP side's reference.
  // After the client left this only frees the request. Event thread.
  void Reply(int status, std::string_view content_type, std::string_view body) {
    ForgetConnection();
    if (!request_id_.empty()) AddHeader("x-request-id", request_id_);
    AddHeader("Content-Type", std::string(content_type));
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, body.data(), body.size());
    evhttp_send_reply(request_, status, ReasonOf(status), out);
    evbuffer_free(out);
    Done();
  }

  void ReplyError(const absl::Status& status) {
    const HttpError error = ToHttpError(status);
    if (error.retry_after_seconds > 0) {
      AddHeader("retry-after", absl::StrCat(error.retry_after_seconds));
    }
    Reply(error.http_status, "application/json", error.body);
  }

  // The end of the HTTP side: out of the door's registry, its reference dropped. Event thread.
  void Done() {
    auto& calls = door_->calls_;
    calls.erase(std::remove(calls.begin(), calls.end(), this), calls.end());
    request_ = nullptr;
    Unref();
  }

  // No close callback once the reply is handed back: a kept-alive connection outlives the call.
  void ForgetConnection() {
    StopWatchingPeer();
    if (evhttp_connection* c = connection_; c != nullptr) {
      evhttp_connection_set_closecb(c, nullptr, nullptr);
      connection_ = nullptr;
    }
  }

  static const char* ReasonOf(int status) {
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
        return "Error";
    }
  }

  HttpFrontDoor* const door_;
  CallEnv* const env_;
  evhttp_request* request_;  // event thread; null once handed back
  evhttp_connection* connection_ = evhttp_request_get_connection(request_);  // event thread
  std::vector<std::string> authorization_;
  std::string request_id_;  // event thread; echoed as x-request-id once known

 private:
  void StopWatchingPeer() {
    if (peer_closed_ != nullptr) event_free(peer_closed_);
    peer_closed_ = nullptr;
  }

  static void OnPeerClosed(evutil_socket_t, short, void* self) {
    auto* call = static_cast<Call*>(self);
    call->StopWatchingPeer();
    call->Cancel();
  }

  static void OnClose(evhttp_connection*, void* self) {
    auto* call = static_cast<Call*>(self);
    call->StopWatchingPeer();
    // evhttp keeps the request (detached) until the reply is sent; the exchange's end sends it.
    call->connection_ = nullptr;
    call->Cancel();
  }

  event* peer_closed_ = nullptr;  // event thread: EV_CLOSED on the socket while the call runs
  std::atomic<int> refs_{1};
};

namespace {

// POST /v1/chat/completions.
class ChatCall final : public HttpFrontDoor::Call, public ChatListener {
 public:
  using Call::Call;

  // Event thread.
  void Run() {
    authorization_ = Headers("Authorization");
    absl::StatusOr<std::string> body = Body();
    absl::StatusOr<OpenAiChatRequest> parsed =
        body.ok() ? ParseOpenAiChatRequest(*body)
                  : absl::StatusOr<OpenAiChatRequest>(body.status());
    if (parsed.ok()) chat_ = *std::move(parsed);
    ExchangeRequest r =
        BeginRequest(chat_.stream ? RequestMethod::kStreamCompletion : RequestMethod::kComplete);
    absl::Status status = parsed.status();
    if (status.ok()) {
      status = AdmitCompletionRequest(
          env_, [this](const RuntimeConfig&) { return Credentials(); }, absl::InfiniteFuture(),
          &chat_.request, &r);
    }
    request_id_ = chat_.request.request_id();
    header_.id = absl::StrCat("chatcmpl-", chat_.request.request_id());
    header_.created = absl::ToUnixSeconds(r.accepted_wall);
    header_.model = chat_.request.capability();
    if (!status.ok()) {
      EmitRefused(env_->finished, r, status, *env_->clock);
      ReplyError(status);
      return;
    }
    Ref();  // the admission step
    AdmitToLimits(
        env_,
        [this](const std::string& key, const std::string& value) {
          absl::MutexLock lock(&mu_);
          allowance_.emplace_back(key, value);
        },
        std::move(r), CompletionSize(chat_.request),
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

  void Cancel() override {
    std::shared_ptr<ChatExchange> cancel;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!exchange_done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
  }

  // ChatListener (upstream loop thread).
  void OnCommit(const v1::CompletionStart& start) override {
    if (!chat_.stream) return;
    PostHere([this, start] { StartStream(start); });
  }

  // The HTTP front door does not pass tools yet (docs/openai-compatible.md), so no provider is
  // offered any and none comes back here.
  void OnToolCall(const ToolCallFragment&) override {}

  void OnText(std::string_view text) override {
    if (!chat_.stream) {
      text_.append(text);
      return;
    }
    std::string event = TextChunkEvent(header_, text, chat_.include_usage);
    unsent_.fetch_add(static_cast<int64_t>(event.size()));
    PostHere([this, event = std::move(event)] {
      unsent_.fetch_sub(static_cast<int64_t>(event.size()));
      Write(event);
    });
  }

  bool Congested() override {
    if (unsent_.load() + buffered_.load() <= kCongestedBytes) return false;
    paused_.store(true);
    return true;
  }

  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    {
      absl::MutexLock lock(&mu_);
      exchange_done_ = true;
    }
    if (!chat_.stream) {
      std::string body = status.ok() ? ChatCompletionJson(header_, text_, finish) : "";
      PostHere([this, status, body = std::move(body)] {
        if (!status.ok()) {
          ReplyError(status);
          return;
        }
        AddResponseHeaders();
        Reply(200, "application/json", body);
      });
    } else if (status.ok()) {
      std::string tail = FinishChunkEvent(header_, finish.finish_reason(), chat_.include_usage);
      if (chat_.include_usage) tail += UsageChunkEvent(header_, finish.usage());
      tail += kDoneEvent;
      PostHere([this, tail = std::move(tail)] { EndStream(tail); });
    } else {
      PostHere([this, status] {
        if (!streaming_) {  // nothing sent yet: a plain HTTP error
          ReplyError(status);
        } else {  // after the 200: an error event, never a silent end
          EndStream(ErrorEvent(status));
        }
      });
    }
    Unref();  // the exchange's reference
  }

 private:
  void StartExchange(ExchangeRequest r) {
    Ref();  // the exchange's reference, dropped in OnDone
    auto exchange =
        ChatExchange::Create(std::move(r), ToChatRequest(chat_.request), chat_.stream, this,
                             *env_->transport, *env_->resilience, env_->finished, env_->metrics);
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = cancelled_;
    }
    // The client left while the request waited for admission: end it before any upstream work.
    if (gone) exchange->Cancel();
    exchange->Start();
  }

  void AddResponseHeaders() {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, value] : allowance_) AddHeader(key, value);
  }

  // Event thread.
  void StartStream(const v1::CompletionStart& start) {
    if (connection_ == nullptr) return;  // the client left: nothing to start
    AddResponseHeaders();
    AddHeader("x-request-id", request_id_);
    AddHeader("Content-Type", "text/event-stream");
    AddHeader("Cache-Control", "no-cache");
    AddHeader("x-turnpike-provider", start.provider());
    AddHeader("x-turnpike-model", start.model());
    evhttp_send_reply_start(request_, 200, "OK");
    streaming_ = true;
    Write(RoleChunkEvent(header_, chat_.include_usage));
  }

  void Write(std::string_view data) {
    if (!streaming_ || connection_ == nullptr) return;
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, data.data(), data.size());
    evhttp_send_reply_chunk_with_cb(request_, out, &ChatCall::OnFlushed, this);
    evbuffer_free(out);
    if (connection_ != nullptr) {
      bufferevent* bev = evhttp_connection_get_bufferevent(connection_);
      buffered_.store(static_cast<int64_t>(evbuffer_get_length(bufferevent_get_output(bev))));
    }
  }

  // Everything written reached the socket: resume a paused upstream.
  static void OnFlushed(evhttp_connection*, void* self) {
    auto* call = static_cast<ChatCall*>(self);
    call->buffered_.store(0);
    if (call->unsent_.load() < kResumeBytes && call->paused_.exchange(false)) {
      std::shared_ptr<ChatExchange> resume;
      {
        absl::MutexLock lock(&call->mu_);
        if (!call->exchange_done_) resume = call->exchange_;
      }
      if (resume) resume->Resume();
    }
  }

  void EndStream(std::string_view tail) {
    Write(tail);
    ForgetConnection();
    evhttp_send_reply_end(request_);
    Done();
  }

  OpenAiChatRequest chat_;          // set on the event thread before the exchange; read-only after
  ChunkHeader header_;              // likewise
  std::string text_;                // non-streaming: the reply so far (upstream loop thread)
  bool streaming_ = false;          // event thread: the 200 and its headers are out
  std::atomic<int64_t> unsent_{0};  // event bytes posted, not yet handed to evhttp
  std::atomic<int64_t> buffered_{0};  // bytes in the connection's output buffer
  std::atomic<bool> paused_{false};   // Congested() said yes; resume once drained

  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> allowance_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<ChatExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

// POST /v1/embeddings.
class EmbedCall final : public HttpFrontDoor::Call {
 public:
  using Call::Call;

  void Run() {
    authorization_ = Headers("Authorization");
    absl::StatusOr<std::string> body = Body();
    absl::StatusOr<OpenAiEmbedRequest> parsed =
        body.ok() ? ParseOpenAiEmbedRequest(*body)
                  : absl::StatusOr<OpenAiEmbedRequest>(body.status());
    if (parsed.ok()) embed_ = *std::move(parsed);
    ExchangeRequest r = BeginRequest(RequestMethod::kEmbed);
    absl::Status status = parsed.status();
    if (status.ok()) {
      status = AdmitEmbedRequest(
          env_, [this](const RuntimeConfig&) { return Credentials(); }, absl::InfiniteFuture(),
          &embed_.request, &r);
    }
    request_id_ = embed_.request.request_id();
    if (!status.ok()) {
      EmitRefused(env_->finished, r, status, *env_->clock);
      ReplyError(status);
      return;
    }
    Ref();  // the admission step
    AdmitToLimits(
        env_,
        [this](const std::string& key, const std::string& value) {
          absl::MutexLock lock(&mu_);
          allowance_.emplace_back(key, value);
        },
        std::move(r), EmbedSize(embed_.request),
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

  void Cancel() override {
    std::shared_ptr<EmbedExchange> cancel;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!exchange_done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
  }

 private:
  void StartExchange(ExchangeRequest r) {
    Ref();  // the exchange's reference
    auto exchange = EmbedExchange::Create(
        std::move(r), &embed_.request,
        [this](const absl::Status& s, const v1::EmbedResponse& response) {
          {
            absl::MutexLock lock(&mu_);
            exchange_done_ = true;
          }
          std::string body =
              s.ok() ? EmbeddingListJson(response, embed_.request.capability(), embed_.base64) : "";
          PostHere([this, s, body = std::move(body)] {
            if (!s.ok()) {
              ReplyError(s);
              return;
            }
            {
              absl::MutexLock lock(&mu_);
              for (const auto& [key, value] : allowance_) AddHeader(key, value);
            }
            Reply(200, "application/json", body);
          });
          Unref();
        },
        *env_->transport, *env_->resilience, env_->finished, env_->metrics);
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = cancelled_;
    }
    if (gone) exchange->Cancel();
    exchange->Start();
  }

  OpenAiEmbedRequest embed_;

  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> allowance_ ABSL_GUARDED_BY(mu_);
  bool exchange_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<EmbedExchange> exchange_ ABSL_GUARDED_BY(mu_);
};

// GET /v1/models and /v1/models/{id}: answered on the event thread from the snapshot.
class ModelsCall final : public HttpFrontDoor::Call {
 public:
  using Call::Call;

  void Run(std::string_view one) {
    authorization_ = Headers("Authorization");
    std::shared_ptr<const RuntimeConfig> config = env_->config->Get();
    if (config == nullptr) {
      absl::Status status = absl::UnavailableError("gateway has no configuration yet");
      AttachReason(status, "NOT_READY");
      ReplyError(status);
      return;
    }
    const CallerCredentials credentials = Credentials();
    if (!one.empty()) {
      absl::StatusOr<Authorization> a = Authorize(*config, credentials, one, env_->clock->Now());
      if (!a.ok()) {
        ReplyError(a.status());
      } else {
        Reply(200, "application/json", ModelJson(one));
      }
      return;
    }
    std::vector<std::string> allowed;
    absl::Status unauthenticated;
    for (const std::string& capability : config->Capabilities()) {
      absl::StatusOr<Authorization> a =
          Authorize(*config, credentials, capability, env_->clock->Now());
      if (a.ok()) {
        allowed.push_back(capability);
      } else if (a.status().code() == absl::StatusCode::kUnauthenticated) {
        unauthenticated = a.status();
      }
    }
    // A bad key, or no key where every route is closed: 401, as for any other request.
    if (allowed.empty() && !unauthenticated.ok()) {
      ReplyError(unauthenticated);
      return;
    }
    Reply(200, "application/json", ModelListJson(allowed));
  }

  void Cancel() override {}
};

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
  door->thread_ = std::thread([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
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
      (new ChatCall(this, NextEnv(), request))->Run();
    } else {
      (new EmbedCall(this, NextEnv(), request))->Run();
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
    (new ModelsCall(this, NextEnv(), request))->Run(one);
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
