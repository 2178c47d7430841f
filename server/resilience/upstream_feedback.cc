#include "server/resilience/upstream_feedback.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/config/runtime_config.h"
#include "server/resilience/resilience.h"

namespace turnpike {
namespace {

// As the attempt list writes durations (attempt_planner.cc).
std::string Human(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

}  // namespace

bool RecordUpstreamOutcome(const AttemptOutcome& outcome, const TargetEntry& target,
                           const BreakerSettings& breaker, uint64_t probe, absl::Time now,
                           Resilience& resilience) {
  UpstreamState& up = *target.upstream;
  bool exclude = false;
  switch (outcome.kind) {
    case FailureKind::kNone:
      up.RecordSuccess(breaker, now, probe);
      break;
    case FailureKind::kRateLimited: {
      const absl::Duration cool = outcome.retry_after_ms > 0
                                      ? absl::Milliseconds(outcome.retry_after_ms)
                                      : resilience.options().default_rate_limit_cooldown;
      up.RecordRateLimited(now + cool);
      if (probe != 0) up.ReleaseProbe(probe);
      break;
    }
    case FailureKind::kAuth:
    case FailureKind::kQuotaExhausted: {
      const std::string why = absl::StrCat(
          FailureKindName(outcome.kind),
          outcome.http_status != 0 ? absl::StrCat(", HTTP ", outcome.http_status) : std::string());
      up.credential().MarkFailing(now + breaker.max_ejection, why);
      resilience.Report(absl::StrCat("credential of provider ", target.provider->name,
                                     " benched for ", Human(breaker.max_ejection), ": ", why));
      exclude = true;
      if (probe != 0) up.ReleaseProbe(probe);
      break;
    }
    case FailureKind::kConnect:
    case FailureKind::kTimeout:
    case FailureKind::kUpstream:
      if (up.RecordFailure(breaker, now, probe)) {
        const UpstreamStatus status = up.Status(now);
        resilience.Report(absl::StrCat("circuit of ", up.name(), " opened for ",
                                       Human(status.open_until - now), ": ", status.open_reason));
      }
      break;
    case FailureKind::kUnsupported:
      exclude = true;
      if (probe != 0) up.ReleaseProbe(probe);
      break;
    case FailureKind::kCancelled:
    case FailureKind::kDeadline:
    case FailureKind::kInvalidRequest:
    case FailureKind::kBadAnswer:  // the upstream answered; its model did not follow the schema
      if (probe != 0) up.ReleaseProbe(probe);
      break;
  }
  return exclude;
}

}  // namespace turnpike
