// The usage ledger against real SQLite files in temporary directories, on a simulated clock:
// idempotent ingest, rollups equal to the raw rows they sum, spend by every dimension and
// granularity, UTC boundaries, listing, retention, bad batches, and the ingest rate.
#include "controlplane/usage_ledger.h"

#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "controlplane/migrations.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"
#include "tests/controlplane/usage_test_util.h"

namespace turnpike::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace ::turnpike::controlplane::testing;  // NOLINT

class UsageLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Store::Options o;
    o.path = dir_.File("usage.db");
    auto store = Store::Open(o, EmbeddedMigrations());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ledger_ = std::make_unique<UsageLedger>(*store_, clock_, UsageLedger::Options{});
  }

  UsageLedger::IngestResult Ingest(const std::vector<u::UsageRecord>& records) {
    google::protobuf::RepeatedPtrField<u::UsageRecord> batch(records.begin(), records.end());
    auto result = ledger_->Ingest(batch);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : UsageLedger::IngestResult{};
  }

  u::QuerySpendRequest Query(absl::Time from, absl::Time to, u::Granularity g,
                             std::vector<u::GroupBy> by = {}, const std::string& tag = "") {
    u::QuerySpendRequest q;
    *q.mutable_start_time() = Ts(from);
    *q.mutable_end_time() = Ts(to);
    q.set_granularity(g);
    for (auto b : by) q.add_group_by(b);
    q.set_tag_key(tag);
    return q;
  }

  std::map<SpendKey, SpendSums> Spend(const u::QuerySpendRequest& q) {
    auto rows = ledger_->QuerySpend(q);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? FromRows(*rows, q) : std::map<SpendKey, SpendSums>{};
  }

  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(store_
                    ->Read([&](SqliteDb& db) -> absl::Status {
                      auto v = db.QueryInt(sql);
                      if (!v.ok()) return v.status();
                      n = *v;
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  turnpike::testing::TempDir dir_;
  SimulatedClock clock_{Utc(2026, 12, 6, 12)};
  std::unique_ptr<Store> store_;
  std::unique_ptr<UsageLedger> ledger_;
};

TEST_F(UsageLedgerTest, ARecordDeliveredTwiceIsCountedOnce) {
  const absl::Time t = Utc(2026, 12, 6, 9, 30);
  std::vector<u::UsageRecord> batch = {Record("r1", t), Record("r2", t),
                                       Record("r3", t, "never-configured", "m", "p", "ghost")};
  auto first = Ingest(batch);
  EXPECT_EQ(first.accepted, 3);
  EXPECT_EQ(first.duplicates, 0);
  auto again = Ingest(batch);  // the gateway resends the whole batch
  EXPECT_EQ(again.accepted, 0);
  EXPECT_EQ(again.duplicates, 3);
  // A duplicate inside one batch is caught too.
  auto inner = Ingest({Record("r4", t), Record("r4", t)});
  EXPECT_EQ(inner.accepted, 1);
  EXPECT_EQ(inner.duplicates, 1);

  auto spend = Spend(Query(Utc(2026, 12, 6), Utc(2026, 12, 7), u::GRANULARITY_DAY));
  ASSERT_EQ(spend.size(), 1u);
  EXPECT_EQ(spend.begin()->second[0], 4);         // requests
  EXPECT_EQ(spend.begin()->second[6], 4 * 1500);  // cost
  EXPECT_EQ(Count("SELECT count(*) FROM usage"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM usage WHERE caller = 'ghost'"), 1);  // unknown kept
  EXPECT_EQ(ledger_->ingested_total(), 4);
  EXPECT_EQ(ledger_->duplicate_total(), 4);
  EXPECT_DOUBLE_EQ(ledger_->lag_seconds(), absl::ToDoubleSeconds(absl::Hours(2.5)));
}

// A few hundred random records over two months: every grouping and granularity QuerySpend
// answers (rollups, or raw rows for user and tag) equals the sums computed from the records.
TEST_F(UsageLedgerTest, SpendEqualsTheSumsOfTheRecordsForEveryGroupingAndGranularity) {
  std::mt19937_64 rng(42);
  auto pick = [&](std::vector<std::string> v) { return v[rng() % v.size()]; };
  std::vector<u::UsageRecord> records;
  const absl::Time base = Utc(2026, 10, 25);
  for (int i = 0; i < 400; ++i) {
    absl::Time t = base + absl::Seconds(static_cast<int64_t>(rng() % (40 * 86400)));
    u::UsageRecord r = Record(absl::StrCat("req-", i), t, pick({"summaries", "triage", "search"}),
                              pick({"gpt-4o-mini", "claude-haiku", "gemini-flash"}),
                              pick({"openai", "anthropic", "gemini"}), pick({"billing", "crm", ""}),
                              rng() % 5000, rng() % 800, rng() % 90000);
    r.set_user(pick({"alice", "bob", ""}));
    r.set_cached_input_tokens(r.input_tokens() / 3);
    r.set_cache_write_input_tokens(r.input_tokens() / 5);
    r.set_reasoning_output_tokens(r.output_tokens() / 4);
    r.set_cost_known(rng() % 7 != 0);
    if (!r.cost_known()) r.set_cost_usd_micros(0);
    r.set_usage_estimated(rng() % 9 == 0);
    if (rng() % 2) (*r.mutable_tags())["team"] = pick({"risk", "ops"});
    records.push_back(r);
  }
  for (size_t i = 0; i < records.size(); i += 64) {
    std::vector<u::UsageRecord> batch(records.begin() + i,
                                      records.begin() + std::min(records.size(), i + 64));
    Ingest(batch);
  }

  // The rollup table itself equals the raw rows it sums.
  EXPECT_EQ(Count("SELECT sum(requests) FROM usage_hourly"), 400);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT (start_time / 3600000000) * 3600000000 AS h, "
                  "capability, model, provider, caller, count(*) AS n, sum(output_tokens) AS o, "
                  "sum(CASE WHEN cost_known THEN cost_usd_micros ELSE 0 END) AS c FROM usage "
                  "GROUP BY 1, 2, 3, 4, 5) r JOIN usage_hourly h ON h.hour = r.h AND "
                  "h.capability = r.capability AND h.model = r.model AND h.provider = r.provider "
                  "AND h.caller = r.caller WHERE h.requests = r.n AND h.output_tokens = r.o AND "
                  "h.cost_usd_micros = r.c"),
            Count("SELECT count(*) FROM usage_hourly"));

  const std::vector<std::vector<u::GroupBy>> groupings = {
      {},
      {u::GROUP_BY_CAPABILITY},
      {u::GROUP_BY_MODEL},
      {u::GROUP_BY_PROVIDER},
      {u::GROUP_BY_CALLER},
      {u::GROUP_BY_USER},
      {u::GROUP_BY_TAG},
      {u::GROUP_BY_CAPABILITY, u::GROUP_BY_MODEL},
      {u::GROUP_BY_CALLER, u::GROUP_BY_USER, u::GROUP_BY_TAG}};
  for (auto g : {u::GRANULARITY_HOUR, u::GRANULARITY_DAY, u::GRANULARITY_MONTH}) {
    for (const auto& by : groupings) {
      // A range cutting into the data at hour boundaries on both ends.
      auto q = Query(Utc(2026, 10, 29, 7), Utc(2026, 11, 27, 13), g, by, "team");
      bool tag = false;
      for (auto b : by) tag = tag || b == u::GROUP_BY_TAG;
      if (!tag) q.clear_tag_key();
      auto got = Spend(q);
      auto want = Model(records, q);
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(got, want) << "granularity " << g << " " << q.ShortDebugString();
    }
  }
}

TEST_F(UsageLedgerTest, RangesAndBucketsFollowUtcHourDayAndMonthBoundaries) {
  const absl::Time dec1 = Utc(2026, 12, 1);
  Ingest({Record("nov-last", dec1 - absl::Microseconds(1)), Record("dec-first", dec1),
          Record("dec-1-23h", Utc(2026, 12, 1, 23, 59, 59)), Record("dec-2", Utc(2026, 12, 2)),
          Record("jan-first", Utc(2027, 1, 1))});
  // The month: [Dec 1, Jan 1) holds three records in one bucket starting Dec 1.
  auto month = Spend(Query(dec1, Utc(2027, 1, 1), u::GRANULARITY_MONTH));
  ASSERT_EQ(month.size(), 1u);
  EXPECT_EQ(month.begin()->first.first, absl::ToUnixSeconds(dec1));
  EXPECT_EQ(month.begin()->second[0], 3);
  // Per day over Nov 30 - Dec 3: Nov 30 (1), Dec 1 (2), Dec 2 (1).
  auto days = Spend(Query(Utc(2026, 11, 30), Utc(2026, 12, 3), u::GRANULARITY_DAY));
  std::vector<std::pair<int64_t, int64_t>> per_day;
  for (const auto& [k, v] : days) per_day.push_back({k.first, v[0]});
  EXPECT_THAT(per_day,
              ElementsAre(std::pair<int64_t, int64_t>{absl::ToUnixSeconds(Utc(2026, 11, 30)), 1},
                          std::pair<int64_t, int64_t>{absl::ToUnixSeconds(dec1), 2},
                          std::pair<int64_t, int64_t>{absl::ToUnixSeconds(Utc(2026, 12, 2)), 1}));
  // One hour [Dec 1 00:00, 01:00) holds only dec-first; end is exclusive.
  auto hour = Spend(Query(dec1, dec1 + absl::Hours(1), u::GRANULARITY_HOUR));
  ASSERT_EQ(hour.size(), 1u);
  EXPECT_EQ(hour.begin()->second[0], 1);
  // Months per year bucket by calendar month (Nov, Dec, Jan).
  auto months = Spend(Query(Utc(2026, 11, 1), Utc(2027, 2, 1), u::GRANULARITY_MONTH));
  EXPECT_EQ(months.size(), 3u);
  // The same from raw rows (grouped by user) agrees.
  auto raw =
      Spend(Query(Utc(2026, 11, 1), Utc(2027, 2, 1), u::GRANULARITY_MONTH, {u::GROUP_BY_USER}));
  ASSERT_EQ(raw.size(), months.size());
  for (auto a = raw.begin(), b = months.begin(); a != raw.end(); ++a, ++b) {
    EXPECT_EQ(a->first.first, b->first.first);
    EXPECT_EQ(a->second, b->second);
  }
}

TEST_F(UsageLedgerTest, BadQueriesNameTheField) {
  auto q = Query(Utc(2026, 12, 1, 0, 30), Utc(2026, 12, 2), u::GRANULARITY_DAY,
                 {u::GROUP_BY_MODEL, u::GROUP_BY_MODEL, u::GROUP_BY_TAG});
  auto r = ledger_->QuerySpend(q);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = GetDetail<google::rpc::BadRequest>(r.status());
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& f : bad->field_violations()) fields.push_back(f.field());
  EXPECT_THAT(fields, ElementsAre("start_time", "group_by[1]", "tag_key"));
}

TEST_F(UsageLedgerTest, AnAnswerTooLargeIsRefusedNotTruncated) {
  UsageLedger::Options o;
  o.max_spend_rows = 3;
  UsageLedger small(*store_, clock_, o);
  std::vector<u::UsageRecord> records;
  for (int i = 0; i < 4; ++i) {
    records.push_back(Record(absl::StrCat("r", i), Utc(2026, 12, 1) + absl::Hours(i)));
  }
  Ingest(records);
  auto q = Query(Utc(2026, 12, 1), Utc(2026, 12, 2), u::GRANULARITY_HOUR);
  EXPECT_EQ(small.QuerySpend(q).status().code(), absl::StatusCode::kOutOfRange);
  q.set_granularity(u::GRANULARITY_DAY);
  auto day = small.QuerySpend(q);
  ASSERT_TRUE(day.ok()) << day.status();
  EXPECT_EQ(day->size(), 1u);
}

TEST_F(UsageLedgerTest, ListUsageFiltersAndPaginates) {
  std::vector<u::UsageRecord> records;
  for (int i = 0; i < 25; ++i) {
    records.push_back(Record(absl::StrFormat("r%02d", i), Utc(2026, 12, 5) + absl::Minutes(i),
                             i % 2 ? "triage" : "summaries", "m", "p", i % 3 ? "crm" : "billing"));
  }
  (*records[4].mutable_tags())["team"] = "risk, \"ops\"";
  Ingest(records);
  u::ListUsageRequest req;
  req.set_page_size(10);
  std::vector<std::string> ids;
  int pages = 0;
  do {
    auto page = ledger_->ListUsage(req);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const auto& r : page->records()) ids.push_back(r.request_id());
    req.set_page_token(page->next_page_token());
  } while (!req.page_token().empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(ids.size(), 25u);
  EXPECT_EQ(ids.front(), "r00");
  EXPECT_EQ(ids.back(), "r24");

  u::ListUsageRequest by_id;
  by_id.set_request_id("r04");
  auto one = ledger_->ListUsage(by_id);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->records_size(), 1);
  EXPECT_EQ(one->records(0).SerializeAsString(), records[4].SerializeAsString());

  u::ListUsageRequest filtered;
  filtered.set_capability("triage");
  filtered.set_caller("crm");
  *filtered.mutable_start_time() = Ts(Utc(2026, 12, 5) + absl::Minutes(5));
  *filtered.mutable_end_time() = Ts(Utc(2026, 12, 5) + absl::Minutes(20));
  auto f = ledger_->ListUsage(filtered);
  ASSERT_TRUE(f.ok());
  std::vector<std::string> got;
  for (const auto& r : f->records()) got.push_back(r.request_id());
  // Odd i in [5, 20) with i % 3 != 0: 5, 7, 11, 13, 17, 19.
  EXPECT_THAT(got, ElementsAre("r05", "r07", "r11", "r13", "r17", "r19"));

  u::ListUsageRequest bad;
  bad.set_page_token("not-a-token");
  EXPECT_EQ(ledger_->ListUsage(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UsageLedgerTest, RetentionPrunesRawRowsAndKeepsRollups) {
  const absl::Time old_time = clock_.Now() - absl::Hours(24 * 100);
  const absl::Time recent = clock_.Now() - absl::Hours(24);
  Ingest({Record("old-1", old_time), Record("old-2", old_time + absl::Minutes(1)),
          Record("recent", recent)});
  auto pruned = ledger_->PruneExpired();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 2);
  EXPECT_EQ(Count("SELECT count(*) FROM usage"), 1);

  // Spend over the pruned period still answers, from the rollups.
  const absl::Time day = BucketStart(old_time, u::GRANULARITY_DAY);
  auto spend = Spend(Query(day, day + absl::Hours(24), u::GRANULARITY_DAY,
                           {u::GROUP_BY_CAPABILITY, u::GROUP_BY_MODEL}));
  ASSERT_EQ(spend.size(), 1u);
  EXPECT_EQ(spend.begin()->second[0], 2);
  EXPECT_EQ(spend.begin()->second[6], 3000);
  // Grouping by end user needs raw rows: refused for a range before the retention period.
  auto by_user = ledger_->QuerySpend(
      Query(day, day + absl::Hours(24), u::GRANULARITY_DAY, {u::GROUP_BY_USER}));
  EXPECT_EQ(by_user.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(by_user.status().message(), HasSubstr("raw usage records"));

  // Time moves on: the recent record ages out too, the rollups stay.
  clock_.Advance(absl::Hours(24 * 90));
  EXPECT_EQ(*ledger_->PruneExpired(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM usage"), 0);
  EXPECT_EQ(Count("SELECT sum(requests) FROM usage_hourly"), 3);
  // A resend of a pruned record is stored again (its request id is gone) but is itself
  // older than the retention: the gateway never holds records that long.
}

TEST_F(UsageLedgerTest, BadRecordsAreNamedAndTheRestOfTheBatchIsStored) {
  const absl::Time t = Utc(2026, 12, 6, 10);
  std::vector<u::UsageRecord> batch = {Record("ok-1", t), Record("", t), Record("ok-2", t),
                                       Record("no-start", t), Record("negative", t)};
  batch[3].clear_start_time();
  batch[4].set_output_tokens(-1);
  google::protobuf::RepeatedPtrField<u::UsageRecord> rep(batch.begin(), batch.end());
  auto result = ledger_->Ingest(rep);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->accepted, 2);
  ASSERT_EQ(result->refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result->refused.message(), HasSubstr("records[1].request_id"));
  EXPECT_THAT(result->refused.message(), HasSubstr("do not resend"));
  auto bad = GetDetail<google::rpc::BadRequest>(result->refused);
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& f : bad->field_violations()) fields.push_back(f.field());
  EXPECT_THAT(fields, ElementsAre("records[1].request_id", "records[3].start_time",
                                  "records[4].output_tokens"));
  EXPECT_EQ(Count("SELECT count(*) FROM usage"), 2);
  // Resending the same batch whole stores nothing twice.
  auto again = ledger_->Ingest(rep);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->accepted, 0);
  EXPECT_EQ(again->duplicates, 2);
  EXPECT_EQ(Count("SELECT sum(requests) FROM usage_hourly"), 2);

  // An oversized batch is refused whole.
  google::protobuf::RepeatedPtrField<u::UsageRecord> big;
  for (int i = 0; i < 1001; ++i) *big.Add() = Record(absl::StrCat("big-", i), t);
  auto refused = ledger_->Ingest(big);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  auto detail = GetDetail<google::rpc::BadRequest>(refused.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->field_violations(0).field(), "records");
  EXPECT_EQ(Count("SELECT count(*) FROM usage"), 2);
}

// The ingest rate: batches of 500 into a real SQLite file (WAL, synchronous=FULL) on this
// machine. Prints the figure; asserts nothing about wall-clock time (docs/usage.md).
TEST_F(UsageLedgerTest, IngestRate) {
  constexpr int kBatches = 40, kBatchSize = 500;
  std::vector<google::protobuf::RepeatedPtrField<u::UsageRecord>> batches(kBatches);
  const char* caps[] = {"summaries", "triage", "search", "chat"};
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatchSize; ++i) {
      u::UsageRecord r = Record(absl::StrCat("bench-", b, "-", i),
                                Utc(2026, 12, 6) + absl::Seconds(b * kBatchSize + i), caps[i % 4],
                                i % 2 ? "gpt-4o-mini" : "claude-haiku",
                                i % 2 ? "openai" : "anthropic", absl::StrCat("caller-", i % 8));
      r.set_user(absl::StrCat("user-", i % 50));
      r.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
      (*r.mutable_tags())["team"] = "risk";
      *batches[b].Add() = std::move(r);
    }
  }
  const absl::Time start = absl::Now();
  for (const auto& batch : batches) {
    auto result = ledger_->Ingest(batch);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->accepted, kBatchSize);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("usage ingest: records=%d batch=%d seconds=%.3f records_per_second=%.0f\n",
              kBatches * kBatchSize, kBatchSize, seconds, kBatches * kBatchSize / seconds);
}

}  // namespace
}  // namespace turnpike::controlplane

namespace turnpike::controlplane {
namespace {

// A database made by a binary that knew only 0001 (the config tables) gains the ledger on the
// next start and keeps its config.
// UsageRecord.features (migrations/0010_usage_features.sql) is stored and read back whole, in
// order, a value this control plane does not know included; a record without features reads
// back without them.
TEST_F(UsageLedgerTest, TheFeaturesARequestUsedAreStoredAndListed) {
  u::UsageRecord tools = Record("f1", Utc(2026, 12, 5, 1));
  tools.add_features(turnpike::v1::REQUEST_FEATURE_TOOLS);
  tools.add_features(turnpike::v1::REQUEST_FEATURE_IMAGES);
  tools.add_features(static_cast<turnpike::v1::RequestFeature>(99));  // from a newer gateway
  u::UsageRecord plain = Record("f2", Utc(2026, 12, 5, 2));
  Ingest({tools, plain});
  EXPECT_EQ(Count("SELECT count(*) FROM usage WHERE features = 'tools,images,99'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM usage WHERE features = ''"), 1);
  for (const u::UsageRecord& want : {tools, plain}) {
    u::ListUsageRequest req;
    req.set_request_id(want.request_id());
    auto got = ledger_->ListUsage(req);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->records_size(), 1);
    EXPECT_EQ(got->records(0).SerializeAsString(), want.SerializeAsString());
  }
}

TEST(UsageMigrationTest, ASchemaOneDatabaseGainsTheLedger) {
  turnpike::testing::TempDir dir;
  Store::Options o;
  o.path = dir.File("old.db");
  {
    auto v1 = Store::Open(o, EmbeddedMigrations().subspan(0, 1));
    ASSERT_TRUE(v1.ok()) << v1.status();
    EXPECT_EQ((*v1)->schema_version(), 1);
    ASSERT_TRUE((*v1)
                    ->Write([](SqliteDb& db) {
                      return db.Exec("INSERT INTO meta (key, value) VALUES ('kept', 'yes')");
                    })
                    .ok());
  }
  auto v2 = Store::Open(o, EmbeddedMigrations().subspan(0, 2));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->schema_version(), 2);
  EXPECT_TRUE((*v2)
                  ->Read([](SqliteDb& db) -> absl::Status {
                    auto kept = db.QueryInt("SELECT count(*) FROM meta WHERE key = 'kept'");
                    if (!kept.ok()) return kept.status();
                    if (*kept != 1) return absl::InternalError("meta row lost");
                    return db.QueryInt("SELECT count(*) FROM usage_hourly").status();
                  })
                  .ok());
}

}  // namespace
}  // namespace turnpike::controlplane
