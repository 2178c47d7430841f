// What one attempt's outcome teaches the shared state of the upstream it ran on (Resilience): a
// success or failure for its circuit breaker, a rate-limit cool-down, a benched credential, and
// the release of a half-open probe the outcome does not judge. Circuit openings and benched
// credentials are reported through Resilience::Report. Thread-safe as UpstreamState is; called by
// the AttemptPlanner of the request.
#ifndef TURNPIKE_SERVER_RESILIENCE_UPSTREAM_FEEDBACK_H_
#define TURNPIKE_SERVER_RESILIENCE_UPSTREAM_FEEDBACK_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/resilience/failure_kind.h"

namespace turnpike {

class Resilience;
struct BreakerSettings;
struct TargetEntry;

// Records `outcome` of an attempt on `target` (its `upstream` set) at `now`; `probe` is the
// half-open probe the attempt holds, 0 if none (or if FirstToken already judged it). Returns
// true when the target must not be tried again in this request: its credential is benched, or it
// cannot serve the request.
bool RecordUpstreamOutcome(const AttemptOutcome& outcome, const TargetEntry& target,
                           const BreakerSettings& breaker, uint64_t probe, absl::Time now,
                           Resilience& resilience);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_UPSTREAM_FEEDBACK_H_
