#include "server/resilience/circuit_breaker.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"

namespace turnpike {
namespace {

int64_t BucketIndex(const BreakerSettings& settings, absl::Time now) {
  const int64_t width_ns =
      std::max<int64_t>(1, absl::ToInt64Nanoseconds(settings.failure_rate_window) / 10);
  return absl::ToInt64Nanoseconds(now - absl::UnixEpoch()) / width_ns;
}

}  // namespace

CircuitBreaker::Admission CircuitBreaker::Admit(const BreakerSettings& settings, absl::Time now,
                                                absl::BitGenRef rng) {
  Admission admission;
  if (state_ == State::kClosed) return admission;
  if (state_ == State::kOpen) {
    if (now < open_until_) {
      admission.kind = Admission::Kind::kRejected;
      admission.retry_at = open_until_;
      admission.reason = absl::StrCat("circuit open (", open_reason_, ")");
      return admission;
    }
    state_ = State::kHalfOpen;
    probes_.clear();
  }
  // Half-open. A probe that missed its deadline counts as failed: never stuck half-open.
  for (const Probe& p : probes_) {
    if (p.deadline <= now) {
      Open(settings, now, "half-open probe timed out", rng);
      admission.kind = Admission::Kind::kRejected;
      admission.retry_at = open_until_;
      admission.reason = absl::StrCat("circuit open (", open_reason_, ")");
      return admission;
    }
  }
  if (static_cast<int>(probes_.size()) < std::max(1, settings.half_open_probes)) {
    admission.kind = Admission::Kind::kProbe;
    admission.probe_id = next_probe_id_++;
    probes_.push_back({admission.probe_id, now + settings.probe_timeout});
    return admission;
  }
  admission.kind = Admission::Kind::kRejected;
  admission.retry_at = probes_.front().deadline;
  for (const Probe& p : probes_) admission.retry_at = std::min(admission.retry_at, p.deadline);
  admission.reason = "circuit half-open, probe in flight";
  return admission;
}

void CircuitBreaker::RecordSuccess(const BreakerSettings& settings, absl::Time now,
                                   uint64_t probe_id) {
  switch (state_) {
    case State::kClosed:
      consecutive_ = 0;
      AddToWindow(settings, now, /*failure=*/false);
      return;
    case State::kOpen:
      if (probe_id == kPanicProbe) Close(now);
      return;
    case State::kHalfOpen:
      if (probe_id == kPanicProbe) {
        Close(now);
        return;
      }
      for (const Probe& p : probes_) {
        if (p.id == probe_id) {
          Close(now);
          return;
        }
      }
      return;  // an attempt admitted before the circuit opened: no verdict
  }
}

bool CircuitBreaker::RecordFailure(const BreakerSettings& settings, absl::Time now,
                                   uint64_t probe_id, absl::BitGenRef rng) {
  switch (state_) {
    case State::kClosed: {
      ++consecutive_;
      AddToWindow(settings, now, /*failure=*/true);
      if (consecutive_ >= std::max(1, settings.consecutive_failures)) {
        Open(settings, now, absl::StrCat(consecutive_, " consecutive failures"), rng);
        return true;
      }
      const auto [total, failures] = WindowCounts(settings, now);
      if (total >= std::max(1, settings.minimum_volume) &&
          failures * 100 >= static_cast<int64_t>(settings.failure_rate_percent) * total) {
        Open(settings, now,
             absl::StrCat(failures * 100 / total, "% of ", total, " attempts failed"), rng);
        return true;
      }
      return false;
    }
    case State::kOpen:
      return false;
    case State::kHalfOpen:
      for (const Probe& p : probes_) {
        if (p.id == probe_id) {
          Open(settings, now, "half-open probe failed", rng);
          return true;
        }
      }
      return false;
  }
  return false;
}

void CircuitBreaker::ReleaseProbe(uint64_t probe_id) {
  probes_.erase(std::remove_if(probes_.begin(), probes_.end(),
                               [&](const Probe& p) { return p.id == probe_id; }),
                probes_.end());
}

void CircuitBreaker::Open(const BreakerSettings& settings, absl::Time now, std::string reason,
                          absl::BitGenRef rng) {
  // Time spent healthy since the last close pays back one ejection per base ejection time.
  if (state_ == State::kClosed && closed_at_ != absl::InfinitePast() &&
      settings.base_ejection > absl::ZeroDuration()) {
    const int64_t healthy = (now - closed_at_) / settings.base_ejection;
    ejections_ = static_cast<int>(std::max<int64_t>(0, ejections_ - healthy));
  }
  ++ejections_;
  absl::Duration ejection = std::min(settings.base_ejection * ejections_, settings.max_ejection);
  ejection += ejection * absl::Uniform(rng, 0.0, 0.1);
  state_ = State::kOpen;
  open_until_ = now + ejection;
  open_reason_ = std::move(reason);
  consecutive_ = 0;
  probes_.clear();
  window_ = {};
}

void CircuitBreaker::Close(absl::Time now) {
  state_ = State::kClosed;
  closed_at_ = now;
  consecutive_ = 0;
  probes_.clear();
  window_ = {};
}

void CircuitBreaker::AddToWindow(const BreakerSettings& settings, absl::Time now, bool failure) {
  const int64_t index = BucketIndex(settings, now);
  Bucket& bucket = window_[static_cast<size_t>(index % kBuckets)];
  if (bucket.index != index) bucket = Bucket{index, 0, 0};
  (failure ? bucket.failures : bucket.successes) += 1;
}

std::pair<int64_t, int64_t> CircuitBreaker::WindowCounts(const BreakerSettings& settings,
                                                         absl::Time now) const {
  const int64_t index = BucketIndex(settings, now);
  int64_t total = 0;
  int64_t failures = 0;
  for (const Bucket& b : window_) {
    if (b.index < 0 || b.index <= index - kBuckets || b.index > index) continue;
    total += b.successes + b.failures;
    failures += b.failures;
  }
  return {total, failures};
}

}  // namespace turnpike
