// The windows quotas are counted in, all aligned to UTC: a budget's day, month or whole life, and
// a rate limit's minute. The gateway and the control plane compute them the same way, so a lease
// names one window and both sides agree where it ends. Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_ADMISSION_QUOTA_WINDOW_H_
#define TURNPIKE_SERVER_ADMISSION_QUOTA_WINDOW_H_

#include "absl/time/time.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

struct QuotaWindow {
  absl::Time start;
  absl::Time end;  // exclusive; absl::InfiniteFuture() for a total budget
};

// The budget window that holds `now`: [00:00 UTC, next 00:00 UTC) for DAILY, the calendar month
// for MONTHLY, [Unix epoch, forever) for TOTAL (and for an unset window).
QuotaWindow BudgetWindowAt(config::v1::BudgetWindow window, absl::Time now);

// The UTC minute that holds `now`: [hh:mm:00, hh:mm+1:00).
QuotaWindow MinuteWindowAt(absl::Time now);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_QUOTA_WINDOW_H_
