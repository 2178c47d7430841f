#include "server/admission/quota_window.h"

namespace turnpike {

QuotaWindow BudgetWindowAt(config::v1::BudgetWindow window, absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond civil = absl::ToCivilSecond(now, utc);
  switch (window) {
    case config::v1::BUDGET_WINDOW_DAILY: {
      const absl::CivilDay day(civil);
      return {absl::FromCivil(day, utc), absl::FromCivil(day + 1, utc)};
    }
    case config::v1::BUDGET_WINDOW_MONTHLY: {
      const absl::CivilMonth month(civil);
      return {absl::FromCivil(month, utc), absl::FromCivil(month + 1, utc)};
    }
    default:
      return {absl::UnixEpoch(), absl::InfiniteFuture()};
  }
}

QuotaWindow MinuteWindowAt(absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilMinute minute(absl::ToCivilSecond(now, utc));
  return {absl::FromCivil(minute, utc), absl::FromCivil(minute + 1, utc)};
}

}  // namespace turnpike
