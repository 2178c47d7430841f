// The transfers of an UpstreamLoop (server/upstream/upstream_loop.h): how one starts on a reused
// easy handle, ends exactly once (done, failed, cancelled or past its first-byte or idle limit),
// and what libcurl's header and write callbacks tell its handler. Runs on the loop thread only.
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/upstream/curl_easy.h"
#include "server/upstream/retry_after.h"
#include "server/upstream/upstream_loop_transfer.h"

namespace turnpike {

void UpstreamLoop::StartTransfer(std::unique_ptr<Transfer> owned) {
  Transfer* t = owned.release();
  CURL* easy = nullptr;
  if (!idle_easy_.empty()) {
    easy = idle_easy_.back();
    idle_easy_.pop_back();
  } else {
    easy = curl_easy_init();
  }
  if (easy == nullptr) {
    std::shared_ptr<TransferHandler> handler = std::move(t->handler);
    delete t;
    handler->OnComplete(absl::InternalError("curl_easy_init failed"));
    return;
  }
  t->easy = easy;
  t->headers = ConfigureEasy(easy, t->request, t->options,
                             {.write = &UpstreamLoop::WriteCallback,
                              .header = &UpstreamLoop::HeaderCallback,
                              .user_data = t,
                              .error_buffer = t->error});
  t->started = clock_.MonotonicNow();
  t->last_data = t->started;
  transfers_[t->id] = t;
  active_.fetch_add(1, std::memory_order_relaxed);
  curl_multi_add_handle(static_cast<CURLM*>(multi_), easy);
}

void UpstreamLoop::FinishTransfer(Transfer* t, absl::Status status) {
  transfers_.erase(t->id);
  active_.fetch_sub(1, std::memory_order_relaxed);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), t->easy);
  // Easy handles are reused (reset to defaults; connections stay in the multi handle's cache).
  if (idle_easy_.size() < kMaxIdleEasyHandles) {
    curl_easy_reset(t->easy);
    idle_easy_.push_back(t->easy);
  } else {
    curl_easy_cleanup(t->easy);
  }
  curl_slist_free_all(t->headers);
  std::shared_ptr<TransferHandler> handler = std::move(t->handler);
  delete t;
  handler->OnComplete(std::move(status));
}

void UpstreamLoop::CheckDone() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  int pending;
  while (CURLMsg* msg = curl_multi_info_read(multi, &pending)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    if (t == nullptr) continue;
    const CURLcode code = msg->data.result;
    FinishTransfer(t, code == CURLE_OK ? absl::OkStatus() : CurlStatus(code, t->error));
  }
}

void UpstreamLoop::CheckDeadlines(absl::Time now) {
  if (transfers_.empty()) return;
  std::vector<std::pair<Transfer*, absl::Status>> expired;
  for (auto& [id, t] : transfers_) {
    if (t->paused) continue;
    if (!t->got_data && now - t->started > t->options.first_byte_timeout) {
      expired.emplace_back(t, absl::DeadlineExceededError(absl::StrCat(
                                  "upstream sent no data within ",
                                  absl::FormatDuration(t->options.first_byte_timeout))));
    } else if (t->got_data && now - t->last_data > t->options.idle_timeout) {
      expired.emplace_back(
          t, absl::DeadlineExceededError(absl::StrCat(
                 "upstream stalled: no data for ", absl::FormatDuration(t->options.idle_timeout))));
    }
  }
  for (auto& [t, status] : expired) FinishTransfer(t, std::move(status));
}

size_t UpstreamLoop::HeaderCallback(char* data, size_t size, size_t nmemb, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * nmemb;
  absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->retry_after_ms = 0;  // a new header block (after a 1xx) starts over
    return n;
  }
  if (line == "\r\n" || line == "\n") {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && !t->response_started) {
      t->response_started = true;
      t->handler->OnResponseStart(static_cast<int>(code), t->retry_after_ms);
    }
    return n;
  }
  t->retry_after_ms = ParseRetryHeader(line, t->loop->clock_.Now(), t->retry_after_ms);
  return n;
}

size_t UpstreamLoop::WriteCallback(char* data, size_t size, size_t nmemb, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * nmemb;
  if (!t->response_started) {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->response_started = true;
    t->handler->OnResponseStart(static_cast<int>(code), t->retry_after_ms);
  }
  switch (t->handler->OnData(std::string_view(data, n))) {
    case TransferHandler::DataResult::kPause:
      t->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    case TransferHandler::DataResult::kAbort:
      return 0;
    case TransferHandler::DataResult::kContinue:
      break;
  }
  t->got_data = true;
  t->last_data = t->loop->clock_.MonotonicNow();
  return n;
}

}  // namespace turnpike
