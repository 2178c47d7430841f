#include "server/upstream/retry_after.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace turnpike {
namespace {

// `ms` as a whole, non-negative count of milliseconds, clamped to kMaxRetryAfterMs; -1 when it
// is NaN or negative.
int64_t ToMillis(double ms) {
  if (std::isnan(ms) || ms < 0) return -1;
  if (ms >= static_cast<double>(kMaxRetryAfterMs)) return kMaxRetryAfterMs;
  return static_cast<int64_t>(ms);
}

}  // namespace

int64_t ParseRetryHeader(absl::string_view header_line, absl::Time now, int64_t so_far_ms) {
  const absl::string_view line = absl::StripTrailingAsciiWhitespace(header_line);
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return so_far_ms;
  const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (name == "retry-after-ms") {
    double ms;
    if (!absl::SimpleAtod(value, &ms)) return so_far_ms;
    const int64_t parsed = ToMillis(ms);
    return parsed >= 0 ? parsed : so_far_ms;
  }
  // retry-after only counts when no retry-after-ms came before it.
  if (name != "retry-after" || so_far_ms != 0) return so_far_ms;
  double seconds;
  if (absl::SimpleAtod(value, &seconds)) {
    const int64_t parsed = ToMillis(seconds * 1000);
    return parsed >= 0 ? parsed : so_far_ms;
  }
  absl::Time when;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S", std::string(absl::StripSuffix(value, " GMT")),
                       &when, &err)) {
    return so_far_ms;
  }
  const absl::Duration d = when - now;
  if (d <= absl::ZeroDuration()) return 0;
  return std::min(absl::ToInt64Milliseconds(d), kMaxRetryAfterMs);
}

}  // namespace turnpike
