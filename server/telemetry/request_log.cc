#include "server/telemetry/request_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/json_writer.h"
#include "common/redactor.h"
#include "common/string_view_compat.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

double Millis(absl::Duration d) { return absl::ToDoubleMicroseconds(d) / 1000.0; }

const char* PolicyName(config::v1::ContentPolicy policy) {
  switch (policy) {
    case config::v1::CONTENT_POLICY_HASH:
      return "HASH";
    case config::v1::CONTENT_POLICY_REDACTED:
      return "REDACTED";
    case config::v1::CONTENT_POLICY_FULL:
      return "FULL";
    default:
      return "NONE";
  }
}

// One text under the policy (PolicyText, server/exchange/request_finished.h).
void WriteText(JsonWriter& w, const RequestContent& content, std::string_view text, size_t& budget,
               bool& truncated) {
  w.String(PolicyText(content, text, budget, truncated));
}

void WriteContent(JsonWriter& w, const RequestContent& content, size_t excerpt_max_bytes) {
  w.Key("request_sha256").String(Sha256Hex(CanonicalRequest(content)));
  const bool chat = content.inputs.empty();
  if (chat) w.Key("reply_sha256").String(Sha256Hex(content.reply));
  if (content.policy == config::v1::CONTENT_POLICY_HASH) return;
  bool truncated = false;
  size_t budget = excerpt_max_bytes;
  w.Key("request").BeginObject();
  if (chat) {
    w.Key("messages").BeginArray();
    for (const auto& [role, text] : content.messages) {
      w.BeginObject().Key("role").String(role).Key("content");
      WriteText(w, content, text, budget, truncated);
      w.EndObject();
    }
  } else {
    w.Key("inputs").BeginArray();
    for (const std::string& input : content.inputs) WriteText(w, content, input, budget, truncated);
  }
  w.EndArray().EndObject();
  if (chat) {
    budget = excerpt_max_bytes;
    w.Key("reply");
    WriteText(w, content, content.reply, budget, truncated);
  }
  if (truncated) w.Key("content_truncated").Bool(true);
}

}  // namespace

std::string RequestLog::FormatLine(const RequestFinished& e, size_t excerpt_max_bytes) {
  JsonWriter w;
  w.BeginObject();
  w.Key("time").String(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.start_time, absl::UTCTimeZone()));
  w.Key("request_id").String(e.request_id);
  w.Key("trace_id").String(e.trace_id);
  w.Key("method").String(RequestMethodName(e.method));
  w.Key("caller").String(e.caller);
  w.Key("end_user").String(e.end_user);
  w.Key("capability").String(e.capability);
  w.Key("provider").String(e.provider);
  w.Key("model").String(e.model);
  w.Key("credential").String(e.credential);
  w.Key("status").String(absl::StatusCodeToString(e.status.code()));
  if (!e.status.ok()) w.Key("error").String(Std(e.status.message()));
  w.Key("attempts").BeginArray();
  for (const v1::Attempt& a : e.attempts) {
    w.BeginObject();
    w.Key("provider").String(a.provider()).Key("model").String(a.model());
    w.Key("outcome").String(a.outcome()).Key("http_status").Int(a.http_status());
    w.Key("latency_ms").Double(static_cast<double>(a.latency_us()) / 1000.0);
    if (!a.detail().empty()) w.Key("detail").String(a.detail());
    w.EndObject();
  }
  w.EndArray();
  w.Key("input_tokens").Int(e.input_tokens).Key("output_tokens").Int(e.output_tokens);
  w.Key("usage_estimated").Bool(e.usage_estimated);
  w.Key("cost_usd_micros").Int(e.cost_usd_micros).Key("cost_known").Bool(e.cost_known);
  w.Key("latency_ms").Double(Millis(e.latency));
  w.Key("ttft_ms");
  if (e.time_to_first_token == absl::InfiniteDuration()) {
    w.Null();
  } else {
    w.Double(Millis(e.time_to_first_token));
  }
  w.Key("cache_hit").Bool(e.cache_hit).Key("degraded").Bool(e.degraded);
  w.Key("refused").Bool(e.refused).Key("partial").Bool(e.partial);
  w.Key("config_version").String(e.config_version);
  if (!e.tags.empty()) {
    w.Key("tags").BeginObject();
    for (const auto& [key, value] : e.tags) w.Key(key).String(value);
    w.EndObject();
  }
  w.Key("content_policy")
      .String(
          PolicyName(e.content != nullptr ? e.content->policy : config::v1::CONTENT_POLICY_NONE));
  if (e.content != nullptr && e.content->policy != config::v1::CONTENT_POLICY_NONE &&
      e.content->redactor != nullptr) {
    WriteContent(w, *e.content, excerpt_max_bytes);
  }
  w.EndObject();
  return w.Release();
}

absl::StatusOr<std::unique_ptr<RequestLog>> RequestLog::Create(Options options) {
  if (options.path.empty()) return absl::InvalidArgumentError("the request log needs a path");
  if (options.max_bytes < 0 || options.max_files < 1 || options.queue_capacity == 0) {
    return absl::InvalidArgumentError(
        "request log: max_bytes must be >= 0, max_files >= 1, queue_capacity >= 1");
  }
  int fd = STDOUT_FILENO;
  int64_t size = 0;
  if (options.path != "stdout") {
    fd = open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot open the request log ", options.path, ": ", std::strerror(errno)));
    }
    struct stat st;
    if (fstat(fd, &st) == 0) size = st.st_size;
  }
  return std::unique_ptr<RequestLog>(new RequestLog(std::move(options), fd, size));
}

RequestLog::RequestLog(Options options, int fd, int64_t size)
    : options_(std::move(options)),
      to_stdout_(options_.path == "stdout"),
      fd_(fd),
      file_bytes_(size),
      writer_([this] { WriterLoop(); }) {}

RequestLog::~RequestLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  if (!to_stdout_ && fd_ >= 0) close(fd_);
}

void RequestLog::OnRequestFinished(const RequestFinished& event) {
  // Copied outside the lock; the text itself (under a content policy) is shared, not copied.
  RequestFinished copy = event;
  // The ticket settles admission when its last holder lets go; the log must not delay that.
  copy.admission.reset();
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.queue_capacity || stopping_) {
    ++stats_.dropped;
    return;
  }
  queue_.push_back(std::move(copy));
  ++accepted_;
}

void RequestLog::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = accepted_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return handled_ >= target; };
  mu_.Await(absl::Condition(&done));
}

RequestLog::Stats RequestLog::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void RequestLog::WriterLoop() {
  NameThisThread("tp-request-log");
  std::deque<RequestFinished> batch;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&has_work));
      if (queue_.empty()) return;  // stopping, and everything is written
      batch.swap(queue_);
    }
    std::string buffer;
    for (const RequestFinished& event : batch) {
      std::string line = FormatLine(event, options_.excerpt_max_bytes);
      line.push_back('\n');
      const int64_t size = static_cast<int64_t>(line.size());
      if (!to_stdout_ && options_.max_bytes > 0 &&
          file_bytes_ + static_cast<int64_t>(buffer.size()) + size > options_.max_bytes &&
          file_bytes_ + static_cast<int64_t>(buffer.size()) > 0) {
        Write(buffer);
        buffer.clear();
        Rotate();
      }
      buffer += line;
    }
    Write(buffer);
    {
      absl::MutexLock lock(&mu_);
      stats_.written += static_cast<int64_t>(batch.size());
      handled_ += static_cast<int64_t>(batch.size());
    }
    batch.clear();
  }
}

void RequestLog::Write(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size() && fd_ >= 0) {
    const ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::MutexLock lock(&mu_);
      ++stats_.write_errors;
      return;
    }
    off += static_cast<size_t>(n);
  }
  file_bytes_ += static_cast<int64_t>(off);
}

void RequestLog::Rotate() {
  if (fd_ >= 0) close(fd_);
  const std::string& p = options_.path;
  for (int i = options_.max_files - 1; i >= 1; --i) {
    std::rename(absl::StrCat(p, ".", i).c_str(), absl::StrCat(p, ".", i + 1).c_str());
  }
  std::rename(p.c_str(), absl::StrCat(p, ".1").c_str());
  fd_ = open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  file_bytes_ = 0;
  absl::MutexLock lock(&mu_);
  ++stats_.rotations;
  if (fd_ < 0) ++stats_.write_errors;
}

}  // namespace turnpike
