// GatewayCore is the data plane's one core (docs/architecture.md): the components every door
// serves requests with, built in one order and torn down in the reverse one. turnpike-gateway's
// main (the gRPC and HTTP doors) and turnpike::Embedded (the in-process library) both build on
// it, so a component or a RequestFinished sink added here reaches every door. It owns the config
// source (a snapshot file, or the control plane's watch stream with the last-good snapshot cache
// and the health reporter), resilience, admission (rate limits and budgets), the upstream loops,
// the RequestFinished sinks (request metrics, admission settlement, the request log, metering),
// the usage spool and its shipper, and the metrics of all of them. It owns no listener.
//
// Thread safety: the accessors may be called from any thread once Create has returned; Start,
// StopWatching and Shutdown from the thread that owns the core. Destroy it after every door that
// uses it.
#ifndef TURNPIKE_SERVER_CORE_GATEWAY_CORE_H_
#define TURNPIKE_SERVER_CORE_GATEWAY_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/peer_throttle.h"
#include "grpcpp/security/credentials.h"
#include "server/admission/admission.h"
#include "server/admission/gateway_admission.h"
#include "server/config/config_store.h"
#include "server/config/config_watch_client.h"
#include "server/config/health_reporter.h"
#include "server/config/key_use_table.h"
#include "server/config/runtime_config.h"
#include "server/exchange/request_finished.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/telemetry/request_log.h"
#include "server/telemetry/request_telemetry.h"
#include "server/upstream/upstream_loop.h"
#include "server/usage/usage_recorder.h"
#include "server/usage/usage_shipper.h"
#include "server/usage/usage_spool.h"

namespace turnpike {

class GatewayCore {
 public:
  enum class LogLevel { kDebug, kInfo, kWarning, kError };

  // The values of turnpike-gateway's flags (server/gateway_flags.cc says what each does), or of
  // Embedded::Options.
  struct Options {
    // Exactly one of the two: a snapshot file (--config) or a control plane (--control_plane).
    std::string config_file;
    std::string control_plane;
    // Required: this data plane's id on the watch stream, in leases and in usage records.
    std::string node_id;
    // With a control plane: the last-good snapshot cache (empty: none; its folder is created),
    // the node token file (empty: none; the control plane refuses its calls), the channel's
    // credentials (null: plaintext), the version this process reports on the watch stream, and how
    // often health is reported.
    std::string snapshot_cache;
    std::string node_token_file;
    std::shared_ptr<grpc::ChannelCredentials> control_plane_credentials;
    std::string build_version = "turnpike-gateway";
    absl::Duration health_report_interval = absl::Seconds(5);
    // With a control plane: the usage spool (empty dir: no metering; its parent is created).
    std::string usage_spool_dir;
    size_t usage_spool_max_bytes = size_t{256} << 20;
    absl::Duration usage_commit_interval = absl::Milliseconds(20);
    bool usage_reject_when_full = false;
    // The request log (docs/request-log.md): "stdout", a file path, or empty for none.
    std::string request_log;
    int64_t request_log_max_bytes = int64_t{100} << 20;
    int request_log_keep = 5;
    // Most bytes of request and reply text per request-log line and per audit entry.
    size_t excerpt_max_bytes = 2048;
    // Upstream event loops (at least 1).
    int upstream_loops = 1;
    // One access-log line per request (RequestTelemetry).
    bool access_log = false;
    // Also told of every finished request, after the built-in sinks; each outlives the core.
    std::vector<RequestFinishedSink*> sinks;
    // Where the core's threads log (config watch, leases, breakers, the spool); optional, must
    // not block.
    std::function<void(LogLevel, const std::string&)> log;
  };

  // Builds every component but the config source: loads and checks the snapshot file
  // (INVALID_ARGUMENT naming it), opens the request log and the usage spool, starts the upstream
  // loops. Nothing is served until Start.
  static absl::StatusOr<std::unique_ptr<GatewayCore>> Create(Options options);
  ~GatewayCore();
  GatewayCore(const GatewayCore&) = delete;
  GatewayCore& operator=(const GatewayCore&) = delete;

  // Puts the config in force: the file's at once, or the control plane's snapshots as they come
  // (the cached one first); then the admission leases, the usage shipper and the health reports
  // use the control plane's channel. `on_applied` runs each time a snapshot is in force (on this
  // thread or the watch client's) with its version.
  absl::Status Start(std::function<void(const std::string& version)> on_applied);
  // Before the doors drain: no more snapshots or health reports.
  void StopWatching();
  // After every door has drained: the usage records and request log lines are made durable, the
  // upstream loops stop and go, and the leases are given back. Idempotent; the destructor calls it.
  void Shutdown();

  // What the doors serve with; each lives as long as the core.
  ConfigStore& store() { return store_; }
  Resilience& resilience() { return resilience_; }
  GatewayMetrics& metrics() { return metrics_; }
  Admission* admission() const { return admission_.admission.get(); }
  RequestFinishedSink* finished() const { return finished_.get(); }
  const UsageRecorder* usage() const { return recorder_.get(); }
  // Failed caller authentications, counted and slowed per peer address (docs/security.md).
  PeerThrottle& auth_throttle() { return auth_throttle_; }
  // Valid until Shutdown.
  std::vector<UpstreamLoop*> loops() const;
  const Options& options() const { return options_; }

 private:
  explicit GatewayCore(Options options);
  absl::Status Build();
  absl::Status OpenRequestLog(std::vector<RequestFinishedSink*>& sinks);
  absl::Status OpenUsageSpool(std::vector<RequestFinishedSink*>& sinks);
  absl::Status StartWatch(std::function<void(const std::string&)> on_applied);
  void Log(LogLevel level, const std::string& message) const;

  // What the health reports carry besides the upstreams (HealthReporter::Options), on the
  // reporter's thread.
  std::vector<config::v1::AdmissionRefusals> ReportedRefusals() const;
  std::optional<config::v1::UsageSpoolState> ReportedSpool() const;

  // Constant after Create.
  const Options options_;
  absl::BitGen bitgen_;     // Resilience's (drawn under its lock)
  absl::BitGen watch_rng_;  // the watch client's (its thread only)
  Resilience resilience_;
  KeyUseTable key_uses_;  // when each caller key was last used, for the health reports
  PeerThrottle auth_throttle_{PeerThrottle::Options(), Clock::Real()};
  std::shared_ptr<const RuntimeConfig> file_config_;
  ConfigStore store_;
  GatewayMetrics metrics_;
  GatewayAdmission admission_;
  AdmissionSettler settler_;
  RequestTelemetry telemetry_;
  std::shared_ptr<RequestLog> request_log_;  // shared with its metrics' collectors
  std::unique_ptr<UsageSpool> spool_;
  std::unique_ptr<UsageRecorder> recorder_;
  std::unique_ptr<RequestFinishedFanout> finished_;
  // Declared after the sinks and metrics: the exchanges they still hold point to them.
  std::vector<std::unique_ptr<UpstreamLoop>> loops_;
  // Set by Start (control plane only).
  std::unique_ptr<ConfigWatchClient> watch_;
  std::unique_ptr<UsageShipper> shipper_;  // goes before spool_
  std::unique_ptr<HealthReporter> health_;
  std::atomic<int64_t> last_full_log_ns_{0};  // the spool-full line, at most once a minute
  bool shut_down_ = false;                    // owner's thread only
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CORE_GATEWAY_CORE_H_
