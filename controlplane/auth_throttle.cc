#include "controlplane/auth_throttle.h"

#include <algorithm>

namespace turnpike::controlplane {
namespace {

// More failures than this within the window all get the longest delay; older ones are dropped
// so memory stays bounded under a flood.
constexpr size_t kMaxRemembered = 10000;

}  // namespace

absl::Time AuthThrottle::RecordFailure() {
  const absl::Time now = clock_.MonotonicNow();
  absl::MutexLock lock(&mu_);
  while (!failures_.empty() && failures_.front() <= now - options_.window) failures_.pop_front();
  if (failures_.size() >= kMaxRemembered) failures_.pop_front();
  failures_.push_back(now);
  const int over = static_cast<int>(failures_.size()) - options_.free_failures;
  if (over <= 0 || waiting_ >= options_.max_waiting || options_.max_delay <= absl::ZeroDuration()) {
    return absl::InfinitePast();
  }
  const int doublings = std::min((over - 1) / std::max(options_.step, 1), 30);
  const absl::Duration delay =
      std::min(options_.first_delay * (int64_t{1} << doublings), options_.max_delay);
  ++waiting_;
  held_total_.fetch_add(1, std::memory_order_relaxed);
  return now + delay;
}

void AuthThrottle::Hold(absl::Time until) {
  absl::MutexLock lock(&mu_);
  clock_.AwaitWithDeadline(mu_, absl::Condition(&never_), until);
  --waiting_;
}

}  // namespace turnpike::controlplane
