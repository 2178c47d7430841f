#include "tools/fake_provider/fake_provider.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <cstdlib>
#include <ctime>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/fake_provider/json_writer.h"
#include "tools/fake_provider/response_plan.h"

namespace turnpike::fake_provider {
namespace {

constexpr std::string_view kControlPrefix = "/_fake/";
constexpr std::string_view kFaultHeaderPrefix = "x-fake-";

const char* MethodName(evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_TRACE:
      return "TRACE";
    case EVHTTP_REQ_CONNECT:
      return "CONNECT";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
  }
  return "UNKNOWN";
}

// Owns an evkeyvalq filled by evhttp_parse_query_str.
class QueryParams {
 public:
  explicit QueryParams(const char* query) {
    TAILQ_INIT(&kv_);
    if (query != nullptr) evhttp_parse_query_str(query, &kv_);
  }
  ~QueryParams() { evhttp_clear_headers(&kv_); }
  QueryParams(const QueryParams&) = delete;
  QueryParams& operator=(const QueryParams&) = delete;
  evkeyvalq* get() { return &kv_; }
  const char* Find(const char* key) { return evhttp_find_header(&kv_, key); }

 private:
  evkeyvalq kv_;
};

// The credential after "Bearer " in an Authorization header, or nullptr.
const char* BearerToken(evkeyvalq* headers) {
  const char* auth = evhttp_find_header(headers, "Authorization");
  if (auth == nullptr) return nullptr;
  if (!absl::StartsWithIgnoreCase(auth, "bearer ")) return nullptr;
  auth += 7;
  while (*auth == ' ') ++auth;
  return auth;
}

std::string OkJson(std::string_view what, size_t n) {
  return absl::StrCat("{\"", Absl(what), "\":", n, "}");
}

std::string ControlError(std::string_view message) {
  return absl::StrCat("{\"error\":{\"message\":", JsonString(message),
                      ",\"type\":\"fake_provider_error\",\"param\":null,\"code\":null}}");
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeProvider>> FakeProvider::Create(event_base* base,
                                                                   const Options& options) {
  if (base == nullptr) return absl::InvalidArgumentError("no event_base");
  if (options.default_chunks < 0 || options.default_chunk_delay_ms < 0 || options.listen_port < 0 ||
      options.listen_port > 65535) {
    return absl::InvalidArgumentError("negative chunks/delay or bad port");
  }
  std::unique_ptr<FakeProvider> server(new FakeProvider(base, options));
  server->http_ = evhttp_new(base);
  if (server->http_ == nullptr) return absl::InternalError("evhttp_new failed");
  evhttp* http = server->http_;
  evhttp_set_gencb(http, &FakeProvider::OnRequestThunk, server.get());
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                       EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
  evhttp_set_max_body_size(http, static_cast<ev_ssize_t>(options.max_body_bytes));
  evhttp_set_timeout(http, options.idle_timeout_s);
  evhttp_set_default_content_type(http, "application/json");
  evhttp_bound_socket* handle = evhttp_bind_socket_with_handle(
      http, options.listen_host.c_str(), static_cast<uint16_t>(options.listen_port));
  if (handle == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", options.listen_host, ":", options.listen_port));
  }
  // Accepted sockets inherit TCP_NODELAY on Linux: a paced chunk must not wait for the peer's
  // delayed ACK (Nagle), or chunk gaps measured through the fake mean nothing.
  int one = 1;
  setsockopt(evhttp_bound_socket_get_fd(handle), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (getsockname(evhttp_bound_socket_get_fd(handle), reinterpret_cast<sockaddr*>(&ss), &len) !=
      0) {
    return absl::InternalError("getsockname failed");
  }
  server->port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return server;
}

FakeProvider::FakeProvider(event_base* base, const Options& options)
    : base_(base), options_(options), log_(options.max_recorded_requests) {}

FakeProvider::~FakeProvider() {
  // Sessions hold timers and requests; drop them before evhttp_free() tears down the
  // connections underneath them.
  std::unordered_set<ResponseSession*> sessions;
  sessions.swap(sessions_);
  for (ResponseSession* s : sessions) s->Abandon();
  if (http_ != nullptr) evhttp_free(http_);
}

void FakeProvider::OnRequestThunk(evhttp_request* req, void* arg) {
  static_cast<FakeProvider*>(arg)->OnRequest(req);
}

void FakeProvider::OnRequest(evhttp_request* req) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
  const char* query = uri != nullptr ? evhttp_uri_get_query(uri) : nullptr;
  std::string path = raw_path != nullptr && *raw_path != '\0' ? raw_path : "/";
  if (path.find('%') != std::string::npos) {
    size_t n = 0;
    if (char* decoded = evhttp_uridecode(path.c_str(), 0, &n)) {
      path.assign(decoded, n);
      std::free(decoded);
    }
  }
  if (absl::StartsWith(path, Absl(kControlPrefix))) {
    HandleControl(req, path);
    return;
  }

  evbuffer* in = evhttp_request_get_input_buffer(req);
  const size_t body_len = evbuffer_get_length(in);
  const char* body_ptr = body_len > 0 ? reinterpret_cast<const char*>(evbuffer_pullup(in, -1)) : "";
  const std::string_view body(body_ptr, body_len);
  const evhttp_cmd_type cmd = evhttp_request_get_command(req);

  RecordedRequest record;
  record.method = MethodName(cmd);
  record.path = path;
  record.query = query != nullptr ? query : "";
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  for (evkeyval* kv = headers->tqh_first; kv != nullptr; kv = kv->next.tqe_next) {
    record.headers.emplace_back(absl::AsciiStrToLower(kv->key), kv->value);
  }
  record.body.assign(body);
  log_.Add(std::move(record));
  ++stats_.requests;

  const std::optional<Route> route = MatchRoute(path);
  if (!route || cmd != EVHTTP_REQ_POST) {
    ErrorSpec spec;
    spec.status = 404;
    spec.kind = ErrorKind::kNotFound;
    spec.message = absl::StrCat("Invalid URL (", MethodName(cmd), " ", path, ")");
    HttpReply reply = WireFor(Provider::kOpenAI).Error(spec);
    SendJson(req, reply.status, reply.body);
    return;
  }
  HandleProvider(req, *route, query, body);
}

std::optional<ErrorSpec> FakeProvider::CheckCredentials(const Route& route, evkeyvalq* headers,
                                                        evkeyvalq* query) const {
  if (options_.api_key.empty() || IsLocalServer(route.provider)) return std::nullopt;
  const char* presented = nullptr;
  switch (route.provider) {
    case Provider::kAzure:
      presented = evhttp_find_header(headers, "api-key");
      if (presented == nullptr) presented = BearerToken(headers);
      break;
    case Provider::kAnthropic:
      presented = evhttp_find_header(headers, "x-api-key");
      if (presented == nullptr) presented = BearerToken(headers);
      break;
    case Provider::kGemini:
      presented = evhttp_find_header(headers, "x-goog-api-key");
      if (presented == nullptr) presented = evhttp_find_header(query, "key");
      break;
    default:
      presented = BearerToken(headers);
  }
  if (presented != nullptr && options_.api_key == presented) return std::nullopt;
  ErrorSpec spec;
  spec.status = 401;  // Gemini's wire turns this into its 400 API_KEY_INVALID
  if (presented == nullptr || *presented == '\0') {
    spec.kind = ErrorKind::kAuthMissing;
  } else {
    spec.kind = ErrorKind::kAuthInvalid;
    spec.presented_key = presented;
  }
  return spec;
}

void FakeProvider::HandleProvider(evhttp_request* req, const Route& route, const char* query,
                                  std::string_view body) {
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  QueryParams params(query);
  const uint64_t id = next_id_++;

  PlanInput in;
  in.route = route;
  in.default_chunks = options_.default_chunks;
  in.default_chunk_delay_ms = options_.default_chunk_delay_ms;
  in.created = static_cast<int64_t>(std::time(nullptr));
  in.request_id = absl::StrFormat("req_fake%012d", id);
  switch (route.provider) {
    case Provider::kAnthropic:
      in.response_id = absl::StrFormat("msg_fake%016d", id);
      break;
    case Provider::kGemini:
      in.response_id = absl::StrFormat("fakeResp%010d", id);
      break;
    default:
      in.response_id = route.endpoint == Endpoint::kEmbeddings
                           ? absl::StrFormat("embd-fake%010d", id)
                           : absl::StrFormat("chatcmpl-fake%010d", id);
  }
  const char* alt = params.Find("alt");
  in.gemini_alt_sse = alt != nullptr && std::string_view(alt) == "sse";

  // Faults: queue head, then [[fake ...]] directives, then x-fake-* headers.
  if (!fault_queue_.empty()) {
    in.fault = std::move(fault_queue_.front());
    fault_queue_.pop_front();
  }
  in.parsed = parser_.Parse(route, body);
  if (in.parsed.ok()) {
    for (const std::string& text : in.parsed->directive_texts) {
      absl::StatusOr<FaultSpec> directive = ParseFaultDirectives(text);
      if (!directive.ok()) {
        in.fault_error = std::string(directive.status().message());
        break;
      }
      in.fault.MergeFrom(*directive);
    }
  }
  FaultSpec header_faults;
  for (evkeyval* kv = headers->tqh_first; kv != nullptr; kv = kv->next.tqe_next) {
    if (!absl::StartsWithIgnoreCase(kv->key, Absl(kFaultHeaderPrefix))) continue;
    absl::Status st = header_faults.Set(kv->key + kFaultHeaderPrefix.size(), kv->value);
    if (!st.ok() && in.fault_error.empty()) in.fault_error = std::string(st.message());
  }
  in.fault.MergeFrom(header_faults);

  in.pre_error = CheckCredentials(route, headers, params.get());
  if (!in.pre_error && route.provider == Provider::kAnthropic &&
      evhttp_find_header(headers, "anthropic-version") == nullptr) {
    ErrorSpec spec;
    spec.kind = ErrorKind::kInvalidRequest;
    spec.message = "anthropic-version: header is required";
    in.pre_error = spec;
  }
  if (!in.pre_error && route.provider == Provider::kAzure &&
      params.Find("api-version") == nullptr) {
    ErrorSpec spec;
    spec.kind = ErrorKind::kInvalidRequest;
    spec.message = "The api-version query parameter (?api-version=) is required for all requests.";
    in.pre_error = spec;
  }
  Dispatch(req, PlanProviderResponse(in));
}

void FakeProvider::Dispatch(evhttp_request* req, ResponsePlan plan) {
  if (ResponseSession::CanSendImmediately(plan)) {
    if (plan.is_stream) ++stats_.completed_streams;
    ResponseSession::SendImmediately(req, plan);
    return;
  }
  if (plan.is_stream) ++stats_.active_streams;
  ResponseSession::Options opts;
  opts.stall_timeout_ms = options_.stall_timeout_ms;
  opts.idle_timeout_s = options_.idle_timeout_s;
  auto* session = new ResponseSession(base_, req, std::move(plan), opts, this);
  sessions_.insert(session);
  session->Start();  // may complete (and delete itself) right away
}

void FakeProvider::OnSessionDone(ResponseSession* session, ResponseSession::Outcome outcome) {
  sessions_.erase(session);
  if (!session->is_stream()) {
    if (outcome == ResponseSession::Outcome::kAborted) ++stats_.aborted_replies;
    return;
  }
  if (stats_.active_streams > 0) --stats_.active_streams;
  switch (outcome) {
    case ResponseSession::Outcome::kCompleted:
      ++stats_.completed_streams;
      break;
    case ResponseSession::Outcome::kAborted:
      ++stats_.aborted_streams;
      break;
    case ResponseSession::Outcome::kReset:
      ++stats_.reset_streams;
      break;
  }
}

void FakeProvider::SendJson(evhttp_request* req, int status, const std::string& body) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evbuffer_add(evhttp_request_get_output_buffer(req), body.data(), body.size());
  evhttp_send_reply(req, status, ReasonPhrase(status).data(), nullptr);
}

void FakeProvider::HandleControl(evhttp_request* req, std::string_view path) {
  const evhttp_cmd_type cmd = evhttp_request_get_command(req);
  const std::string_view what = path.substr(kControlPrefix.size());
  if (what == "requests" && cmd == EVHTTP_REQ_GET) {
    SendJson(req, 200, log_.ToJson());
  } else if (what == "requests" && cmd == EVHTTP_REQ_DELETE) {
    const size_t n = log_.size();
    log_.Clear();
    SendJson(req, 200, OkJson("cleared", n));
  } else if (what == "stats" && cmd == EVHTTP_REQ_GET) {
    SendJson(req, 200, StatsJson(stats_, fault_queue_.size()));
  } else if (what == "faults" && cmd == EVHTTP_REQ_POST) {
    evbuffer* in = evhttp_request_get_input_buffer(req);
    const size_t len = evbuffer_get_length(in);
    const char* data = len > 0 ? reinterpret_cast<const char*>(evbuffer_pullup(in, -1)) : "";
    absl::StatusOr<std::vector<FaultSpec>> faults =
        ParseFaultQueueJson(std::string_view(data, len));
    if (!faults.ok()) {
      SendJson(req, 400, ControlError(std::string(faults.status().message())));
      return;
    }
    for (FaultSpec& f : *faults) fault_queue_.push_back(std::move(f));
    SendJson(req, 200, OkJson("queued", fault_queue_.size()));
  } else if (what == "faults" && cmd == EVHTTP_REQ_DELETE) {
    const size_t n = fault_queue_.size();
    fault_queue_.clear();
    SendJson(req, 200, OkJson("cleared", n));
  } else if (what == "faults" && cmd == EVHTTP_REQ_GET) {
    std::string out = "[";
    for (size_t i = 0; i < fault_queue_.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(fault_queue_[i].ToJson());
    }
    out.push_back(']');
    SendJson(req, 200, out);
  } else if (what == "reset" && cmd == EVHTTP_REQ_POST) {
    log_.Clear();
    fault_queue_.clear();
    const uint64_t active = stats_.active_streams;  // still in flight; keep counting them
    stats_ = ProviderStats{};
    stats_.active_streams = active;
    SendJson(req, 200, "{\"reset\":true}");
  } else if (what == "health" && cmd == EVHTTP_REQ_GET) {
    SendJson(req, 200, "{\"status\":\"ok\"}");
  } else {
    SendJson(req, 404,
             ControlError(absl::StrCat("no control endpoint ", MethodName(cmd), " ", Absl(path))));
  }
}

}  // namespace turnpike::fake_provider
