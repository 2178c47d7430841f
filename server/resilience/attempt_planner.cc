#include "server/resilience/attempt_planner.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "server/providers/provider_adapter.h"
#include "server/resilience/target_order.h"
#include "server/resilience/upstream_feedback.h"

namespace turnpike {
namespace {

std::string Human(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

}  // namespace

AttemptPlanner::AttemptPlanner(const RouteEntry& route, Resilience& resilience, absl::Time deadline,
                               absl::BitGenRef rng)
    : route_(route), resilience_(resilience), deadline_(deadline), rng_(rng) {
  targets_.resize(route.targets.size());
  for (size_t i = 0; i < route.targets.size(); ++i) {
    targets_[i].upstream = route.targets[i].upstream;
    assert(targets_[i].upstream != nullptr);  // set by RuntimeConfig::Build
  }
  order_ = OrderTargets(route_, resilience_.clock(), rng_);
}

AttemptPlanner::~AttemptPlanner() { Abandon(); }

absl::Time AttemptPlanner::Now() const { return resilience_.clock().MonotonicNow(); }

AttemptPlanner::Step AttemptPlanner::AttemptStep(size_t target, absl::Duration delay, bool probe) {
  current_ = target;
  Step step;
  step.kind = Step::Kind::kAttempt;
  step.target = target;
  step.delay = delay;
  step.first_token_timeout = route_.timeouts.first_byte_timeout;
  if (probe) {
    step.first_token_timeout = std::min(step.first_token_timeout, route_.breaker.probe_timeout);
  }
  return step;
}

AttemptPlanner::Step AttemptPlanner::First() {
  const absl::Time now = Now();
  struct Unavailable {
    size_t target;
    UpstreamState::Admission admission;
  };
  std::vector<Unavailable> unavailable;
  for (size_t t : order_) {
    UpstreamState::Admission a = targets_[t].upstream->Admit(route_.breaker, now);
    if (a.admitted()) {
      for (const Unavailable& u : unavailable) {
        RecordSkip(u.target, u.admission.reason, u.admission.available_at);
      }
      probe_id_ = a.probe_id;
      pending_ = Pending::kFirst;
      return AttemptStep(t, absl::ZeroDuration(), a.kind == UpstreamState::Admission::Kind::kProbe);
    }
    unavailable.push_back({t, std::move(a)});
  }
  // Nothing is admitted. Wait for a rate-limit cool-down if it is the nearest recovery and fits;
  // otherwise try the open circuit (or benched credential) closest to recovery, once.
  const Unavailable* nearest = nullptr;
  const Unavailable* nearest_open = nullptr;
  for (const Unavailable& u : unavailable) {
    if (nearest == nullptr || u.admission.available_at < nearest->admission.available_at) {
      nearest = &u;
    }
    if (u.admission.kind != UpstreamState::Admission::Kind::kCooling &&
        (nearest_open == nullptr ||
         u.admission.available_at < nearest_open->admission.available_at)) {
      nearest_open = &u;
    }
  }
  const Unavailable* chosen = nullptr;
  absl::Duration wait;
  if (nearest != nullptr && nearest->admission.kind == UpstreamState::Admission::Kind::kCooling) {
    wait = nearest->admission.available_at - now;
    if (now + wait < deadline_ && wait <= route_.retry.max_retry_after) {
      chosen = nearest;
      note_ = absl::StrCat("waited ", Human(wait), " for the rate-limit cool-down; ");
    }
  }
  if (chosen == nullptr && nearest_open != nullptr) {
    chosen = nearest_open;
    wait = absl::ZeroDuration();
    panic_ = true;
    note_ = absl::StrCat("every target was unavailable, tried the one closest to recovery (",
                         chosen->admission.reason, "); ");
  }
  for (const Unavailable& u : unavailable) {
    if (&u != chosen) RecordSkip(u.target, u.admission.reason, u.admission.available_at);
  }
  if (chosen == nullptr) {
    Step give_up;
    give_up.retry_hint = RetryHint();
    return give_up;
  }
  probe_id_ = panic_ ? CircuitBreaker::kPanicProbe : 0;
  pending_ = Pending::kFirst;
  return AttemptStep(chosen->target, wait, /*probe=*/false);
}

void AttemptPlanner::Begin() {
  running_ = true;
  running_is_retry_ = pending_ == Pending::kRetry;
  pending_ = Pending::kNone;
  probe_judged_ = false;
  ++targets_[current_].attempts;
  ++total_attempts_;
  attempt_begun_ = Now();
  latency_recorded_ = false;
  if (!running_is_retry_) targets_[current_].upstream->StartFirstAttempt();
}

void AttemptPlanner::FirstToken() {
  if (running_ && route_.least_latency && !latency_recorded_) {
    const absl::Time now = Now();
    targets_[current_].upstream->latency().Record(now - attempt_begun_, now);
    latency_recorded_ = true;
  }
  if (!running_ || probe_id_ == 0 || probe_judged_) return;
  targets_[current_].upstream->RecordSuccess(route_.breaker, Now(), probe_id_);
  probe_judged_ = true;
}

void AttemptPlanner::RecordOutcome(const AttemptOutcome& outcome) {
  const uint64_t probe = probe_judged_ ? 0 : probe_id_;
  if (RecordUpstreamOutcome(outcome, route_.targets[current_], route_.breaker, probe, Now(),
                            resilience_)) {
    targets_[current_].excluded = true;
  }
  probe_id_ = 0;
}

AttemptPlanner::Step AttemptPlanner::Finish(const AttemptOutcome& outcome, absl::Duration latency) {
  running_ = false;
  UpstreamState& up = *targets_[current_].upstream;
  // A reply without a first-token mark (an embedding) counts whole for the latency figure.
  if (route_.least_latency && !latency_recorded_ && outcome.kind == FailureKind::kNone) {
    up.latency().Record(latency, Now());
    latency_recorded_ = true;
  }
  if (running_is_retry_) {
    up.FinishRetry();
  } else {
    up.FinishFirstAttempt();
  }
  RecordOutcome(outcome);

  const TargetEntry& target = route_.targets[current_];
  const int index = attempts_.size();
  v1::Attempt* a = attempts_.Add();
  a->set_provider(target.provider->name);
  a->set_model(target.model);
  a->set_fallback_position(target.fallback_position);
  a->set_attempt(targets_[current_].attempts);
  a->set_outcome(absl::StatusCodeToString(outcome.status.code()));
  if (!outcome.status.ok()) a->set_detail(std::string(outcome.status.message()));
  a->set_http_status(outcome.http_status);
  a->set_latency_us(absl::ToInt64Microseconds(latency));
  std::string note = std::move(note_);
  note_.clear();

  auto final_step = [&](const std::string& why) {
    v1::Attempt* rec = attempts_.Mutable(index);
    rec->set_disposition(v1::ATTEMPT_DISPOSITION_FINAL);
    rec->set_reason(absl::StrCat(note, why));
    Step give_up;
    give_up.retry_hint = RetryHint();
    return give_up;
  };

  if (outcome.kind == FailureKind::kNone) {
    a->set_disposition(v1::ATTEMPT_DISPOSITION_SERVED);
    if (!note.empty()) a->set_reason(note.substr(0, note.size() - 2));
    return Step();
  }
  if (outcome.committed) {
    return final_step("not retried: the reply had already started");
  }
  switch (outcome.kind) {
    case FailureKind::kCancelled:
      return final_step("cancelled by the client");
    case FailureKind::kDeadline:
      return final_step("the request's deadline passed");
    case FailureKind::kInvalidRequest:
      return final_step("not retried: the provider rejected the request");
    default:
      break;
  }
  if (Now() >= deadline_) return final_step("the request's deadline passed");
  if (panic_) return final_step("not retried: every target was unavailable");
  if (total_attempts_ >= route_.retry.max_attempts) {
    return final_step(absl::StrCat("attempt limit (", route_.retry.max_attempts, ") reached"));
  }

  const size_t previous = current_;
  Step step;
  std::string why_not_same;
  std::string why_not_failover;
  bool found;
  if (outcome.kind == FailureKind::kUpstream) {
    found = TrySame(outcome, &step, &why_not_same) || TryFailover(&step, &why_not_failover);
  } else {
    found = TryFailover(&step, &why_not_failover) || TrySame(outcome, &step, &why_not_same);
  }
  if (!found) {
    std::string why = why_not_same;
    if (!why_not_failover.empty()) {
      absl::StrAppend(&why, why.empty() ? "" : "; ", why_not_failover);
    }
    return final_step(why);
  }
  v1::Attempt* rec = attempts_.Mutable(index);
  if (step.target == previous) {
    rec->set_disposition(v1::ATTEMPT_DISPOSITION_RETRIED);
    rec->set_backoff_ms(absl::ToInt64Milliseconds(step.delay));
    rec->set_reason(
        absl::StrCat(note, FailureKindName(outcome.kind), ": retrying after ", Human(step.delay)));
  } else {
    rec->set_disposition(v1::ATTEMPT_DISPOSITION_FAILED_OVER);
    rec->set_reason(absl::StrCat(
        note, FailureKindName(outcome.kind), ": failing over to ",
        route_.targets[step.target].provider->name, "/", route_.targets[step.target].model,
        why_not_same.empty() ? "" : " (", why_not_same, why_not_same.empty() ? "" : ")"));
  }
  return step;
}

bool AttemptPlanner::TrySame(const AttemptOutcome& outcome, Step* step, std::string* why_not) {
  const size_t t = current_;
  TargetState& ts = targets_[t];
  if (ts.excluded) {
    *why_not = "not retried on the same credential";
    return false;
  }
  if (ts.attempts >= route_.retry.max_attempts_per_target) {
    *why_not = absl::StrCat(ts.attempts, " attempts on this target");
    return false;
  }
  const absl::Time now = Now();
  absl::Duration wait =
      FullJitterBackoff(route_.retry.base_backoff, route_.retry.max_backoff, ts.attempts - 1, rng_);
  absl::Duration hint = absl::Milliseconds(outcome.retry_after_ms);
  if (outcome.kind == FailureKind::kRateLimited && hint <= absl::ZeroDuration()) {
    hint = resilience_.options().default_rate_limit_cooldown;
  }
  if (hint > route_.retry.max_retry_after) {
    *why_not = absl::StrCat("retry-after ", Human(hint), " is longer than the route waits (",
                            Human(route_.retry.max_retry_after), ")");
    return false;
  }
  wait = std::max(wait, hint);
  if (ts.upstream->AvailableAt(now) > now + wait) {
    *why_not = "its circuit is open";
    return false;
  }
  if (now + wait >= deadline_) {
    *why_not = absl::StrCat("waiting ", Human(wait), " would pass the deadline");
    return false;
  }
  switch (ts.upstream->TryReserveRetry()) {
    case UpstreamState::RetryVerdict::kAllowed:
      break;
    case UpstreamState::RetryVerdict::kThrottled:
      *why_not = "retries throttled: the upstream is failing";
      return false;
    case UpstreamState::RetryVerdict::kOverBudget:
      *why_not = "retry budget exhausted";
      return false;
  }
  pending_ = Pending::kRetry;
  probe_id_ = 0;
  *step = AttemptStep(t, wait, /*probe=*/false);
  return true;
}

bool AttemptPlanner::TryFailover(Step* step, std::string* why_not) {
  const absl::Time now = Now();
  for (size_t t : order_) {
    TargetState& ts = targets_[t];
    if (t == current_ || ts.attempts > 0 || ts.excluded) continue;
    UpstreamState::Admission a = ts.upstream->Admit(route_.breaker, now);
    if (!a.admitted()) {
      RecordSkip(t, a.reason, a.available_at);
      continue;
    }
    const UpstreamState::RetryVerdict verdict = ts.upstream->TryReserveRetry();
    if (verdict != UpstreamState::RetryVerdict::kAllowed) {
      if (a.probe_id != 0) ts.upstream->ReleaseProbe(a.probe_id);
      const char* why = verdict == UpstreamState::RetryVerdict::kThrottled
                            ? "retries throttled: the upstream is failing"
                            : "retry budget exhausted";
      RecordSkip(t, why, now);
      *why_not = why;
      continue;
    }
    pending_ = Pending::kRetry;
    probe_id_ = a.probe_id;
    *step = AttemptStep(t, absl::ZeroDuration(), a.kind == UpstreamState::Admission::Kind::kProbe);
    return true;
  }
  if (why_not->empty()) *why_not = "no other target available";
  return false;
}

void AttemptPlanner::Exclude(size_t target, const std::string& reason) {
  targets_[target].excluded = true;
  std::erase(order_, target);
  RecordSkip(target, reason, Now(), absl::StatusCode::kFailedPrecondition);
}

void AttemptPlanner::RecordSkip(size_t target, const std::string& reason, absl::Time available_at,
                                absl::StatusCode outcome) {
  TargetState& ts = targets_[target];
  if (ts.skip_recorded) return;
  ts.skip_recorded = true;
  const TargetEntry& t = route_.targets[target];
  v1::Attempt* a = attempts_.Add();
  a->set_provider(t.provider->name);
  a->set_model(t.model);
  a->set_fallback_position(t.fallback_position);
  a->set_attempt(0);
  a->set_outcome(absl::StatusCodeToString(outcome));
  a->set_disposition(v1::ATTEMPT_DISPOSITION_SKIPPED);
  const absl::Time now = Now();
  a->set_reason(available_at > now
                    ? absl::StrCat(reason, "; available again in ", Human(available_at - now))
                    : reason);
}

absl::Duration AttemptPlanner::RetryHint() const {
  const absl::Time now = Now();
  absl::Duration best = absl::InfiniteDuration();
  for (const TargetState& ts : targets_) {
    const absl::Duration d = ts.upstream->AvailableAt(now) - now;
    if (d > absl::ZeroDuration()) best = std::min(best, d);
  }
  return best == absl::InfiniteDuration() ? absl::ZeroDuration() : best;
}

void AttemptPlanner::Abandon() {
  if (pending_ != Pending::kNone) {
    UpstreamState& up = *targets_[current_].upstream;
    if (pending_ == Pending::kRetry) up.FinishRetry();
    if (probe_id_ != 0 && probe_id_ != CircuitBreaker::kPanicProbe) up.ReleaseProbe(probe_id_);
    pending_ = Pending::kNone;
    probe_id_ = 0;
  }
  if (running_) {
    AttemptOutcome cancelled;
    cancelled.status = absl::CancelledError("abandoned");
    cancelled.kind = FailureKind::kCancelled;
    running_ = false;
    UpstreamState& up = *targets_[current_].upstream;
    if (running_is_retry_) {
      up.FinishRetry();
    } else {
      up.FinishFirstAttempt();
    }
    RecordOutcome(cancelled);
  }
}

int AttemptPlanner::attempt_on_target() const { return targets_[current_].attempts; }

int AttemptPlanner::targets_involved() const {
  int n = 0;
  for (const TargetState& ts : targets_) n += (ts.attempts > 0 || ts.skip_recorded) ? 1 : 0;
  return n;
}

}  // namespace turnpike
