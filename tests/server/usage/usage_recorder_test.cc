// A finished request's usage record carries what the ledger and finance need, as the caller was
// told it.
#include "server/usage/usage_recorder.h"

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
  e.cost_usd_micros = 36;
  e.input_cost_usd_micros = 24;
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
  EXPECT_EQ(r.input_cost_usd_micros() + r.output_cost_usd_micros(), r.cost_usd_micros());
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
}

}  // namespace
}  // namespace turnpike
