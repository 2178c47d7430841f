// Resilience is the process-wide registry of what must outlive a single request: the state of
// every upstream (circuit breaker, retry throttle, retry budget, rate-limit cool-down), of every
// provider credential, and each route's response cache. Created once in GatewayCore, shared by
// every exchange (through CallEnv); state survives config swaps because it is keyed by names
// (provider, model, credential@version; capability), not by config objects, and
// RuntimeConfig::Build resolves each target's state here once per snapshot (TargetEntry::upstream),
// so requests follow pointers and never take the registry's lock. Time is injected (a Clock); the
// injected generator only seeds new upstreams: per-request draws (jitter, weighted picks) use the
// caller's generator (AttemptPlanner). Thread-safe: the registry has one mutex, taken when a
// snapshot is built and by Status(); each upstream has its own mutex.
#ifndef TURNPIKE_SERVER_RESILIENCE_RESILIENCE_H_
#define TURNPIKE_SERVER_RESILIENCE_RESILIENCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/resilience/response_cache.h"
#include "server/resilience/retry_limits.h"
#include "server/resilience/upstream_state.h"

namespace turnpike {

class Resilience {
 public:
  struct Options {
    RetryThrottle::Options throttle;
    RetryBudget::Options budget;
    // How long an upstream cools down after a 429 that named no retry-after.
    absl::Duration default_rate_limit_cooldown = absl::Seconds(1);
    // Told (from a request's thread, never under a lock) when a circuit opens or a credential is
    // benched: main logs it as a warning. May be empty.
    std::function<void(const std::string& event)> on_event;
  };

  Resilience(Options options, Clock& clock, absl::BitGenRef rng);
  Resilience(const Resilience&) = delete;
  Resilience& operator=(const Resilience&) = delete;

  // The upstream (provider, model, credential); created on first use, never destroyed, so the
  // same name always gives the same object. `credential` identifies the secret (name@version),
  // never the secret itself. Called when a snapshot is built, not per request.
  UpstreamState& Upstream(std::string_view provider, std::string_view model,
                          std::string_view credential) ABSL_LOCKS_EXCLUDED(mu_);
  // The response cache of `capability`, bounded to `max_bytes` (resized when a snapshot changes
  // the route). Called when a snapshot is built, not per request.
  ResponseCache& Cache(std::string_view capability, size_t max_bytes) ABSL_LOCKS_EXCLUDED(mu_);

  Clock& clock() const { return clock_; }
  const Options& options() const { return options_; }
  void Report(const std::string& event) const;

  // Every upstream's state, for metrics and the admin API.
  std::vector<UpstreamStatus> Status() const ABSL_LOCKS_EXCLUDED(mu_);

  // Degraded answers (every target failed), counted for metrics.
  void CountCacheFallback(bool stale) {
    (stale ? stale_cache_fallbacks_ : cache_fallbacks_).fetch_add(1, std::memory_order_relaxed);
  }
  void CountDegraded() { degraded_.fetch_add(1, std::memory_order_relaxed); }
  int64_t cache_fallbacks() const { return cache_fallbacks_.load(std::memory_order_relaxed); }
  int64_t stale_cache_fallbacks() const {
    return stale_cache_fallbacks_.load(std::memory_order_relaxed);
  }
  int64_t degraded() const { return degraded_.load(std::memory_order_relaxed); }

 private:
  // Constant after construction.
  const Options options_;
  Clock& clock_;

  mutable absl::Mutex mu_;
  absl::BitGenRef rng_ ABSL_GUARDED_BY(mu_);  // seeds each new upstream's ejection jitter
  absl::flat_hash_map<std::string, std::unique_ptr<CredentialState>> credentials_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<UpstreamState>> upstreams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ResponseCache>> caches_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> cache_fallbacks_{0};
  std::atomic<int64_t> stale_cache_fallbacks_{0};
  std::atomic<int64_t> degraded_{0};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_RESILIENCE_H_
