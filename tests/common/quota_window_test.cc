#include "common/quota_window.h"

#include "gtest/gtest.h"

namespace turnpike {
namespace {

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST(QuotaWindowTest, DailyWindowRollsOverAtUtcMidnightExactly) {
  const QuotaWindow before = BudgetWindowAt(config::v1::BUDGET_WINDOW_DAILY,
                                            Utc(2026, 12, 6, 23, 59, 59) + absl::Milliseconds(999));
  EXPECT_EQ(before.start, Utc(2026, 12, 6));
  EXPECT_EQ(before.end, Utc(2026, 12, 7));
  const QuotaWindow at = BudgetWindowAt(config::v1::BUDGET_WINDOW_DAILY, Utc(2026, 12, 7));
  EXPECT_EQ(at.start, Utc(2026, 12, 7));
  EXPECT_EQ(at.end, Utc(2026, 12, 8));
}

TEST(QuotaWindowTest, MonthlyWindowIsTheCalendarMonthIncludingLeapFebruary) {
  const QuotaWindow feb = BudgetWindowAt(config::v1::BUDGET_WINDOW_MONTHLY, Utc(2028, 2, 29, 12));
  EXPECT_EQ(feb.start, Utc(2028, 2, 1));
  EXPECT_EQ(feb.end, Utc(2028, 3, 1));
  const QuotaWindow dec =
      BudgetWindowAt(config::v1::BUDGET_WINDOW_MONTHLY, Utc(2026, 12, 31, 23, 59, 59));
  EXPECT_EQ(dec.start, Utc(2026, 12, 1));
  EXPECT_EQ(dec.end, Utc(2027, 1, 1));
}

TEST(QuotaWindowTest, TotalWindowEndsAtTheLastTimestampAProtoCanHold) {
  const QuotaWindow total = BudgetWindowAt(config::v1::BUDGET_WINDOW_TOTAL, Utc(2026, 12, 6));
  EXPECT_EQ(total.start, absl::UnixEpoch());
  EXPECT_EQ(total.end, TotalWindowEnd());
  EXPECT_TRUE(total.Contains(Utc(2026, 12, 6)));
}

TEST(QuotaWindowTest, MinuteWindowIsTheUtcMinute) {
  const QuotaWindow w = MinuteWindowAt(Utc(2026, 12, 6, 10, 41, 59) + absl::Milliseconds(500));
  EXPECT_EQ(w.start, Utc(2026, 12, 6, 10, 41));
  EXPECT_EQ(w.end, Utc(2026, 12, 6, 10, 42));
}

}  // namespace
}  // namespace turnpike
