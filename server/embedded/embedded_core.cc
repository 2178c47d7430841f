// Embedded::Core: the GatewayCore an Embedded runs on and its registry of calls in flight
// (server/embedded/embedded_core.h).
#include "server/embedded/embedded_core.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/gateway_core.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {

Embedded::Core::Core(Options options) : options_(std::move(options)) {}

Embedded::Core::~Core() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    mu_.AwaitWithTimeout(absl::Condition(this, &Core::Idle), options_.drain_timeout);
  }
  CancelAll();
  {
    absl::MutexLock lock(&mu_);
    // Cancelled exchanges still end through the driver (their on_done runs).
    mu_.AwaitWithTimeout(absl::Condition(this, &Core::Idle), absl::Seconds(30));
  }
  if (gateway_ == nullptr) return;
  gateway_->StopWatching();
  // Makes the usage records durable, stops the loops (what they hold goes while the metrics
  // and sinks are alive) and gives the leases back.
  gateway_->Shutdown();
}

absl::Status Embedded::Core::Start() {
  const bool from_file = !options_.config_file.empty();
  if (from_file == !options_.control_plane.empty()) {
    return absl::InvalidArgumentError(
        "Embedded needs exactly one of Options::config_file and Options::control_plane");
  }
  if (options_.upstream_loops < 1) {
    return absl::InvalidArgumentError("Options::upstream_loops must be at least 1");
  }
  GatewayCore::Options core;
  core.config_file = options_.config_file;
  core.control_plane = options_.control_plane;
  core.node_id = options_.node_id;
  if (core.node_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    core.node_id = absl::StrCat("embedded-", host, "-", getpid());
  }
  core.node_token_file = options_.node_token_file;
  core.snapshot_cache = options_.snapshot_cache;
  core.build_version = "turnpike-embedded";
  core.health_report_interval = options_.health_report_interval;
  core.usage_spool_dir = options_.usage_spool_dir;
  core.usage_commit_interval = options_.usage_commit_interval;
  core.upstream_loops = options_.upstream_loops;
  core.access_log = false;
  core.sinks = options_.sinks;
  // The application hears the warnings and errors of the library's threads.
  if (options_.log) {
    core.log = [log = options_.log](GatewayCore::LogLevel level, const std::string& message) {
      if (level >= GatewayCore::LogLevel::kWarning) log(message);
    };
  }
  absl::StatusOr<std::unique_ptr<GatewayCore>> gateway = GatewayCore::Create(std::move(core));
  if (!gateway.ok()) return gateway.status();
  gateway_ = *std::move(gateway);
  const std::vector<UpstreamLoop*> loops = gateway_->loops();
  envs_.resize(loops.size());
  for (size_t i = 0; i < loops.size(); ++i) {
    CallEnv& env = envs_[i];
    env.config = &gateway_->store();
    env.transport = loops[i];
    env.resilience = &gateway_->resilience();
    env.finished = gateway_->finished();
    env.metrics = &gateway_->metrics();
    env.usage = gateway_->usage();
    env.admission = gateway_->admission();
  }
  return gateway_->Start([this](const std::string&) {
    absl::MutexLock lock(&mu_);
    config_applied_ = true;
  });
}

absl::Status Embedded::Core::WaitUntilReady(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (gateway_->store().Get() == nullptr) {
    if (mu_.AwaitWithDeadline(absl::Condition(&config_applied_), until)) break;
    if (absl::Now() >= until) {
      return absl::UnavailableError(absl::StrCat("no configuration from the control plane ",
                                                 options_.control_plane, " within ",
                                                 absl::FormatDuration(timeout)));
    }
  }
  return absl::OkStatus();
}

CallEnv* Embedded::Core::Enter(const std::shared_ptr<EmbeddedCall>& call) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return nullptr;
  calls_[call.get()] = call;
  return &envs_[next_env_++ % envs_.size()];
}

void Embedded::Core::Leave(EmbeddedCall* call) {
  absl::MutexLock lock(&mu_);
  calls_.erase(call);
}

int Embedded::Core::in_flight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(calls_.size());
}

void Embedded::Core::CancelAll() {
  std::vector<std::shared_ptr<EmbeddedCall>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [raw, weak] : calls_) {
      if (std::shared_ptr<EmbeddedCall> call = weak.lock()) live.push_back(std::move(call));
    }
  }
  for (const auto& call : live) call->Cancel();
}

}  // namespace turnpike
