#include "common/backoff.h"

#include <algorithm>

#include "absl/random/distributions.h"

namespace turnpike {

absl::Duration BackoffCeiling(absl::Duration base, absl::Duration cap, int retry) {
  if (base <= absl::ZeroDuration() || cap <= absl::ZeroDuration()) return absl::ZeroDuration();
  absl::Duration ceiling = base;
  for (int i = 0; i < retry && ceiling < cap; ++i) ceiling *= 2;
  return std::min(ceiling, cap);
}

absl::Duration FullJitterBackoff(absl::Duration base, absl::Duration cap, int retry,
                                 absl::BitGenRef rng) {
  const absl::Duration ceiling = BackoffCeiling(base, cap, retry);
  if (ceiling <= absl::ZeroDuration()) return absl::ZeroDuration();
  const int64_t ceiling_us = absl::ToInt64Microseconds(ceiling);
  if (ceiling_us <= 0) return absl::ZeroDuration();
  return absl::Microseconds(absl::Uniform<int64_t>(rng, 0, ceiling_us));
}

}  // namespace turnpike
