// The CSV cells of the usage export: RFC 4180 quoting, the formula guard, dollars from
// micro-dollars, and unknown costs left empty.
#include "controlplane/usage_csv.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/usage_test_util.h"

namespace turnpike::controlplane {
namespace {

using ::testing::ElementsAre;
using namespace ::turnpike::controlplane::testing;  // NOLINT

std::string Cell(std::string_view v) {
  std::string out;
  AppendCsvText(out, v);
  return out;
}

TEST(UsageCsvTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(Cell("plain"), "plain");
  EXPECT_EQ(Cell(""), "");
  EXPECT_EQ(Cell("a,b"), "\"a,b\"");
  EXPECT_EQ(Cell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Cell("two\r\nlines"), "\"two\r\nlines\"");
}

TEST(UsageCsvTest, CellsThatASpreadsheetWouldRunAreGuarded) {
  EXPECT_EQ(Cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
  EXPECT_EQ(Cell("+1"), "'+1");
  EXPECT_EQ(Cell("-1"), "'-1");
  EXPECT_EQ(Cell("@sum"), "'@sum");
}

TEST(UsageCsvTest, DollarsHaveSixDecimals) {
  EXPECT_EQ(MicrosToDollars(0), "0.000000");
  EXPECT_EQ(MicrosToDollars(1234567), "1.234567");
  EXPECT_EQ(MicrosToDollars(5), "0.000005");
  EXPECT_EQ(MicrosToDollars(-1500000), "-1.500000");
}

TEST(UsageCsvTest, ARecordRowHasEveryColumnAndLeavesAnUnknownCostEmpty) {
  u::UsageRecord r = Record("r,1", Utc(2026, 12, 6, 9, 30));
  r.set_cost_known(false);
  r.set_cost_usd_micros(0);
  r.set_user("");
  (*r.mutable_tags())["team"] = "risk";
  std::string csv = RecordCsvHeader();
  AppendRecordCsvRow(csv, r);
  auto rows = ParseCsv(csv);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[1].size(), rows[0].size());
  auto col = [&](const std::string& name) {
    return rows[1][std::find(rows[0].begin(), rows[0].end(), name) - rows[0].begin()];
  };
  EXPECT_EQ(col("request_id"), "r,1");
  EXPECT_EQ(col("start_time"), "2026-12-06T09:30:00Z");
  EXPECT_EQ(col("cost_known"), "false");
  EXPECT_EQ(col("cost_usd"), "");
  EXPECT_EQ(col("cost_usd_micros"), "");
  EXPECT_EQ(col("tags"), "{\"team\":\"risk\"}");
  EXPECT_THAT(std::vector<std::string>(rows[1].begin() + 7, rows[1].begin() + 8),
              ElementsAre(""));  // the empty user cell is still a cell
}

TEST(UsageCsvTest, ARecordRowSaysWhichChainAndLatencyClassServed) {
  u::UsageRecord r = Record("r2", Utc(2026, 12, 6, 9, 30));
  r.set_tier_chain("gold");
  r.set_variant("candidate");
  r.set_latency_class("batch");
  std::string csv = RecordCsvHeader();
  AppendRecordCsvRow(csv, r);
  u::UsageRecord plain = Record("r3", Utc(2026, 12, 6, 9, 31));
  AppendRecordCsvRow(csv, plain);
  auto rows = ParseCsv(csv);
  ASSERT_EQ(rows.size(), 3u);
  // The three routing columns come last but one (features closes the row), in this order.
  ASSERT_GE(rows[0].size(), 4u);
  EXPECT_THAT(std::vector<std::string>(rows[0].end() - 4, rows[0].end()),
              ElementsAre("tier_chain", "variant", "latency_class", "features"));
  ASSERT_EQ(rows[1].size(), rows[0].size());
  EXPECT_THAT(std::vector<std::string>(rows[1].end() - 4, rows[1].end() - 1),
              ElementsAre("gold", "candidate", "batch"));
  // A record the route's own targets served (or stored before the fields existed): empty cells.
  ASSERT_EQ(rows[2].size(), rows[0].size());
  EXPECT_THAT(std::vector<std::string>(rows[2].end() - 4, rows[2].end() - 1),
              ElementsAre("", "", ""));
}

TEST(UsageCsvTest, ARecordRowNamesTheFeaturesTheRequestUsed) {
  u::UsageRecord r = Record("r4", Utc(2026, 12, 6, 9, 30));
  r.add_features(turnpike::v1::REQUEST_FEATURE_TOOLS);
  r.add_features(turnpike::v1::REQUEST_FEATURE_JSON_SCHEMA);
  std::string csv = RecordCsvHeader();
  AppendRecordCsvRow(csv, r);
  AppendRecordCsvRow(csv, Record("r5", Utc(2026, 12, 6, 9, 31)));
  auto rows = ParseCsv(csv);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].back(), "features");
  EXPECT_EQ(rows[1].back(), "tools,json_schema");
  EXPECT_EQ(rows[2].back(), "");  // plain text
}

}  // namespace
}  // namespace turnpike::controlplane
