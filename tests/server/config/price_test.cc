// The cost of a request and its components: rounded up once, components that add up exactly,
// absent cache rates meaning the input rate, and each token billed once.
#include "server/config/price.h"

#include <random>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

int64_t Sum(const Cost& c) { return c.input + c.cached_input + c.cache_write + c.output; }

TEST(PriceTest, AbsentCacheRatesAreTheInputRate) {
  config::v1::Price p;
  p.set_input_usd_micros_per_mtok(2'500'000);
  p.set_output_usd_micros_per_mtok(10'000'000);
  PriceRates rates = PriceRates::FromProto(p);
  EXPECT_EQ(rates.cached_input, 2'500'000);
  EXPECT_EQ(rates.cache_write, 2'500'000);
  // An explicit 0 is a free cache read, not "absent".
  p.set_cached_input_usd_micros_per_mtok(0);
  p.set_cache_write_usd_micros_per_mtok(3'125'000);
  rates = PriceRates::FromProto(p);
  EXPECT_EQ(rates.cached_input, 0);
  EXPECT_EQ(rates.cache_write, 3'125'000);
}

TEST(PriceTest, ComponentsOfAnExactCost) {
  // Claude-like: $3 in, $0.30 cache read, $3.75 cache write, $15 out, per 1M tokens.
  const PriceRates rates{3'000'000, 300'000, 3'750'000, 15'000'000};
  // 2,000 uncached + 10,000 read + 4,000 written = 16,000 input; 1,000 output.
  const Cost c = ComputeCost(
      rates,
      {.input = 16'000, .cached_input = 10'000, .cache_write_input = 4'000, .output = 1'000});
  EXPECT_EQ(c.input, 6'000);
  EXPECT_EQ(c.cached_input, 3'000);
  EXPECT_EQ(c.cache_write, 15'000);
  EXPECT_EQ(c.output, 15'000);
  EXPECT_EQ(c.total, 39'000);
}

TEST(PriceTest, TheTotalIsRoundedUpOnceAndTheComponentsAddUpToIt) {
  // gpt-4o-mini-like: $0.15 in, $0.075 cached, $0.60 out.
  const PriceRates rates{150'000, 75'000, 150'000, 600'000};
  // 1 uncached (0.15) + 1 cached (0.075) + 1 out (0.6) = 0.825 -> 1, not 1 + 1 + 1.
  const Cost c = ComputeCost(rates, {.input = 2, .cached_input = 1, .output = 1});
  EXPECT_EQ(c.total, 1);
  EXPECT_EQ(Sum(c), 1);
  EXPECT_EQ(c.input, 1);  // the running sum rounded up: ceil(0.15)
  EXPECT_EQ(c.cached_input, 0);
  EXPECT_EQ(c.output, 0);
}

TEST(PriceTest, ReasoningIsBilledOnceAsOutput) {
  const PriceRates rates{1'000'000, 1'000'000, 1'000'000, 4'000'000};
  // 300 output tokens of which 200 reasoning: 300 x $4/M, not 500 x $4/M.
  const Cost c = ComputeCost(rates, {.input = 0, .output = 300, .reasoning_output = 200});
  EXPECT_EQ(c.output, 1'200);
  EXPECT_EQ(c.total, 1'200);
}

TEST(PriceTest, PartsLargerThanTheirTotalsAreClamped) {
  const PriceRates rates{1'000'000, 0, 2'000'000, 0};
  // 100 input but 80 read and 50 written claimed: 80 read, 20 written, 0 uncached.
  const Cost c = ComputeCost(rates, {.input = 100, .cached_input = 80, .cache_write_input = 50});
  EXPECT_EQ(c.input, 0);
  EXPECT_EQ(c.cached_input, 0);
  EXPECT_EQ(c.cache_write, 40);
  EXPECT_EQ(c.total, 40);
  // Negative counts count as 0.
  EXPECT_EQ(ComputeCost(rates, {.input = -5, .cached_input = -1}).total, 0);
}

TEST(PriceTest, WithoutCacheRatesTheSplitIsTheOldInputOutputSplit) {
  // What the gateway reported before cache rates existed: input = ceil(in), output = rest.
  const PriceRates rates{2'500'000, 2'500'000, 2'500'000, 10'000'000};
  const Cost c = ComputeCost(rates, {.input = 3, .output = 1});
  EXPECT_EQ(c.total, 18);  // 7.5 + 10 = 17.5 -> 18
  EXPECT_EQ(c.input, 8);   // ceil(7.5)
  EXPECT_EQ(c.output, 10);
}

TEST(PriceTest, RandomCountsAlwaysAddUpAndNeverUnderReport) {
  std::mt19937_64 gen(11);
  std::uniform_int_distribution<int64_t> rate(0, 20'000'000);
  std::uniform_int_distribution<int64_t> count(0, 200'000);
  for (int i = 0; i < 20'000; ++i) {
    const PriceRates rates{rate(gen), rate(gen), rate(gen), rate(gen)};
    TokenCounts t;
    t.input = count(gen);
    t.cached_input = std::uniform_int_distribution<int64_t>(0, t.input)(gen);
    t.cache_write_input = std::uniform_int_distribution<int64_t>(0, t.input - t.cached_input)(gen);
    t.output = count(gen);
    const Cost c = ComputeCost(rates, t);
    ASSERT_EQ(Sum(c), c.total);
    ASSERT_GE(c.input, 0);
    ASSERT_GE(c.cached_input, 0);
    ASSERT_GE(c.cache_write, 0);
    ASSERT_GE(c.output, 0);
    const __int128 exact =
        static_cast<__int128>(t.input - t.cached_input - t.cache_write_input) * rates.input +
        static_cast<__int128>(t.cached_input) * rates.cached_input +
        static_cast<__int128>(t.cache_write_input) * rates.cache_write +
        static_cast<__int128>(t.output) * rates.output;
    // total = ceil(exact / 1e6): never under, never a whole micro-dollar over.
    ASSERT_GE(static_cast<__int128>(c.total) * 1'000'000, exact);
    ASSERT_LT(static_cast<__int128>(c.total) * 1'000'000 - exact, 1'000'000);
  }
}

}  // namespace
}  // namespace turnpike
