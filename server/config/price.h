// The cost of one request: a model's price (four rates, in integer micro-dollars per million
// tokens) applied to its token counts, split into components that add up exactly to the total
// the caller is told and the usage record keeps (docs/usage.md, "Cost"). Pure functions on
// values; thread-safe.
#ifndef TURNPIKE_SERVER_CONFIG_PRICE_H_
#define TURNPIKE_SERVER_CONFIG_PRICE_H_

#include <cstdint>

#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

// Micro-dollars per 1M tokens.
struct PriceRates {
  int64_t input = 0;
  int64_t cached_input = 0;  // the input rate when the price sets none
  int64_t cache_write = 0;   // the input rate when the price sets none
  int64_t output = 0;        // reasoning tokens included

  // The rates of a snapshot price; an absent cached-input or cache-write rate is the input rate.
  static PriceRates FromProto(const config::v1::Price& price);
};

// Token counts with their normalized meaning (docs/usage.md, "Token kinds"): cached_input and
// cache_write_input are parts of input, reasoning_output a part of output.
struct TokenCounts {
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t cache_write_input = 0;
  int64_t output = 0;
  int64_t reasoning_output = 0;
};

// A cost and its components, micro-dollars. input + cached_input + cache_write + output == total.
struct Cost {
  int64_t total = 0;
  int64_t input = 0;         // the uncached input tokens
  int64_t cached_input = 0;  // the input tokens read from the prompt cache
  int64_t cache_write = 0;   // the input tokens written to the prompt cache
  int64_t output = 0;        // every output token, reasoning included (billed once, here)
};

// Prices `tokens`. The exact cost (a sum of tokens x rate / 1e6) is rounded up once, so spend is
// never under-reported; the components are the differences of the running sum rounded up
// (uncached input, then cached input, then cache writes), and output takes the rest, so they
// add up to the total exactly and none is negative. Parts larger than their totals are clamped
// (cached first, then cache writes). Counts and rates must not be negative.
Cost ComputeCost(const PriceRates& rates, const TokenCounts& tokens);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_PRICE_H_
