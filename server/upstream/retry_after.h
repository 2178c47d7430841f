// The provider's retry hint from HTTP response headers: `retry-after-ms` (milliseconds, an
// OpenAI and Azure extension) or `retry-after` (RFC 9110: delta-seconds or an HTTP date).
// A pure function: the current wall time is passed in, so HTTP dates are tested without a clock.
// Thread-safe.
#ifndef TURNPIKE_SERVER_UPSTREAM_RETRY_AFTER_H_
#define TURNPIKE_SERVER_UPSTREAM_RETRY_AFTER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace turnpike {

// The longest hint taken at face value (about 31 years); longer ones are clamped to it.
inline constexpr int64_t kMaxRetryAfterMs = int64_t{1'000'000'000'000};

// Folds one response header line ("Name: value", trailing CR/LF allowed) into the hint gathered
// from the earlier lines of the same header block, `so_far_ms` (0 if none), and returns the new
// hint in milliseconds. retry-after-ms takes precedence over retry-after in either order;
// fractions are truncated to whole milliseconds; an HTTP date is measured from `now` (wall time)
// and a past date means no wait. Negative, malformed or unrelated lines leave the hint unchanged.
int64_t ParseRetryHeader(absl::string_view header_line, absl::Time now, int64_t so_far_ms);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_UPSTREAM_RETRY_AFTER_H_
