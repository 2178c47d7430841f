#include "server/core/gateway_core.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/bearer_channel.h"
#include "common/metrics.h"

namespace turnpike {

namespace {

// Creates the folder `path` is in, if it has one (errors surface when the file is opened).
void CreateParentOf(const std::string& path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
}

}  // namespace

GatewayCore::GatewayCore(Options options)
    : options_(std::move(options)),
      resilience_(
          [this] {
            Resilience::Options r;
            r.on_event = [this](const std::string& event) { Log(LogLevel::kWarning, event); };
            return r;
          }(),
          Clock::Real(), bitgen_),
      telemetry_(options_.access_log, &metrics_) {}

absl::StatusOr<std::unique_ptr<GatewayCore>> GatewayCore::Create(Options options) {
  if (options.config_file.empty() == options.control_plane.empty()) {
    return absl::InvalidArgumentError("exactly one of a config file and a control plane");
  }
  if (options.upstream_loops < 1) {
    return absl::InvalidArgumentError("at least one upstream loop");
  }
  if (options.node_id.empty()) return absl::InvalidArgumentError("no node id");
  std::unique_ptr<GatewayCore> core(new GatewayCore(std::move(options)));
  if (absl::Status s = core->Build(); !s.ok()) return s;
  return core;
}

absl::Status GatewayCore::Build() {
  const bool from_file = !options_.config_file.empty();
  // Every snapshot resolves its targets' state in `resilience_`, so it exists before any config.
  if (from_file) {
    absl::StatusOr<config::v1::Snapshot> snapshot = LoadSnapshotFile(options_.config_file);
    if (!snapshot.ok()) return snapshot.status();
    absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
        RuntimeConfig::Build(*snapshot, RuntimeConfig::ProcessEnv(), resilience_);
    if (!config.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(options_.config_file, ": ", config.status().message()));
    }
    file_config_ = *std::move(config);
  }
  for (int i = 0; i < options_.upstream_loops; ++i) {
    absl::StatusOr<std::unique_ptr<UpstreamLoop>> loop = UpstreamLoop::Create({});
    if (!loop.ok()) {
      return absl::Status(loop.status().code(),
                          absl::StrCat("upstream loop: ", loop.status().message()));
    }
    loops_.push_back(*std::move(loop));
  }
  metrics_.AddResilience(&resilience_);
  metrics_.AddGauge("turnpike_upstream_active_transfers", "Upstream HTTP transfers in flight.",
                    [this] {
                      double n = 0;
                      for (const auto& l : loops_) n += l->active_transfers();
                      return n;
                    });
  // Brute force (docs/security.md): totals and a count of peers, never a label per address.
  metrics_.AddCounter("turnpike_gateway_auth_failures_total",
                      "Calls refused for a missing, malformed, unknown or expired caller key.",
                      [this] { return static_cast<double>(auth_throttle_.failures_total()); });
  metrics_.AddCounter("turnpike_gateway_auth_refusals_held_total",
                      "Failed authentications answered after a delay growing with their peer "
                      "address's recent failures.",
                      [this] { return static_cast<double>(auth_throttle_.held_total()); });
  metrics_.AddGauge("turnpike_gateway_auth_throttled_peers",
                    "Peer addresses whose failed authentications are being slowed down now.",
                    [this] { return static_cast<double>(auth_throttle_.ThrottledPeers()); });
  metrics_.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                    [] { return ProcessResidentBytes(); });
  // Rate limits and budgets (docs/limits.md): leases from the control plane, or from a local
  // ledger over the config file's limits.
  admission_ = MakeGatewayAdmission(options_.node_id, !from_file, store_, Clock::Real(),
                                    [this](const std::string& m) { Log(LogLevel::kWarning, m); });
  AddAdmissionMetrics(metrics_, *admission_.admission);
  metrics_.AddConfigVersion([this] {
    std::shared_ptr<const RuntimeConfig> config = store_.Get();
    return config != nullptr ? config->version() : std::string();
  });
  // Where every request ends: the access log and metrics, admission's settlement, the request
  // log, then metering (docs/usage.md), then the owner's own sinks.
  std::vector<RequestFinishedSink*> sinks = {&telemetry_, &settler_};
  if (absl::Status s = OpenRequestLog(sinks); !s.ok()) return s;
  if (!from_file && !options_.usage_spool_dir.empty()) {
    if (absl::Status s = OpenUsageSpool(sinks); !s.ok()) return s;
  }
  for (RequestFinishedSink* sink : options_.sinks) sinks.push_back(sink);
  finished_ = std::make_unique<RequestFinishedFanout>(std::move(sinks));
  return absl::OkStatus();
}

absl::Status GatewayCore::OpenRequestLog(std::vector<RequestFinishedSink*>& sinks) {
  if (options_.request_log.empty()) return absl::OkStatus();
  RequestLog::Options log_options;
  log_options.path = options_.request_log;
  log_options.max_bytes = options_.request_log_max_bytes;
  log_options.max_files = options_.request_log_keep;
  log_options.excerpt_max_bytes = options_.excerpt_max_bytes;
  absl::StatusOr<std::unique_ptr<RequestLog>> opened = RequestLog::Create(log_options);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(),
                        absl::StrCat("request log: ", opened.status().message()));
  }
  request_log_ = *std::move(opened);
  sinks.push_back(request_log_.get());
  std::shared_ptr<RequestLog> log = request_log_;
  metrics_.AddCounter("turnpike_request_log_lines_total", "Request log lines written.",
                      [log] { return static_cast<double>(log->stats().written); });
  metrics_.AddCounter("turnpike_request_log_dropped_total",
                      "Request log lines dropped because the writer's queue was full.",
                      [log] { return static_cast<double>(log->stats().dropped); });
  metrics_.AddCounter("turnpike_request_log_write_errors_total",
                      "Failed request log writes and rotations.",
                      [log] { return static_cast<double>(log->stats().write_errors); });
  return absl::OkStatus();
}

absl::Status GatewayCore::OpenUsageSpool(std::vector<RequestFinishedSink*>& sinks) {
  UsageSpool::Options spool_options;
  spool_options.dir = options_.usage_spool_dir;
  spool_options.max_bytes = options_.usage_spool_max_bytes;
  spool_options.commit_interval = options_.usage_commit_interval;
  CreateParentOf(spool_options.dir);
  absl::StatusOr<std::unique_ptr<UsageSpool>> opened =
      UsageSpool::Open(spool_options, Clock::Real());
  if (!opened.ok()) return opened.status();
  spool_ = *std::move(opened);
  const UsageSpool::Stats recovered = spool_->stats();
  if (recovered.recovered > 0 || recovered.truncated_bytes > 0) {
    Log(LogLevel::kInfo, absl::StrCat("usage spool: ", recovered.recovered,
                                      " records from before the restart to ship (",
                                      recovered.truncated_bytes, " torn bytes cut)"));
  }
  UsageRecorder::Options recorder_options;
  recorder_options.reject_when_full = options_.usage_reject_when_full;
  recorder_options.excerpt_max_bytes = options_.excerpt_max_bytes;
  UsageSpool* sp = spool_.get();
  recorder_ =
      std::make_unique<UsageRecorder>(*spool_, options_.node_id, recorder_options, [this, sp] {
        // At most one line a minute, however many records are dropped.
        const int64_t now = absl::GetCurrentTimeNanos();
        int64_t last = last_full_log_ns_.load(std::memory_order_relaxed);
        if (now - last < int64_t{60} * 1000000000 ||
            !last_full_log_ns_.compare_exchange_strong(last, now)) {
          return;
        }
        Log(LogLevel::kError,
            absl::StrCat("usage spool full: ", sp->stats().dropped,
                         " usage records dropped so far (is the control plane reachable? see "
                         "turnpike_usage_records_dropped_total)"));
      });
  sinks.push_back(recorder_.get());
  metrics_.AddGauge("turnpike_usage_spool_bytes", "Usage records on disk or queued, bytes.",
                    [sp] { return static_cast<double>(sp->stats().bytes); });
  metrics_.AddCounter("turnpike_usage_records_spooled_total",
                      "Usage records accepted into the spool.",
                      [sp] { return static_cast<double>(sp->stats().appended); });
  metrics_.AddCounter("turnpike_usage_records_dropped_total",
                      "Usage records not kept because the spool was full.",
                      [sp] { return static_cast<double>(sp->stats().dropped); });
  UsageRecorder* rec = recorder_.get();
  metrics_.AddCounter(
      "turnpike_usage_inline_digests_total",
      "Audit evidence hashed and redacted on a request's thread: the digest queue was full.",
      [rec] { return static_cast<double>(rec->inline_digests()); });
  return absl::OkStatus();
}

GatewayCore::~GatewayCore() {
  StopWatching();
  Shutdown();
  shipper_.reset();
  health_.reset();
  watch_.reset();
}

absl::Status GatewayCore::Start(std::function<void(const std::string& version)> on_applied) {
  if (file_config_ != nullptr) {
    store_.Set(file_config_);
    if (on_applied) on_applied(file_config_->version());
    return absl::OkStatus();
  }
  return StartWatch(std::move(on_applied));
}

// Subscribes to the control plane. Nothing is in force until a full snapshot arrives, from the
// cache file or the stream.
absl::Status GatewayCore::StartWatch(std::function<void(const std::string&)> on_applied) {
  ConfigWatchClient::Options options;
  options.target = options_.control_plane;
  options.node_id = options_.node_id;
  options.snapshot_path = options_.snapshot_cache;
  if (!options.snapshot_path.empty()) CreateParentOf(options.snapshot_path);
  options.build_version = options_.build_version;
  if (!options_.node_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(options_.node_token_file);
    if (!token.ok()) return token.status();
    options.node_token = *std::move(token);
  }
  options.credentials = options_.control_plane_credentials != nullptr
                            ? options_.control_plane_credentials
                            : grpc::InsecureChannelCredentials();
  options.log = [this](absl::LogSeverity severity, const std::string& message) {
    Log(severity >= absl::LogSeverity::kWarning ? LogLevel::kWarning : LogLevel::kInfo,
        absl::StrCat("config watch: ", message));
  };
  auto apply = [this, on_applied = std::move(on_applied)](
                   const config::v1::Snapshot& snapshot) -> absl::Status {
    absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
        RuntimeConfig::Build(snapshot, RuntimeConfig::ProcessEnv(), resilience_, &key_uses_);
    if (!config.ok()) return config.status();
    store_.Set(*std::move(config));
    if (on_applied) on_applied(snapshot.version());
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<ConfigWatchClient>> client =
      ConfigWatchClient::Create(std::move(options), std::move(apply), Clock::Real(), watch_rng_);
  if (!client.ok()) return client.status();
  watch_ = *std::move(client);
  if (absl::Status cached = watch_->LoadCachedSnapshot(); cached.ok()) {
    Log(LogLevel::kInfo,
        absl::StrCat("started from the last good snapshot ", watch_->applied_version()));
  } else if (cached.code() != absl::StatusCode::kNotFound) {
    Log(LogLevel::kWarning, absl::StrCat("last good snapshot not used: ", cached.message()));
  }
  watch_->Start();
  admission_.control_plane->SetChannel(watch_->channel());
  if (spool_ != nullptr) {
    shipper_ = std::make_unique<UsageShipper>(*spool_, watch_->channel(), UsageShipper::Options(),
                                              Clock::Real());
    UsageShipper* sh = shipper_.get();
    metrics_.AddCounter("turnpike_usage_records_shipped_total",
                        "Usage records the control plane acknowledged.",
                        [sh] { return static_cast<double>(sh->stats().shipped); });
  }
  ConfigWatchClient* w = watch_.get();
  metrics_.AddCounter("turnpike_config_snapshots_applied_total",
                      "Config snapshots applied (from the control plane or the cache).",
                      [w] { return static_cast<double>(w->stats().applied); });
  metrics_.AddCounter("turnpike_config_snapshots_rejected_total",
                      "Config snapshots rejected (NACKed) as invalid.",
                      [w] { return static_cast<double>(w->stats().nacked); });
  absl::StatusOr<std::unique_ptr<HealthReporter>> reporter = HealthReporter::Create(
      {.node_id = watch_->node_id(),
       .interval = options_.health_report_interval,
       .log_failure = [this](const std::string& m) { Log(LogLevel::kDebug, m); },
       .key_uses = [this] { return key_uses_.Uses(); },
       .admission_refusals = [this] { return ReportedRefusals(); },
       .usage_spool = [this] { return ReportedSpool(); }},
      watch_->channel(), [this] { return resilience_.Status(); }, Clock::Real());
  if (!reporter.ok()) return reporter.status();
  health_ = *std::move(reporter);
  health_->Start();
  return absl::OkStatus();
}

std::vector<config::v1::AdmissionRefusals> GatewayCore::ReportedRefusals() const {
  std::vector<config::v1::AdmissionRefusals> out;
  if (admission_.admission == nullptr) return out;
  for (const auto& [capability, r] : admission_.admission->RefusalsByCapability()) {
    config::v1::AdmissionRefusals& p = out.emplace_back();
    p.set_capability(capability);
    p.set_rate_limited(r.rate_limited);
    p.set_budget_exhausted(r.budget_exhausted);
  }
  return out;
}

std::optional<config::v1::UsageSpoolState> GatewayCore::ReportedSpool() const {
  if (spool_ == nullptr || shipper_ == nullptr) return std::nullopt;
  const UsageSpool::Stats spool = spool_->stats();
  const absl::Time oldest = shipper_->stats().oldest_pending;
  config::v1::UsageSpoolState out;
  out.set_pending_records(static_cast<int64_t>(UsageSpool::PendingRecords(spool)));
  out.set_pending_bytes(
      static_cast<int64_t>(spool.bytes - std::min(spool.bytes, spool.quarantined_bytes)));
  const absl::Duration age = oldest == absl::InfiniteFuture()
                                 ? absl::ZeroDuration()
                                 : std::max(absl::ZeroDuration(), Clock::Real().Now() - oldest);
  out.mutable_oldest_pending_age()->set_seconds(absl::ToInt64Seconds(age));
  out.mutable_oldest_pending_age()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(age % absl::Seconds(1))));
  out.set_dropped_records(static_cast<int64_t>(spool.dropped));
  return out;
}

void GatewayCore::StopWatching() {
  if (health_ != nullptr) health_->Stop();
  if (watch_ != nullptr) watch_->Stop();
}

void GatewayCore::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Every request has ended: its usage record is queued; make it durable (the shipper sends it
  // now, or the next process on this spool directory does).
  if (recorder_ != nullptr) recorder_->Flush();
  if (spool_ != nullptr) spool_->Flush();
  if (request_log_ != nullptr) request_log_->Flush();
  for (auto& loop : loops_) loop->Stop();
  // What the loops still hold (finished exchanges) goes now, while the metrics and sinks the
  // exchanges point to are alive.
  loops_.clear();
  // Every request has settled: give the leases back (what they did not spend returns at once).
  admission_.admission.reset();
}

std::vector<UpstreamLoop*> GatewayCore::loops() const {
  std::vector<UpstreamLoop*> out;
  for (const auto& loop : loops_) out.push_back(loop.get());
  return out;
}

void GatewayCore::Log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

}  // namespace turnpike
