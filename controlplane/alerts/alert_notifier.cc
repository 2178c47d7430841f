#include "controlplane/alerts/alert_notifier.h"

#include <curl/curl.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/json_writer.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

class CurlPoster final : public HttpPoster {
 public:
  HttpResult PostJson(const std::string& url, const std::string& body,
                      absl::Duration timeout) override {
    static const bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == 0; }();
    if (!initialised) return {0, "libcurl failed to initialise"};
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return {0, "libcurl failed to initialise"};
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(timeout)));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "turnpike-control");
    HttpResult out;
    const CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      out.status = static_cast<int>(code);
    } else {
      // curl_easy_strerror names the failure class only (no URL or host).
      out.error = curl_easy_strerror(rc);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return out;
  }
};

std::string AlertJson(const a::Alert& alert) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(alert, &json, options);
  return json;
}

std::string Headline(const Notification& n) {
  const bool firing = n.event == a::ALERT_STATE_FIRING;
  std::string subject = n.alert.subject().empty() ? "" : absl::StrCat(" (", n.alert.subject(), ")");
  return absl::StrCat(firing ? "[FIRING] " : "[RESOLVED] ", n.alert.rule(), subject, ": ",
                      n.alert.summary());
}

bool Retriable(int status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

}  // namespace

std::unique_ptr<HttpPoster> NewCurlPoster() { return std::make_unique<CurlPoster>(); }

std::string NotificationBody(a::ChannelKind kind, const Notification& n,
                             const std::string& routing_key) {
  const bool firing = n.event == a::ALERT_STATE_FIRING;
  JsonWriter w;
  switch (kind) {
    case a::CHANNEL_KIND_SLACK:
      w.BeginObject().Key("text").String(
          absl::StrCat(firing ? ":rotating_light: " : ":white_check_mark: ", Headline(n),
                       n.description.empty() ? "" : absl::StrCat("\n", n.description)));
      w.EndObject();
      break;
    case a::CHANNEL_KIND_PAGERDUTY: {
      w.BeginObject();
      w.Key("routing_key").String(routing_key);
      w.Key("event_action").String(firing ? "trigger" : "resolve");
      w.Key("dedup_key").String(absl::StrCat("turnpike/", n.alert.rule(), "/", n.alert.subject()));
      std::string summary = Headline(n);
      if (summary.size() > 1024) summary.resize(1024);
      w.Key("payload").BeginObject();
      w.Key("summary").String(summary);
      w.Key("source").String("turnpike-control");
      w.Key("severity").String("error");
      w.Key("custom_details").Raw(AlertJson(n.alert));
      w.EndObject();
      w.EndObject();
      break;
    }
    default:
      w.BeginObject();
      w.Key("status").String(firing ? "firing" : "resolved");
      w.Key("headline").String(Headline(n));
      w.Key("description").String(n.description);
      w.Key("alert").Raw(AlertJson(n.alert));
      w.EndObject();
  }
  return w.Release();
}

std::unique_ptr<AlertNotifier> AlertNotifier::Start(OpenFn open, HttpPoster& poster, Clock& clock,
                                                    Options options, ResultFn result) {
  std::unique_ptr<AlertNotifier> n(
      new AlertNotifier(std::move(open), poster, clock, options, std::move(result)));
  n->thread_ = std::thread([raw = n.get()] { raw->Loop(); });
  return n;
}

AlertNotifier::~AlertNotifier() { Shutdown(); }

void AlertNotifier::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void AlertNotifier::Enqueue(std::vector<Notification> notifications) {
  std::vector<Job> dropped;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.MonotonicNow();
    for (Notification& n : notifications) {
      Job job;
      job.delivery.set_channel(n.channel);
      job.delivery.set_event(n.event);
      job.delivery.set_status(a::DELIVERY_STATUS_PENDING);
      *job.delivery.mutable_queued_at() = ToTimestamp(clock_.Now());
      job.n = std::move(n);
      job.next_at = now;
      if (static_cast<int>(jobs_.size()) >= options_.max_queue) {
        dropped.push_back(std::move(job));
        continue;
      }
      jobs_.push_back(std::move(job));
    }
    wake_ = true;
  }
  for (Job& job : dropped) {
    job.delivery.set_status(a::DELIVERY_STATUS_FAILED);
    job.delivery.set_last_error("dropped: too many notifications waiting");
    result_(job.n.alert.rule(), job.n.alert.subject(), job.n.delivery_id, job.delivery);
  }
}

int AlertNotifier::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(jobs_.size()) + (in_flight_ ? 1 : 0);
}

int64_t AlertNotifier::attempts() const {
  absl::MutexLock lock(&mu_);
  return attempts_;
}

void AlertNotifier::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    auto due = std::min_element(jobs_.begin(), jobs_.end(),
                                [](const Job& x, const Job& y) { return x.next_at < y.next_at; });
    const absl::Time deadline =
        due == jobs_.end() ? clock_.MonotonicNow() + absl::Hours(1) : due->next_at;
    if (due == jobs_.end() || deadline > clock_.MonotonicNow()) {
      wake_ = false;
      clock_.AwaitWithDeadline(mu_,
                               absl::Condition(
                                   +[](AlertNotifier* n) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                     return n->stopping_ || n->wake_;
                                   },
                                   this),
                               deadline);
      continue;
    }
    Job job = std::move(*due);
    jobs_.erase(due);
    in_flight_ = true;
    ++attempts_;
    mu_.Unlock();
    const bool retry = Attempt(job);
    mu_.Lock();
    in_flight_ = false;
    if (retry) jobs_.push_back(std::move(job));
  }
}

bool AlertNotifier::Attempt(Job& job) {
  a::Delivery& d = job.delivery;
  d.set_attempts(d.attempts() + 1);
  bool retry = false;
  absl::StatusOr<OpenedChannel> channel = open_(d.channel());
  if (!channel.ok()) {
    d.set_status(a::DELIVERY_STATUS_FAILED);
    d.set_last_error(channel.status().code() == absl::StatusCode::kNotFound
                         ? "the channel no longer exists"
                         : "the channel's secret could not be opened");
  } else {
    const HttpResult r =
        poster_.PostJson(channel->url, NotificationBody(channel->kind, job.n, channel->routing_key),
                         options_.timeout);
    if (r.status >= 200 && r.status < 300) {
      d.set_status(a::DELIVERY_STATUS_DELIVERED);
      d.clear_last_error();
    } else {
      d.set_last_error(r.status != 0 ? absl::StrCat("HTTP ", r.status) : r.error);
      retry = Retriable(r.status) && d.attempts() < options_.max_attempts;
      d.set_status(retry ? a::DELIVERY_STATUS_PENDING : a::DELIVERY_STATUS_FAILED);
    }
  }
  *d.mutable_updated_at() = ToTimestamp(clock_.Now());
  if (retry) {
    job.next_at =
        clock_.MonotonicNow() +
        FullJitterBackoff(options_.backoff_base, options_.backoff_cap, d.attempts() - 1, rng_);
  }
  result_(job.n.alert.rule(), job.n.alert.subject(), job.n.delivery_id, d);
  return retry;
}

}  // namespace turnpike::controlplane
