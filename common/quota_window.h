// The windows quotas are counted and leased in (docs/limits.md, docs/budgets.md), computed the same
// way by the gateway and the control plane so both agree where a lease's window ends: a budget's
// limit applies per UTC day, per UTC month, or to one window for ever; a rate limit's per UTC
// minute [hh:mm:00, hh:mm+1:00). A window is a half-open interval [start, end). Pure functions of
// the time; thread-safe.
#ifndef TURNPIKE_COMMON_QUOTA_WINDOW_H_
#define TURNPIKE_COMMON_QUOTA_WINDOW_H_

#include "absl/time/time.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

struct QuotaWindow {
  absl::Time start;
  absl::Time end;
  bool Contains(absl::Time t) const { return start <= t && t < end; }
};

// The end of a BUDGET_WINDOW_TOTAL window: the last second a google.protobuf.Timestamp can hold
// (9999-12-31T23:59:59Z), so the API can show it. Its start is the Unix epoch.
inline absl::Time TotalWindowEnd() { return absl::FromUnixSeconds(253402300799); }

// The window of `kind` containing `now`. BUDGET_WINDOW_UNSPECIFIED (refused by validation) is
// treated as TOTAL.
QuotaWindow BudgetWindowAt(config::v1::BudgetWindow kind, absl::Time now);
// The UTC minute containing `now`.
QuotaWindow MinuteWindowAt(absl::Time now);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_QUOTA_WINDOW_H_
