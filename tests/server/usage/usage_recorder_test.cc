// A finished request's usage record carries what the ledger and finance need, as the caller was
// told it.
#include "server/usage/usage_recorder.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(UsageRecordTest, CarriesTheRequestsIdentityTokensCostAndOutcome) {
  RequestFinished e;
  e.request_id = "r-1";
  e.capability = "claims-summary";
  e.caller = "claims-service";
  e.end_user = "u-7";
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.tags = {{"team", "claims"}};
  e.status = absl::UnavailableError("cut");
  e.partial = true;
  e.input_tokens = 120;
  e.output_tokens = 30;
  e.cached_input_tokens = 80;
  e.cache_write_input_tokens = 10;
  e.reasoning_output_tokens = 7;
  e.cost_usd_micros = 36;
  e.input_cost_usd_micros = 14;
  e.cached_input_cost_usd_micros = 4;
  e.cache_write_cost_usd_micros = 6;
  e.output_cost_usd_micros = 12;
  e.usage_estimated = true;
  e.cost_known = true;
  e.method = RequestMethod::kComplete;
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.config_version = "v12";
  e.credential = "openai-key@3";
  e.time_to_first_token = absl::Microseconds(900);
  e.attempts.Add()->set_provider("openai");
  e.start_time = absl::FromUnixSeconds(1700000000) + absl::Milliseconds(250);
  e.latency = absl::Microseconds(41234);
  e.tier_chain = "gold";
  e.latency_class = LatencyClass::kBatch;
  const usage::v1::UsageRecord r = ToUsageRecord(e, "gw-1");
  EXPECT_EQ(r.request_id(), "r-1");
  EXPECT_EQ(r.node_id(), "gw-1");
  EXPECT_EQ(r.capability(), "claims-summary");
  EXPECT_EQ(r.caller(), "claims-service");
  EXPECT_EQ(r.user(), "u-7");
  EXPECT_EQ(r.provider(), "openai");
  EXPECT_EQ(r.model(), "gpt-4o-mini");
  EXPECT_EQ(r.tags().at("team"), "claims");
  EXPECT_EQ(r.status(), "UNAVAILABLE");
  EXPECT_TRUE(r.partial());
  EXPECT_EQ(r.input_tokens(), 120);
  EXPECT_EQ(r.output_tokens(), 30);
  EXPECT_EQ(r.cost_usd_micros(), 36);
  EXPECT_EQ(r.start_time().seconds(), 1700000000);
  EXPECT_EQ(r.start_time().nanos(), 250000000);
  EXPECT_EQ(r.latency_us(), 41234);
  EXPECT_EQ(r.cached_input_tokens(), 80);
  EXPECT_EQ(r.cache_write_input_tokens(), 10);
  EXPECT_EQ(r.reasoning_output_tokens(), 7);
  EXPECT_EQ(r.input_cost_usd_micros(), 14);
  EXPECT_EQ(r.cached_input_cost_usd_micros(), 4);
  EXPECT_EQ(r.cache_write_cost_usd_micros(), 6);
  EXPECT_EQ(r.output_cost_usd_micros(), 12);
  EXPECT_TRUE(r.usage_estimated());
  EXPECT_TRUE(r.cost_known());
  EXPECT_EQ(r.method(), usage::v1::METHOD_COMPLETE);
  EXPECT_EQ(r.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(r.config_version(), "v12");
  EXPECT_EQ(r.price_version(), "v12");
  EXPECT_EQ(r.credential(), "openai-key@3");
  EXPECT_EQ(r.time_to_first_token_us(), 900);
  EXPECT_EQ(r.attempts(), 1);
  EXPECT_FALSE(r.refused());
  EXPECT_EQ(r.tier_chain(), "gold");
  EXPECT_EQ(r.variant(), "");
  EXPECT_EQ(r.latency_class(), "batch");
}

TEST(UsageRecordTest, AnUnknownCostHasNoPriceVersion) {
  RequestFinished e;
  e.request_id = "r-2";
  e.config_version = "v12";
  e.input_tokens = 10;
  e.cost_known = false;
  const usage::v1::UsageRecord r = ToUsageRecord(e, "gw-1");
  EXPECT_EQ(r.latency_class(), "interactive");  // the default class
  EXPECT_FALSE(r.cost_known());
  EXPECT_EQ(r.cost_usd_micros(), 0);
  EXPECT_EQ(r.price_version(), "");
  EXPECT_EQ(r.config_version(), "v12");
}

}  // namespace
}  // namespace turnpike

namespace turnpike {
namespace {

// What metering costs a request on its thread: building the record, serializing and framing it,
// and queueing it (the disk is the writer thread's). Prints the figure docs/usage.md quotes;
// asserts only that every record was taken.
//   build/tests/unit_tests --gtest_filter='UsageRecorderTest.CostPerRequest'
TEST(UsageRecorderTest, CostPerRequest) {
  char tmpl[] = "/tmp/turnpike-recorder-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  UsageSpool::Options options;
  options.dir = tmpl;
  auto spool = UsageSpool::Open(options, Clock::Real());
  ASSERT_TRUE(spool.ok()) << spool.status();
  UsageRecorder recorder(**spool, "gw-1", /*reject_when_full=*/false);
  RequestFinished e;
  e.request_id = "0123456789abcdef0123456789abcdef";
  e.capability = "claims-summary";
  e.caller = "claims-service";
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.credential = "openai-key@3";
  e.config_version = "42";
  e.input_tokens = 812;
  e.output_tokens = 230;
  e.cost_usd_micros = 260;
  e.start_time = absl::Now();
  e.latency = absl::Milliseconds(900);
  e.attempts.Add()->set_provider("openai");
  constexpr int kRecords = 20000;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRecords; ++i) recorder.OnRequestFinished(e);
  const absl::Duration took = absl::Now() - start;
  std::printf("usage recording: records=%d ns_per_request=%.0f\n", kRecords,
              absl::ToDoubleNanoseconds(took) / kRecords);
  EXPECT_EQ((*spool)->stats().appended, static_cast<uint64_t>(kRecords));
  spool->reset();
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace turnpike
