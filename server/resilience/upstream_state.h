// The shared, process-wide state of one upstream — a (provider, model, credential) — that
// outlives single requests: its circuit breaker, its retry throttle and retry budget, a
// rate-limit cool-down (a 429 is a quota signal, not a health failure), and a link to the state
// of its credential (an auth failure or an exhausted quota benches the credential for every
// model). Created and owned by Resilience; every method is thread-safe (one mutex per upstream,
// held briefly; no I/O under it).
#ifndef TURNPIKE_SERVER_RESILIENCE_UPSTREAM_STATE_H_
#define TURNPIKE_SERVER_RESILIENCE_UPSTREAM_STATE_H_

#include <cstdint>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/resilience/circuit_breaker.h"
#include "server/resilience/latency_estimate.h"
#include "server/resilience/policy.h"
#include "server/resilience/retry_limits.h"

namespace turnpike {

// A provider credential, shared by every model sent with it.
class CredentialState {
 public:
  // Benches the credential until `until` (auth failure, exhausted quota or spend limit).
  void MarkFailing(absl::Time until, std::string reason) ABSL_LOCKS_EXCLUDED(mu_);
  // When the credential is usable again (InfinitePast if it is fine) and why it is not.
  std::pair<absl::Time, std::string> FailingUntil() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::Time failing_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string reason_ ABSL_GUARDED_BY(mu_);
};

// A point-in-time view of an upstream, for metrics and the admin API.
struct UpstreamStatus {
  std::string name;  // "provider/model" (the credential is named, never its secret)
  // Filled in by Resilience::Status(): the upstream's key. `credential` is "name@version" (or
  // empty), never the secret.
  std::string provider;
  std::string model;
  std::string credential;
  std::string breaker_state;  // "closed", "open", "half_open"
  absl::Time open_until;
  int ejections = 0;
  int consecutive_failures = 0;
  std::string open_reason;
  absl::Time cooling_until;
  absl::Time credential_failing_until;
  double throttle_tokens = 0;
  int64_t active_requests = 0;
  int64_t active_retries = 0;
  int64_t opened_total = 0;
  int64_t retries_total = 0;
  int64_t retries_throttled_total = 0;
  int64_t retries_over_budget_total = 0;
};

class UpstreamState {
 public:
  struct Admission {
    enum class Kind { kAllowed, kProbe, kOpen, kCooling, kCredentialFailing };
    Kind kind = Kind::kAllowed;
    uint64_t probe_id = 0;    // kProbe
    absl::Time available_at;  // not admitted: when it may be again
    std::string reason;       // not admitted: why
    bool admitted() const { return kind == Kind::kAllowed || kind == Kind::kProbe; }
  };
  enum class RetryVerdict { kAllowed, kThrottled, kOverBudget };

  UpstreamState(std::string name, CredentialState* credential, uint64_t seed,
                RetryThrottle::Options throttle, RetryBudget::Options budget);

  const std::string& name() const { return name_; }
  CredentialState& credential() const { return *credential_; }

  // May an attempt go here now? Checks the credential, the rate-limit cool-down and the breaker
  // (which may reserve a half-open probe slot: report it back with the outcome).
  Admission Admit(const BreakerSettings& settings, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // When an attempt could be admitted again, without changing anything: `now` if it could be now
  // (a half-open circuit counts as available), else the end of the credential bench, the
  // cool-down or the ejection, whichever is last.
  absl::Time AvailableAt(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  // Budget accounting: a first attempt in flight; a retry reserved from its decision (backoff
  // included) until its attempt ends. TryReserveRetry checks the throttle, then the budget.
  void StartFirstAttempt() ABSL_LOCKS_EXCLUDED(mu_);
  void FinishFirstAttempt() ABSL_LOCKS_EXCLUDED(mu_);
  RetryVerdict TryReserveRetry() ABSL_LOCKS_EXCLUDED(mu_);
  void FinishRetry() ABSL_LOCKS_EXCLUDED(mu_);

  // Outcomes. RecordFailure is a health failure (5xx, 529, connect failure, reset, timeout, bad
  // stream); it returns true if it opened the circuit. RecordRateLimited is a 429: the upstream
  // cools down until `cool_until`, the throttle loses a token, the breaker is not touched.
  void RecordSuccess(const BreakerSettings& settings, absl::Time now, uint64_t probe_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool RecordFailure(const BreakerSettings& settings, absl::Time now, uint64_t probe_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RecordRateLimited(absl::Time cool_until) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseProbe(uint64_t probe_id) ABSL_LOCKS_EXCLUDED(mu_);

  UpstreamStatus Status(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  // Recent time to first token, fed and read by least-latency routes; lock-free.
  LatencyEstimate& latency() { return latency_; }

 private:
  // Constant after construction.
  const std::string name_;
  CredentialState* const credential_;

  LatencyEstimate latency_;

  mutable absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);  // ejection jitter; seeded from Resilience's generator
  CircuitBreaker breaker_ ABSL_GUARDED_BY(mu_);
  RetryThrottle throttle_ ABSL_GUARDED_BY(mu_);
  RetryBudget budget_ ABSL_GUARDED_BY(mu_);
  absl::Time cooling_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t opened_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retries_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retries_throttled_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retries_over_budget_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_UPSTREAM_STATE_H_
