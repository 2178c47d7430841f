// What a chat reply is metered at (server/exchange/chat_usage.h): the provider's counts priced at
// the target's rates when it reported usage; an estimate (four bytes a token, rounded up, never
// zero), marked as such, when it did not; an unknown cost without a price; and the Usage the
// caller is told. The exchange's own metering end to end is in attempt_driver_test.cc and the
// integration tests.
#include "server/exchange/chat_usage.h"

#include "gtest/gtest.h"

namespace turnpike {
namespace {

class ChatUsageTest : public ::testing::Test {
 protected:
  ChatUsageTest() {
    target_.provider = &provider_;
    PriceRates rates;
    rates.input = 1'000'000;  // one micro-dollar a token
    rates.cached_input = 500'000;
    rates.cache_write = 1'000'000;
    rates.output = 2'000'000;
    target_.price = rates;
    v1::Message* m = prompt_.Add();
    m->set_role(v1::ROLE_USER);
    m->set_content(std::string(40, 'p'));  // 10 tokens by estimate
  }

  ProviderEntry provider_;
  TargetEntry target_;
  google::protobuf::RepeatedPtrField<v1::Message> prompt_;
};

TEST_F(ChatUsageTest, EstimateIsFourBytesATokenRoundedUp) {
  EXPECT_EQ(EstimateTokens(0), 0);
  EXPECT_EQ(EstimateTokens(1), 1);
  EXPECT_EQ(EstimateTokens(4), 1);
  EXPECT_EQ(EstimateTokens(5), 2);
}

TEST_F(ChatUsageTest, ReportedUsageIsPricedAsReported) {
  ChatFinish finish;
  finish.usage_reported = true;
  finish.input_tokens = 100;
  finish.cached_input_tokens = 40;
  finish.output_tokens = 20;
  finish.reasoning_output_tokens = 5;
  RequestFinished event;
  MeterChatUsage(finish, &prompt_, /*reply_bytes=*/4000, target_, event);
  EXPECT_FALSE(event.usage_estimated);
  EXPECT_EQ(event.input_tokens, 100);  // not the larger estimates of prompt or reply
  EXPECT_EQ(event.output_tokens, 20);
  EXPECT_EQ(event.cached_input_tokens, 40);
  EXPECT_EQ(event.reasoning_output_tokens, 5);
  EXPECT_EQ(event.input_cost_usd_micros, 60);
  EXPECT_EQ(event.cached_input_cost_usd_micros, 20);
  EXPECT_EQ(event.cache_write_cost_usd_micros, 0);
  EXPECT_EQ(event.output_cost_usd_micros, 40);
  EXPECT_EQ(event.cost_usd_micros, 120);
  EXPECT_TRUE(event.cost_known);

  const v1::Usage usage = UsageOf(event);
  EXPECT_EQ(usage.input_tokens(), 100);
  EXPECT_EQ(usage.output_tokens(), 20);
  EXPECT_EQ(usage.cached_input_tokens(), 40);
  EXPECT_EQ(usage.cache_write_input_tokens(), 0);
  EXPECT_EQ(usage.reasoning_output_tokens(), 5);
  EXPECT_EQ(usage.cost_usd_micros(), 120);
}

TEST_F(ChatUsageTest, UnreportedUsageIsEstimatedAndNeverZero) {
  ChatFinish finish;  // a stream cut off before its usage event
  RequestFinished event;
  MeterChatUsage(finish, &prompt_, /*reply_bytes=*/9, target_, event);
  EXPECT_TRUE(event.usage_estimated);
  EXPECT_EQ(event.input_tokens, 10);
  EXPECT_EQ(event.output_tokens, 3);
  EXPECT_EQ(event.cost_usd_micros, 10 + 2 * 3);

  // Counts the provider did send are kept when they exceed the estimate.
  finish.output_tokens = 50;
  RequestFinished partial;
  MeterChatUsage(finish, /*prompt=*/nullptr, /*reply_bytes=*/9, target_, partial);
  EXPECT_TRUE(partial.usage_estimated);
  EXPECT_EQ(partial.input_tokens, 0);  // no prompt text to estimate from
  EXPECT_EQ(partial.output_tokens, 50);
}

TEST_F(ChatUsageTest, WithoutAPriceTheCostIsUnknownNotFree) {
  target_.price.reset();
  ChatFinish finish;
  finish.usage_reported = true;
  finish.input_tokens = 100;
  finish.output_tokens = 20;
  RequestFinished event;
  event.provider = "kept";  // fields other than usage and cost are left alone
  MeterChatUsage(finish, &prompt_, 0, target_, event);
  EXPECT_FALSE(event.cost_known);
  EXPECT_EQ(event.cost_usd_micros, 0);
  EXPECT_EQ(event.input_tokens, 100);
  EXPECT_EQ(event.provider, "kept");
}

}  // namespace
}  // namespace turnpike
