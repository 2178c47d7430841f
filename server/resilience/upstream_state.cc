#include "server/resilience/upstream_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace turnpike {

void CredentialState::MarkFailing(absl::Time until, std::string reason) {
  absl::MutexLock lock(&mu_);
  if (until > failing_until_) failing_until_ = until;
  reason_ = std::move(reason);
}

std::pair<absl::Time, std::string> CredentialState::FailingUntil() const {
  absl::MutexLock lock(&mu_);
  return {failing_until_, reason_};
}

UpstreamState::UpstreamState(std::string name, CredentialState* credential, uint64_t seed,
                             RetryThrottle::Options throttle, RetryBudget::Options budget)
    : name_(std::move(name)),
      credential_(credential),
      rng_(seed),
      throttle_(throttle),
      budget_(budget) {}

UpstreamState::Admission UpstreamState::Admit(const BreakerSettings& settings, absl::Time now) {
  Admission admission;
  auto [credential_until, credential_reason] = credential_->FailingUntil();
  if (now < credential_until) {
    admission.kind = Admission::Kind::kCredentialFailing;
    admission.available_at = credential_until;
    admission.reason = absl::StrCat("credential benched (", credential_reason, ")");
    return admission;
  }
  absl::MutexLock lock(&mu_);
  if (now < cooling_until_) {
    admission.kind = Admission::Kind::kCooling;
    admission.available_at = cooling_until_;
    admission.reason = "cooling down after a rate limit";
    return admission;
  }
  CircuitBreaker::Admission breaker = breaker_.Admit(settings, now, rng_);
  switch (breaker.kind) {
    case CircuitBreaker::Admission::Kind::kAllowed:
      break;
    case CircuitBreaker::Admission::Kind::kProbe:
      admission.kind = Admission::Kind::kProbe;
      admission.probe_id = breaker.probe_id;
      break;
    case CircuitBreaker::Admission::Kind::kRejected:
      admission.kind = Admission::Kind::kOpen;
      admission.available_at = breaker.retry_at;
      admission.reason = std::move(breaker.reason);
      break;
  }
  return admission;
}

absl::Time UpstreamState::AvailableAt(absl::Time now) const {
  absl::Time at = std::max(now, credential_->FailingUntil().first);
  absl::MutexLock lock(&mu_);
  at = std::max(at, cooling_until_);
  if (breaker_.state() == CircuitBreaker::State::kOpen) at = std::max(at, breaker_.open_until());
  return at;
}

void UpstreamState::StartFirstAttempt() {
  absl::MutexLock lock(&mu_);
  budget_.StartRequest();
}

void UpstreamState::FinishFirstAttempt() {
  absl::MutexLock lock(&mu_);
  budget_.FinishRequest();
}

UpstreamState::RetryVerdict UpstreamState::TryReserveRetry() {
  absl::MutexLock lock(&mu_);
  if (!throttle_.RetryAllowed()) {
    ++retries_throttled_total_;
    return RetryVerdict::kThrottled;
  }
  if (!budget_.TryReserveRetry()) {
    ++retries_over_budget_total_;
    return RetryVerdict::kOverBudget;
  }
  ++retries_total_;
  return RetryVerdict::kAllowed;
}

void UpstreamState::FinishRetry() {
  absl::MutexLock lock(&mu_);
  budget_.FinishRetry();
}

void UpstreamState::RecordSuccess(const BreakerSettings& settings, absl::Time now,
                                  uint64_t probe_id) {
  absl::MutexLock lock(&mu_);
  throttle_.RecordSuccess();
  breaker_.RecordSuccess(settings, now, probe_id);
}

bool UpstreamState::RecordFailure(const BreakerSettings& settings, absl::Time now,
                                  uint64_t probe_id) {
  absl::MutexLock lock(&mu_);
  throttle_.RecordFailure();
  const bool opened = breaker_.RecordFailure(settings, now, probe_id, rng_);
  if (opened) ++opened_total_;
  return opened;
}

void UpstreamState::RecordRateLimited(absl::Time cool_until) {
  absl::MutexLock lock(&mu_);
  throttle_.RecordFailure();
  if (cool_until > cooling_until_) cooling_until_ = cool_until;
}

void UpstreamState::ReleaseProbe(uint64_t probe_id) {
  absl::MutexLock lock(&mu_);
  breaker_.ReleaseProbe(probe_id);
}

UpstreamStatus UpstreamState::Status(absl::Time now) const {
  UpstreamStatus status;
  status.name = name_;
  status.credential_failing_until = credential_->FailingUntil().first;
  absl::MutexLock lock(&mu_);
  switch (breaker_.state()) {
    case CircuitBreaker::State::kClosed:
      status.breaker_state = "closed";
      break;
    case CircuitBreaker::State::kOpen:
      status.breaker_state = now < breaker_.open_until() ? "open" : "half_open";
      break;
    case CircuitBreaker::State::kHalfOpen:
      status.breaker_state = "half_open";
      break;
  }
  status.open_until = breaker_.open_until();
  status.ejections = breaker_.ejections();
  status.consecutive_failures = breaker_.consecutive_failures();
  status.open_reason = breaker_.open_reason();
  status.cooling_until = cooling_until_;
  status.throttle_tokens = throttle_.tokens();
  status.active_requests = budget_.active_requests();
  status.active_retries = budget_.active_retries();
  status.opened_total = opened_total_;
  status.retries_total = retries_total_;
  status.retries_throttled_total = retries_throttled_total_;
  status.retries_over_budget_total = retries_over_budget_total_;
  return status;
}

}  // namespace turnpike
