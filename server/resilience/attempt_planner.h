// AttemptPlanner is the retry and failover policy of one request, in one place for every
// capability (completions and embeddings): which target to try first (within a fallback tier by
// weight, or on a least-latency route the one with the lowest recent time to first token, with
// a share still by weight: docs/routing.md), and after each failed
// attempt whether to retry the same target (after a full-jitter backoff or the provider's
// retry-after), fail over to the next target, or stop. It skips targets whose circuit is open,
// that cool down after a rate limit or whose credential is benched; when every target is
// unavailable it still tries the one closest to recovery, once. It enforces the attempt limits,
// the request deadline, and each upstream's retry throttle and retry budget, feeds every outcome
// to the upstream's shared state (Resilience), and keeps the attempt list the caller sees. The
// first order of targets is OrderTargets' (target_order.h); what an outcome teaches the upstream
// is RecordUpstreamOutcome's (upstream_feedback.h).
//
// It does no I/O and never waits: it returns Steps (target + delay) and the caller runs them.
// Time comes from Resilience's Clock; randomness (the weighted order within a tier, backoff
// jitter) from the generator the caller passes per request, so no draw takes a shared lock. It
// takes no registry lock either: each target's UpstreamState was resolved when the config
// snapshot was built (TargetEntry::upstream). Not thread-safe: one planner per request, driven
// from one thread at a time.
#ifndef TURNPIKE_SERVER_RESILIENCE_ATTEMPT_PLANNER_H_
#define TURNPIKE_SERVER_RESILIENCE_ATTEMPT_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/config/runtime_config.h"
#include "server/resilience/failure_kind.h"
#include "server/resilience/resilience.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {

class AttemptPlanner {
 public:
  struct Step {
    enum class Kind { kAttempt, kGiveUp };
    Kind kind = Kind::kGiveUp;
    size_t target = 0;     // index into route.targets
    absl::Duration delay;  // wait before starting the attempt
    // Limit on the attempt's time to first token (shorter for half-open probes).
    absl::Duration first_token_timeout;
    // kGiveUp: when a target may be available again (for RetryInfo); zero if unknown.
    absl::Duration retry_hint;
  };

  // `route` must outlive the planner (its targets' `upstream` set by RuntimeConfig::Build).
  // `deadline` is the request's (client deadline or route total). `rng` is drawn from in the
  // constructor and in Finish(); it must outlive the planner and not be used concurrently by
  // another thread (e.g. the generator of the thread that drives the request; tests pass a
  // seeded one).
  AttemptPlanner(const RouteEntry& route, Resilience& resilience, absl::Time deadline,
                 absl::BitGenRef rng);
  ~AttemptPlanner();  // releases any reservation still held
  AttemptPlanner(const AttemptPlanner&) = delete;
  AttemptPlanner& operator=(const AttemptPlanner&) = delete;

  // Takes `target` out of this request before First(): it cannot serve what the request needs.
  // The attempt list shows it SKIPPED with outcome FAILED_PRECONDITION and `reason`.
  void Exclude(size_t target, const std::string& reason);
  // The request's first step.
  Step First();
  // The attempt of the last kAttempt step starts now (after its delay).
  void Begin();
  // The running attempt produced its first token: a half-open probe is judged healthy here.
  void FirstToken();
  // The running attempt ended. Records it and returns the next step.
  Step Finish(const AttemptOutcome& outcome, absl::Duration latency);
  // The request ends without running the pending step (cancelled during a backoff, loop stopped).
  void Abandon();

  // Every attempt (and skipped target) so far, with what was done after each.
  const google::protobuf::RepeatedPtrField<v1::Attempt>& attempts() const { return attempts_; }
  // 1-based attempt number on the current target.
  int attempt_on_target() const;
  // Distinct targets attempted or skipped so far.
  int targets_involved() const;
  size_t current() const { return current_; }

 private:
  struct TargetState {
    UpstreamState* upstream = nullptr;
    int attempts = 0;
    bool excluded = false;       // auth, quota, unsupported: not again in this request
    bool skip_recorded = false;  // a SKIPPED entry is in the attempt list
  };
  enum class Pending { kNone, kFirst, kRetry };

  Step AttemptStep(size_t target, absl::Duration delay, bool probe);
  void RecordSkip(size_t target, const std::string& reason, absl::Time available_at,
                  absl::StatusCode outcome = absl::StatusCode::kUnavailable);
  // Feeds the running attempt's outcome to its upstream (upstream_feedback.h).
  void RecordOutcome(const AttemptOutcome& outcome);
  // The candidate steps after a failure; each sets `why_not` when it cannot be taken.
  bool TrySame(const AttemptOutcome& outcome, Step* step, std::string* why_not);
  bool TryFailover(Step* step, std::string* why_not);
  absl::Duration RetryHint() const;
  absl::Time Now() const;

  // Constant after construction.
  const RouteEntry& route_;
  Resilience& resilience_;
  const absl::Time deadline_;
  absl::BitGenRef rng_;

  std::vector<TargetState> targets_;
  std::vector<size_t> order_;  // OrderTargets (target_order.h)
  google::protobuf::RepeatedPtrField<v1::Attempt> attempts_;
  size_t current_ = 0;
  Pending pending_ = Pending::kNone;  // a step was returned and holds reservations
  bool running_ = false;
  bool running_is_retry_ = false;
  uint64_t probe_id_ = 0;  // of the pending or running attempt
  bool probe_judged_ = false;
  bool panic_ = false;
  absl::Time attempt_begun_;       // of the running attempt
  bool latency_recorded_ = false;  // its time to first token went into the upstream's figure
  int total_attempts_ = 0;
  std::string note_;  // prefixed to the next attempt's reason (a wait before it, a panic pick)
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_ATTEMPT_PLANNER_H_
