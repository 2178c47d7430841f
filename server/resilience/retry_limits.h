// The two fleet-wide limits on retries to one upstream (docs/resilience.md):
//  * RetryThrottle, gRFC A6's token bucket: every failure takes a token, every success gives back
//    `token_ratio`; no retries while the bucket holds half its tokens or fewer. It stops retries
//    within a handful of failures when an upstream fails everything.
//  * RetryBudget, Envoy's retry budget: retries in flight (waiting or running) may not exceed
//    max(min_retry_concurrency, budget_percent of the requests in flight).
// Both are thread-compatible values: UpstreamState guards them with its mutex.
#ifndef TURNPIKE_SERVER_RESILIENCE_RETRY_LIMITS_H_
#define TURNPIKE_SERVER_RESILIENCE_RETRY_LIMITS_H_

#include <algorithm>
#include <cstdint>

namespace turnpike {

struct RetryThrottleOptions {
  double max_tokens = 10;
  double token_ratio = 0.1;
};

struct RetryBudgetOptions {
  int budget_percent = 20;
  int min_retry_concurrency = 3;
};

class RetryThrottle {
 public:
  using Options = RetryThrottleOptions;
  explicit RetryThrottle(Options options = {}) : options_(options), tokens_(options.max_tokens) {}

  void RecordFailure() { tokens_ = std::max(0.0, tokens_ - 1); }
  void RecordSuccess() { tokens_ = std::min(options_.max_tokens, tokens_ + options_.token_ratio); }
  bool RetryAllowed() const { return tokens_ > options_.max_tokens / 2; }
  double tokens() const { return tokens_; }

 private:
  Options options_;
  double tokens_;
};

class RetryBudget {
 public:
  using Options = RetryBudgetOptions;
  explicit RetryBudget(Options options = {}) : options_(options) {}

  // Reserves a retry if the budget allows one: the retry counts as an active request and an
  // active retry from now (its backoff included) until FinishRetry().
  bool TryReserveRetry() {
    const int64_t allowed = std::max<int64_t>(options_.min_retry_concurrency,
                                              active_requests_ * options_.budget_percent / 100);
    if (active_retries_ >= allowed) return false;
    ++active_retries_;
    ++active_requests_;
    return true;
  }
  void FinishRetry() {
    --active_retries_;
    --active_requests_;
  }
  // A first attempt in flight.
  void StartRequest() { ++active_requests_; }
  void FinishRequest() { --active_requests_; }

  int64_t active_requests() const { return active_requests_; }
  int64_t active_retries() const { return active_retries_; }

 private:
  Options options_;
  int64_t active_requests_ = 0;
  int64_t active_retries_ = 0;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_RETRY_LIMITS_H_
