// UsageService over real gRPC against a real control plane (SQLite file in a temp dir, loopback
// port chosen by the kernel): a batch resent over the wire counts once, a bad batch's BadRequest
// reaches the client, and the CSV export parsed back equals QuerySpend and ListUsage.
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "tests/controlplane/usage_test_util.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::ElementsAre;

class UsageServiceTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    stub_ = u::UsageService::NewStub(Channel());
  }

  grpc::Status Report(const std::vector<u::UsageRecord>& records,
                      u::ReportUsageResponse* response) {
    grpc::ClientContext ctx;
    u::ReportUsageRequest req;
    for (const auto& r : records) *req.add_records() = r;
    // ReportUsage is a node RPC: the gateway's node token.
    auto node = u::UsageService::NewStub(NodeChannel(
        records.empty() || records[0].node_id().empty() ? "gw-1" : records[0].node_id()));
    return node->ReportUsage(&ctx, req, response);
  }

  std::string Export(const u::ExportUsageRequest& req, int* chunks) {
    grpc::ClientContext ctx;
    auto reader = stub_->ExportUsage(&ctx, req);
    u::ExportUsageResponse chunk;
    std::string csv;
    *chunks = 0;
    while (reader->Read(&chunk)) {
      ++*chunks;
      EXPECT_TRUE(chunk.csv().size() >= 2 && chunk.csv().substr(chunk.csv().size() - 2) == "\r\n");
      csv += chunk.csv();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return csv;
  }

  // Records over December 2026, in batches of 250 (the gateway's way).
  std::vector<u::UsageRecord> Seed(int n) {
    std::vector<u::UsageRecord> records;
    for (int i = 0; i < n; ++i) {
      u::UsageRecord r =
          Record(absl::StrCat("req-", i), Utc(2026, 12, 1) + absl::Minutes(i * 37),
                 i % 3 ? "claims-summary" : "ticket-triage",
                 i % 2 ? "gpt-4o-mini" : "claude-3-5-haiku", i % 2 ? "openai" : "anthropic",
                 i % 5 ? "billing" : "crm", 100 + i, 10 + i % 7, 1000 + 13 * i);
      r.set_user(i % 4 ? "alice@example.com" : "bob, \"the builder\"");
      (*r.mutable_tags())["team"] = i % 2 ? "risk" : "ops";
      if (i % 11 == 0) {
        r.set_cost_known(false);
        r.set_cost_usd_micros(0);
      }
      records.push_back(r);
    }
    for (size_t i = 0; i < records.size(); i += 250) {
      u::ReportUsageResponse resp;
      std::vector<u::UsageRecord> batch(records.begin() + i,
                                        records.begin() + std::min(records.size(), i + 250));
      grpc::Status s = Report(batch, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return records;
  }

  std::unique_ptr<u::UsageService::Stub> stub_;
};

TEST_F(UsageServiceTest, ABatchResentOverTheWireCountsOnce) {
  std::vector<u::UsageRecord> batch = {Record("a", Utc(2026, 12, 6)),
                                       Record("b", Utc(2026, 12, 6))};
  u::ReportUsageResponse first, second;
  ASSERT_TRUE(Report(batch, &first).ok());
  ASSERT_TRUE(Report(batch, &second).ok());
  EXPECT_EQ(first.accepted(), 2);
  EXPECT_EQ(second.accepted(), 0);
  EXPECT_EQ(second.duplicates(), 2);
  EXPECT_EQ(cp_->ledger().ingested_total(), 2);
  EXPECT_EQ(cp_->ledger().duplicate_total(), 2);
}

TEST_F(UsageServiceTest, ABadBatchGetsBadRequestNamingTheRecord) {
  std::vector<u::UsageRecord> batch = {Record("a", Utc(2026, 12, 6)), Record("b", Utc(2026, 12, 6)),
                                       Record("c", Utc(2026, 12, 6)), Record("", Utc(2026, 12, 6))};
  u::ReportUsageResponse resp;
  grpc::Status s = Report(batch, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(s.error_details()));
  google::rpc::BadRequest br;
  ASSERT_TRUE(details.details(0).UnpackTo(&br));
  ASSERT_EQ(br.field_violations_size(), 1);
  EXPECT_EQ(br.field_violations(0).field(), "records[3].request_id");
  // The valid records were kept (documented choice): a resend finds them already stored.
  EXPECT_EQ(cp_->ledger().ingested_total(), 3);
}

TEST_F(UsageServiceTest, SpendCsvExportParsesBackToTheQuery) {
  Seed(1200);
  u::QuerySpendRequest q;
  *q.mutable_start_time() = Ts(Utc(2026, 12, 1));
  *q.mutable_end_time() = Ts(Utc(2027, 1, 1));
  q.set_granularity(u::GRANULARITY_DAY);
  q.add_group_by(u::GROUP_BY_CAPABILITY);
  q.add_group_by(u::GROUP_BY_USER);
  q.add_group_by(u::GROUP_BY_TAG);
  q.set_tag_key("team");
  grpc::ClientContext ctx;
  u::QuerySpendResponse answer;
  ASSERT_TRUE(stub_->QuerySpend(&ctx, q, &answer).ok());
  ASSERT_GT(answer.rows_size(), 20);

  u::ExportUsageRequest req;
  *req.mutable_spend() = q;
  int chunks = 0;
  auto rows = ParseCsv(Export(req, &chunks));
  ASSERT_EQ(rows.size(), static_cast<size_t>(answer.rows_size()) + 1);
  EXPECT_THAT(rows[0],
              ElementsAre("bucket_start", "capability", "user", "tag:team", "requests",
                          "input_tokens", "cached_input_tokens", "cache_write_input_tokens",
                          "output_tokens", "reasoning_output_tokens", "cost_usd", "cost_usd_micros",
                          "cost_unknown_requests", "estimated_requests"));
  for (int i = 0; i < answer.rows_size(); ++i) {
    const u::SpendRow& want = answer.rows(i);
    const auto& got = rows[i + 1];
    ASSERT_EQ(got.size(), rows[0].size());
    absl::Time bucket;
    std::string err;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, got[0], &bucket, &err)) << got[0];
    EXPECT_EQ(bucket, FromTs(want.bucket_start()));
    EXPECT_EQ(got[1], want.capability());
    EXPECT_EQ(got[2], want.user());
    EXPECT_EQ(got[3], want.tag_value());
    EXPECT_EQ(got[4], absl::StrCat(want.requests()));
    EXPECT_EQ(got[5], absl::StrCat(want.input_tokens()));
    EXPECT_EQ(got[8], absl::StrCat(want.output_tokens()));
    EXPECT_EQ(got[10], absl::StrFormat("%d.%06d", want.cost_usd_micros() / 1000000,
                                       want.cost_usd_micros() % 1000000));
    EXPECT_EQ(got[11], absl::StrCat(want.cost_usd_micros()));
    EXPECT_EQ(got[12], absl::StrCat(want.cost_unknown_requests()));
  }
}

TEST_F(UsageServiceTest, RecordCsvExportParsesBackToTheListing) {
  auto records = Seed(1200);
  u::ExportUsageRequest req;
  req.mutable_records()->set_capability("claims-summary");
  int chunks = 0;
  auto rows = ParseCsv(Export(req, &chunks));
  EXPECT_GT(chunks, 1);  // more than 64 KiB: several chunks, each ending at a row
  // Every record of the capability, in ListUsage order.
  std::vector<u::UsageRecord> listed;
  u::ListUsageRequest list;
  list.set_capability("claims-summary");
  list.set_page_size(300);
  do {
    grpc::ClientContext ctx;
    u::ListUsageResponse page;
    ASSERT_TRUE(stub_->ListUsage(&ctx, list, &page).ok());
    listed.insert(listed.end(), page.records().begin(), page.records().end());
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  ASSERT_EQ(listed.size(), 800u);
  ASSERT_EQ(rows.size(), listed.size() + 1);
  const auto& header = rows[0];
  auto col = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  for (size_t i = 0; i < listed.size(); ++i) {
    const auto& got = rows[i + 1];
    const u::UsageRecord& want = listed[i];
    ASSERT_EQ(got.size(), header.size());
    EXPECT_EQ(got[col("request_id")], want.request_id());
    EXPECT_EQ(got[col("user")], want.user());
    EXPECT_EQ(got[col("method")], "Complete");
    EXPECT_EQ(got[col("input_tokens")], absl::StrCat(want.input_tokens()));
    EXPECT_EQ(got[col("cost_usd_micros")],
              want.cost_known() ? absl::StrCat(want.cost_usd_micros()) : "");
    EXPECT_EQ(got[col("cost_known")], want.cost_known() ? "true" : "false");
    EXPECT_EQ(got[col("tags")], absl::StrCat("{\"team\":\"", want.tags().at("team"), "\"}"));
  }
}

}  // namespace
}  // namespace turnpike::controlplane::testing

namespace turnpike::controlplane::testing {
namespace {

// Retention runs when the control plane starts: records past it are gone after a restart on a
// later clock, their spend stays in the rollups.
TEST(UsageRetentionTest, TheControlPlanePrunesOnStartAndKeepsRollups) {
  turnpike::testing::TempDir dir;
  SimulatedClock clock(Utc(2026, 12, 6, 12));
  auto key = MasterKey::Parse(kTestMasterKey);
  ASSERT_TRUE(key.ok());
  ControlPlane::Options o;
  o.db_path = dir.File("cp.db");
  o.listen_address = "127.0.0.1:0";
  o.usage.retention = absl::Hours(24 * 30);
  {
    auto cp = ControlPlane::Start(o, *key, clock);
    ASSERT_TRUE(cp.ok()) << cp.status();
    google::protobuf::RepeatedPtrField<u::UsageRecord> batch;
    *batch.Add() = Record("old", Utc(2026, 11, 20, 8));
    *batch.Add() = Record("new", Utc(2026, 12, 6, 8));
    auto r = (*cp)->ledger().Ingest(batch);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->accepted, 2);
  }
  clock.Advance(absl::Hours(24 * 20));  // "old" is now 36 days old, "new" 20
  auto cp = ControlPlane::Start(o, *key, clock);
  ASSERT_TRUE(cp.ok()) << cp.status();
  u::ListUsageRequest all;
  auto listed = (*cp)->ledger().ListUsage(all);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->records_size(), 1);
  EXPECT_EQ(listed->records(0).request_id(), "new");
  u::QuerySpendRequest q;
  *q.mutable_start_time() = Ts(Utc(2026, 11, 1));
  *q.mutable_end_time() = Ts(Utc(2027, 1, 1));
  q.set_granularity(u::GRANULARITY_MONTH);
  q.add_group_by(u::GROUP_BY_CAPABILITY);
  auto spend = (*cp)->ledger().QuerySpend(q);
  ASSERT_TRUE(spend.ok()) << spend.status();
  ASSERT_EQ(spend->size(), 2u);  // November (pruned raw, kept rollup) and December
  EXPECT_EQ((*spend)[0].requests(), 1);
  EXPECT_EQ((*spend)[0].cost_usd_micros(), 1500);
  EXPECT_EQ((*spend)[1].requests(), 1);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
