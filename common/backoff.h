// Backoff between retries: capped exponential with full jitter (AWS "Exponential Backoff and
// Jitter"; Envoy and gRFC A6 use the same shape). The one backoff of the project: the
// AttemptPlanner's retries and the config watch client's reconnects. Pure functions; randomness
// comes from the caller's generator.
#ifndef TURNPIKE_COMMON_BACKOFF_H_
#define TURNPIKE_COMMON_BACKOFF_H_

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace turnpike {

// The wait before retry number `retry` (0 for the first retry): uniform in
// [0, min(cap, base * 2^retry)). Never negative; zero when base or cap is zero.
absl::Duration FullJitterBackoff(absl::Duration base, absl::Duration cap, int retry,
                                 absl::BitGenRef rng);

// The upper bound FullJitterBackoff() draws below: min(cap, base * 2^retry), without overflow.
absl::Duration BackoffCeiling(absl::Duration base, absl::Duration cap, int retry);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_BACKOFF_H_
