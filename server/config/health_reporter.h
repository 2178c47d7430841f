// HealthReporter tells the control plane how this gateway's upstreams are doing, so that admins
// see circuit breakers through the admin API (ListDataPlanes, GetDataPlane). On its own thread it
// calls ConfigDiscoveryService/ReportHealth with the whole upstream status (what
// Resilience::Status() returns): at start, every `interval` (measured on the injected Clock), and
// within `change_poll` of a change — a breaker moving between closed, open and half-open, a
// credential benched or back, a new upstream. It finds changes by sampling the status every
// `change_poll` (cheap: one short lock per upstream), which also catches the transitions
// Resilience's on_event does not announce (half-open, closed), so a burst of changes becomes one
// report. Each report replaces the previous one, so a lost report loses nothing: a failed call
// is told to `log_failure` and dropped, and never touches a request. Each report also carries
// when every caller key was last used on this gateway (`key_uses`, to the minute), so admins see
// stale keys (docs/admin.md); a new minute of use waits for the next full report. It also carries
// the admission refusals per capability and the usage spool's state (`admission_refusals`,
// `usage_spool`), from which the control plane alerts (docs/alerts.md).
//
// The channel is the control plane's (the watch client's), so reports use the same TLS and
// identity as the watch stream. `clock` must be the one Resilience uses: status times are on its
// monotonic clock and are converted to wall-clock Timestamps with it. Thread-safe; Stop() (or the
// destructor) cancels a call in flight and joins the thread.
#ifndef TURNPIKE_SERVER_CONFIG_HEALTH_REPORTER_H_
#define TURNPIKE_SERVER_CONFIG_HEALTH_REPORTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "server/resilience/upstream_state.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike {

class HealthReporter {
 public:
  // The current status of every upstream; called on the reporter's thread.
  using StatusSource = std::function<std::vector<UpstreamStatus>()>;

  struct Options {
    std::string node_id;  // as on the watch stream
    // Full report at least this often, on the injected Clock.
    absl::Duration interval = absl::Seconds(5);
    // How often the status is sampled for changes (real time): the delay of a prompt report.
    absl::Duration change_poll = absl::Milliseconds(250);
    // Deadline of one ReportHealth call (real time).
    absl::Duration rpc_timeout = absl::Seconds(2);
    // Told why a report failed, on the reporter's thread; must not block. Optional. (Libraries do
    // not log: main logs it at debug level.)
    std::function<void(const std::string&)> log_failure;
    // Every caller key used since start: (key id, Unix seconds of the minute of its last use),
    // called on the reporter's thread (KeyUseTable::Uses). Optional.
    std::function<std::vector<std::pair<std::string, int64_t>>()> key_uses;
    // Admission refusals by capability since the process started (Admission's counters), called
    // on the reporter's thread. Optional.
    std::function<std::vector<config::v1::AdmissionRefusals>()> admission_refusals;
    // The usage spool's state now, on the reporter's thread; nullopt without a spool. Optional.
    std::function<std::optional<config::v1::UsageSpoolState>()> usage_spool;
    // When the process started (wall clock), sent with every report: the counters above count
    // from it. InfinitePast: the reporter's creation time.
    absl::Time process_start = absl::InfinitePast();
  };

  struct Stats {
    int64_t sent = 0;    // reports the control plane accepted
    int64_t failed = 0;  // reports that failed (control plane down, unknown node, ...)
  };

  static absl::StatusOr<std::unique_ptr<HealthReporter>> Create(
      Options options, std::shared_ptr<grpc::ChannelInterface> channel, StatusSource source,
      Clock& clock);
  ~HealthReporter();
  HealthReporter(const HealthReporter&) = delete;
  HealthReporter& operator=(const HealthReporter&) = delete;

  // Starts the reporting thread; idempotent; does nothing after Stop().
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels a call in flight and joins the thread; idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // The report for `status`, sorted by provider, model and credential; times converted from
  // `clock`'s monotonic time to its wall time. Exposed for tests.
  static config::v1::ReportHealthRequest BuildReport(
      const std::string& node_id, std::vector<UpstreamStatus> status, Clock& clock,
      const std::vector<std::pair<std::string, int64_t>>& key_uses = {});

 private:
  HealthReporter(Options options, std::shared_ptr<grpc::ChannelInterface> channel,
                 StatusSource source, Clock& clock);
  void Run();
  // Sends one report; false if it failed.
  bool Send(const config::v1::ReportHealthRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const Options options_;
  const absl::Time process_start_;
  const StatusSource source_;
  Clock& clock_;
  std::unique_ptr<config::v1::ConfigDiscoveryService::Stub> stub_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_HEALTH_REPORTER_H_
