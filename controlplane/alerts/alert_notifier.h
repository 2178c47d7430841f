// AlertNotifier delivers the evaluator's notifications to webhook channels from one thread:
// generic JSON, Slack incoming-webhook and PagerDuty Events v2 bodies, POSTed through an
// HttpPoster (libcurl in production). A failed attempt (transport error, 408, 429 or 5xx) is
// retried after a capped exponential backoff with full jitter (common/backoff.h) measured on the
// injected Clock, up to max_attempts; other 4xx answers fail at once. Every attempt's outcome goes
// to the ResultFn (the evaluator's delivery history). Channel secrets are opened per attempt and
// never logged or reported: errors name the HTTP status or the transport error only. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_NOTIFIER_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_NOTIFIER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/alerts/alert_evaluator.h"
#include "controlplane/alerts/alert_rules.h"

namespace turnpike::controlplane {

struct HttpResult {
  int status = 0;     // HTTP status; 0 when there was no response
  std::string error;  // the transport error when status is 0 (never the URL)
};

class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // POSTs `body` as application/json. Thread-compatible per call.
  virtual HttpResult PostJson(const std::string& url, const std::string& body,
                              absl::Duration timeout) = 0;
};

// libcurl: http and https only, no redirects, certificate checks on.
std::unique_ptr<HttpPoster> NewCurlPoster();

// The body a channel of `kind` receives for `n` (`routing_key` for PagerDuty).
std::string NotificationBody(alert::v1::ChannelKind kind, const Notification& n,
                             const std::string& routing_key);

class AlertNotifier {
 public:
  struct Options {
    int max_attempts = 5;
    absl::Duration backoff_base = absl::Seconds(2);
    absl::Duration backoff_cap = absl::Minutes(2);
    absl::Duration timeout = absl::Seconds(10);
    // Notifications beyond this many waiting are dropped (recorded as FAILED).
    int max_queue = 1000;
  };
  using OpenFn = std::function<absl::StatusOr<OpenedChannel>(const std::string& channel)>;
  using ResultFn = std::function<void(const std::string& rule, const std::string& subject,
                                      uint64_t delivery_id, const alert::v1::Delivery& delivery)>;

  // Starts the delivery thread. `poster` and `clock` must outlive the notifier.
  static std::unique_ptr<AlertNotifier> Start(OpenFn open, HttpPoster& poster, Clock& clock,
                                              Options options, ResultFn result);
  ~AlertNotifier();

  void Enqueue(std::vector<Notification> notifications);
  // Stops the thread; notifications not yet delivered are abandoned. Idempotent.
  void Shutdown();
  // Notifications queued or waiting for a retry.
  int waiting() const;
  // HTTP attempts made so far.
  int64_t attempts() const;

 private:
  struct Job {
    Notification n;
    alert::v1::Delivery delivery;
    absl::Time next_at;
  };
  AlertNotifier(OpenFn open, HttpPoster& poster, Clock& clock, Options options, ResultFn result)
      : open_(std::move(open)),
        poster_(poster),
        clock_(clock),
        options_(options),
        result_(std::move(result)) {}
  void Loop();
  // One attempt; true if the job should be retried (its next_at set).
  bool Attempt(Job& job);

  const OpenFn open_;
  HttpPoster& poster_;
  Clock& clock_;
  const Options options_;
  const ResultFn result_;
  std::thread thread_;
  absl::BitGen rng_;  // used by the delivery thread only

  mutable absl::Mutex mu_;
  std::vector<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t attempts_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_NOTIFIER_H_
