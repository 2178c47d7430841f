#include "common/quota_window.h"

#include "absl/time/civil_time.h"

namespace turnpike {

QuotaWindow BudgetWindowAt(config::v1::BudgetWindow kind, absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  switch (kind) {
    case config::v1::BUDGET_WINDOW_DAILY: {
      absl::CivilDay day = absl::ToCivilDay(now, utc);
      return {absl::FromCivil(day, utc), absl::FromCivil(day + 1, utc)};
    }
    case config::v1::BUDGET_WINDOW_MONTHLY: {
      absl::CivilMonth month = absl::ToCivilMonth(now, utc);
      return {absl::FromCivil(month, utc), absl::FromCivil(month + 1, utc)};
    }
    default:
      return {absl::UnixEpoch(), TotalWindowEnd()};
  }
}

QuotaWindow MinuteWindowAt(absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilMinute minute = absl::ToCivilMinute(now, utc);
  return {absl::FromCivil(minute, utc), absl::FromCivil(minute + 1, utc)};
}

}  // namespace turnpike
