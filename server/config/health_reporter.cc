#include "server/config/health_reporter.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

using config::v1::ReportHealthRequest;
using config::v1::ReportHealthResponse;
using config::v1::UpstreamHealth;

config::v1::BreakerState ToBreakerState(const std::string& state) {
  if (state == "closed") return config::v1::BREAKER_STATE_CLOSED;
  if (state == "open") return config::v1::BREAKER_STATE_OPEN;
  if (state == "half_open") return config::v1::BREAKER_STATE_HALF_OPEN;
  return config::v1::BREAKER_STATE_UNSPECIFIED;
}

// Converts monotonic time `t` to a wall-clock Timestamp, given both clocks read at one moment.
google::protobuf::Timestamp WallTimestamp(absl::Time t, absl::Time now_monotonic,
                                          absl::Time now_wall) {
  const absl::Time wall = now_wall + (t - now_monotonic);
  const int64_t seconds = absl::ToUnixSeconds(wall);  // rounds towards the past
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(
      static_cast<int32_t>((wall - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  return ts;
}

bool KeyLess(const UpstreamStatus& a, const UpstreamStatus& b) {
  return std::tie(a.provider, a.model, a.credential) < std::tie(b.provider, b.model, b.credential);
}

// What, when it changes, deserves a report at once: the set of upstreams, each one's breaker
// state and whether its credential is benched. Counters and gauges wait for the next full report.
std::string Signature(std::vector<UpstreamStatus>& status, absl::Time now) {
  std::sort(status.begin(), status.end(), KeyLess);
  std::string out;
  for (const UpstreamStatus& s : status) {
    absl::StrAppend(&out, s.provider, "\x1f", s.model, "\x1f", s.credential, "\x1f",
                    s.breaker_state, "\x1f", now < s.credential_failing_until ? "benched" : "",
                    "\x1e");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HealthReporter>> HealthReporter::Create(
    Options options, std::shared_ptr<grpc::ChannelInterface> channel, StatusSource source,
    Clock& clock) {
  if (options.node_id.empty())
    return absl::InvalidArgumentError("health reporter: node_id is empty");
  if (channel == nullptr) return absl::InvalidArgumentError("health reporter: no channel");
  if (!source) return absl::InvalidArgumentError("health reporter: no status source");
  if (options.interval <= absl::ZeroDuration() || options.change_poll <= absl::ZeroDuration() ||
      options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "health reporter: interval, change_poll and rpc_timeout must be positive");
  }
  return std::unique_ptr<HealthReporter>(
      new HealthReporter(std::move(options), std::move(channel), std::move(source), clock));
}

HealthReporter::HealthReporter(Options options, std::shared_ptr<grpc::ChannelInterface> channel,
                               StatusSource source, Clock& clock)
    : options_(std::move(options)),
      process_start_(options_.process_start == absl::InfinitePast() ? clock.Now()
                                                                    : options_.process_start),
      source_(std::move(source)),
      clock_(clock),
      stub_(config::v1::ConfigDiscoveryService::NewStub(channel)) {}

HealthReporter::~HealthReporter() { Stop(); }

void HealthReporter::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] {
    NameThisThread("tp-health-rep");
    Run();
  });
}

void HealthReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

HealthReporter::Stats HealthReporter::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

ReportHealthRequest HealthReporter::BuildReport(
    const std::string& node_id, std::vector<UpstreamStatus> status, Clock& clock,
    const std::vector<std::pair<std::string, int64_t>>& key_uses) {
  const absl::Time now_wall = clock.Now();
  const absl::Time now = clock.MonotonicNow();
  std::sort(status.begin(), status.end(), KeyLess);
  ReportHealthRequest request;
  request.set_node_id(node_id);
  *request.mutable_observed() = WallTimestamp(now, now, now_wall);
  for (const UpstreamStatus& s : status) {
    UpstreamHealth* h = request.add_upstreams();
    h->set_provider(s.provider);
    h->set_model(s.model);
    h->set_credential(s.credential);
    h->set_breaker_state(ToBreakerState(s.breaker_state));
    if (h->breaker_state() != config::v1::BREAKER_STATE_CLOSED &&
        s.open_until != absl::InfinitePast()) {
      *h->mutable_open_until() = WallTimestamp(s.open_until, now, now_wall);
    }
    h->set_consecutive_failures(s.consecutive_failures);
    h->set_ejections(s.ejections);
    h->set_open_reason(s.open_reason);
    if (now < s.cooling_until) {
      *h->mutable_cooling_until() = WallTimestamp(s.cooling_until, now, now_wall);
    }
    if (now < s.credential_failing_until) {
      *h->mutable_credential_failing_until() =
          WallTimestamp(s.credential_failing_until, now, now_wall);
    }
    h->set_throttle_tokens(s.throttle_tokens);
    h->set_active_requests(s.active_requests);
    h->set_active_retries(s.active_retries);
    h->set_opened_total(s.opened_total);
    h->set_retries_total(s.retries_total);
    h->set_retries_throttled_total(s.retries_throttled_total);
    h->set_retries_over_budget_total(s.retries_over_budget_total);
  }
  for (const auto& [key_id, minute] : key_uses) {
    config::v1::CallerKeyUse* use = request.add_caller_key_uses();
    use->set_key_id(key_id);
    use->set_last_used_unix_seconds(minute);
  }
  return request;
}

void HealthReporter::Run() {
  std::string last_signature;
  absl::Time next_full = absl::InfinitePast();  // report at once on start
  while (true) {
    std::vector<UpstreamStatus> status = source_();
    const absl::Time now = clock_.MonotonicNow();
    std::string signature = Signature(status, now);
    if (now >= next_full || signature != last_signature) {
      // Not retried on failure: the next report (a change, or `interval` later) carries it all.
      last_signature = std::move(signature);
      next_full = now + options_.interval;
      ReportHealthRequest report = BuildReport(
          options_.node_id, std::move(status), clock_,
          options_.key_uses ? options_.key_uses() : std::vector<std::pair<std::string, int64_t>>());
      *report.mutable_process_start() =
          WallTimestamp(process_start_, process_start_, process_start_);
      if (options_.admission_refusals) {
        for (config::v1::AdmissionRefusals& r : options_.admission_refusals()) {
          *report.add_admission_refusals() = std::move(r);
        }
      }
      if (options_.usage_spool) {
        if (std::optional<config::v1::UsageSpoolState> spool = options_.usage_spool()) {
          *report.mutable_usage_spool() = *std::move(spool);
        }
      }
      Send(report);
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.change_poll)) return;
  }
}

bool HealthReporter::Send(const ReportHealthRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    active_context_ = &context;
  }
  ReportHealthResponse response;
  const grpc::Status status = stub_->ReportHealth(&context, request, &response);
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    active_context_ = nullptr;
    stopping = stopping_;
    ++(status.ok() ? stats_.sent : stats_.failed);
  }
  if (!status.ok() && !stopping && options_.log_failure) {
    options_.log_failure(absl::StrCat("health report to the control plane failed (",
                                      static_cast<int>(status.error_code()), " ",
                                      status.error_message(), "); the next one carries it all"));
  }
  return status.ok();
}

}  // namespace turnpike
