#include "tools/bench/http_load.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "tools/bench/sse_scanner.h"

namespace turnpike::bench {

std::string ChatRequestBody(const HttpTarget& target) {
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String(target.model);
  w.Key("messages").BeginArray();
  w.BeginObject().Key("role").String("user").Key("content").String(target.prompt).EndObject();
  w.EndArray();
  w.Key("stream").Bool(!target.unary);
  if (!target.unary)
    w.Key("stream_options").BeginObject().Key("include_usage").Bool(true).EndObject();
  w.Key("max_completion_tokens").Int(target.max_tokens);
  w.EndObject();
  return w.Release();
}

namespace {

class HttpWorker;

struct HttpCall {
  CURL* easy = nullptr;
  HttpWorker* worker = nullptr;
  CallTimer timer;
  SseScanner scanner;
  char error[CURL_ERROR_SIZE] = {};
};

class HttpWorker {
 public:
  HttpWorker(const LoadOptions& options, const HttpTarget& target, int index, int workers,
             const std::string& body, curl_slist* headers)
      : options_(options),
        target_(target),
        index_(index),
        workers_(workers),
        body_(body),
        headers_(headers),
        url_(absl::StrCat(target.base_url, "/v1/chat/completions")),
        multi_(curl_multi_init()) {}

  ~HttpWorker() {
    for (auto& call : calls_) curl_easy_cleanup(call->easy);
    curl_multi_cleanup(multi_);
  }

  void Run(int64_t start_ns);
  Recorder& recorder() { return *recorder_; }

  // libcurl write callback: timestamps SSE events as they arrive.
  static size_t OnBody(char* data, size_t size, size_t count, void* arg);

 private:
  void Start(int64_t intended_ns);
  void Complete(HttpCall* call, CURLcode result);
  HttpCall* NewCall();

  // Constant after construction.
  const LoadOptions& options_;
  const HttpTarget& target_;
  const int index_;
  const int workers_;
  const std::string& body_;
  curl_slist* const headers_;
  const std::string url_;
  CURLM* const multi_;

  // Owned by the worker's thread.
  std::optional<Schedule> schedule_;
  std::optional<Recorder> recorder_;
  std::vector<std::unique_ptr<HttpCall>> calls_;
  std::vector<HttpCall*> free_;
  int inflight_ = 0;
};

size_t HttpWorker::OnBody(char* data, size_t size, size_t count, void* arg) {
  const size_t len = size * count;
  auto* call = static_cast<HttpCall*>(arg);
  if (call->worker->target_.unary) return len;
  const int64_t now = NowNs();
  const SseScanner::Events events = call->scanner.Feed(std::string_view(data, len));
  Recorder& recorder = *call->worker->recorder_;
  for (int i = 0; i < events.data - events.content; ++i)
    call->timer.OnMessage(recorder, now, false);
  for (int i = 0; i < events.content; ++i) call->timer.OnMessage(recorder, now, true);
  return len;
}

HttpCall* HttpWorker::NewCall() {
  auto call = std::make_unique<HttpCall>();
  call->worker = this;
  call->easy = curl_easy_init();
  CURL* e = call->easy;
  curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpWorker::OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call.get());
  curl_easy_setopt(e, CURLOPT_PRIVATE, call.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, schedule_->deadline_ns() / 1'000'000)));
  calls_.push_back(std::move(call));
  return calls_.back().get();
}

void HttpWorker::Start(int64_t intended_ns) {
  HttpCall* call;
  if (free_.empty()) {
    call = NewCall();
  } else {
    call = free_.back();
    free_.pop_back();
  }
  call->scanner.Reset();
  call->error[0] = '\0';
  call->timer.Start(*recorder_, intended_ns, schedule_->stall_ns());
  curl_multi_add_handle(multi_, call->easy);
  ++inflight_;
}

void HttpWorker::Complete(HttpCall* call, CURLcode result) {
  const int64_t now = NowNs();
  long code = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &code);
  std::string error;
  if (result != CURLE_OK) {
    error = absl::StrCat("curl: ", curl_easy_strerror(result));
  } else if (code != 200) {
    error = absl::StrCat("http_", code);
  } else if (!target_.unary && !call->scanner.done()) {
    error = "stream_without_done";
  }
  call->timer.Finish(*recorder_, now, error);
  curl_multi_remove_handle(multi_, call->easy);
  free_.push_back(call);
  --inflight_;
  if (!schedule_->open_loop() && schedule_->TakeClosed(now)) Start(now);
}

void HttpWorker::Run(int64_t start_ns) {
  schedule_.emplace(options_, index_, workers_, start_ns);
  recorder_.emplace(schedule_->window());
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(std::max(schedule_->slots(), 64)));
  if (!schedule_->open_loop()) {
    for (int i = 0; i < schedule_->slots(); ++i) {
      const int64_t now = NowNs();
      if (!schedule_->TakeClosed(now)) break;
      Start(now);
    }
  }
  while (inflight_ > 0 || (schedule_->open_loop() && schedule_->NextArrival() >= 0)) {
    int timeout_ms = 100;
    if (schedule_->open_loop()) {
      const int64_t next = schedule_->NextArrival();
      if (next >= 0) {
        timeout_ms =
            static_cast<int>(std::clamp<int64_t>((next - NowNs() + 999'999) / 1'000'000, 0, 100));
      }
    }
    curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    int running = 0;
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      HttpCall* call = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
      Complete(call, msg->data.result);
    }
    if (schedule_->open_loop()) {
      const int64_t now = NowNs();
      for (int64_t at = schedule_->NextArrival(); at >= 0 && at <= now;
           at = schedule_->NextArrival()) {
        schedule_->TakeArrival();
        if (inflight_ >= schedule_->max_inflight()) {
          ++recorder_->not_sent;
          continue;
        }
        Start(at);
      }
    }
  }
}

}  // namespace

absl::StatusOr<Recorder> RunHttpLoad(const LoadOptions& options, const HttpTarget& target) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string body = ChatRequestBody(target);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for big prompts
  if (!target.api_key.empty()) {
    headers =
        curl_slist_append(headers, absl::StrCat("Authorization: Bearer ", target.api_key).c_str());
  }
  for (const std::string& h : target.headers) headers = curl_slist_append(headers, h.c_str());

  const int workers = Workers(options);
  std::vector<std::unique_ptr<HttpWorker>> pool;
  for (int w = 0; w < workers; ++w) {
    pool.push_back(std::make_unique<HttpWorker>(options, target, w, workers, body, headers));
  }
  const int64_t start_ns = NowNs();
  std::vector<std::thread> threads;
  for (auto& worker : pool) threads.emplace_back([&worker, start_ns] { worker->Run(start_ns); });
  for (auto& t : threads) t.join();
  Recorder merged(pool[0]->recorder().window());
  for (auto& worker : pool) merged.Merge(worker->recorder());
  pool.clear();
  curl_slist_free_all(headers);
  return merged;
}

}  // namespace turnpike::bench
