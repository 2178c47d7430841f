#include "server/config/price.h"

#include <algorithm>
#include <limits>

namespace turnpike {
namespace {

constexpr __int128 kTokensPerRate = 1'000'000;  // rates are per 1M tokens

// ceil(n / 1e6) for n >= 0, saturated to int64.
int64_t CeilMicros(__int128 n) {
  const __int128 micros = (n + kTokensPerRate - 1) / kTokensPerRate;
  return micros > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max()
                                                      : static_cast<int64_t>(micros);
}

}  // namespace

PriceRates PriceRates::FromProto(const config::v1::Price& price) {
  PriceRates rates;
  rates.input = price.input_usd_micros_per_mtok();
  rates.output = price.output_usd_micros_per_mtok();
  rates.cached_input = price.has_cached_input_usd_micros_per_mtok()
                           ? price.cached_input_usd_micros_per_mtok()
                           : rates.input;
  rates.cache_write = price.has_cache_write_usd_micros_per_mtok()
                          ? price.cache_write_usd_micros_per_mtok()
                          : rates.input;
  return rates;
}

Cost ComputeCost(const PriceRates& rates, const TokenCounts& tokens) {
  const int64_t input = std::max<int64_t>(tokens.input, 0);
  const int64_t cached = std::clamp<int64_t>(tokens.cached_input, 0, input);
  const int64_t written = std::clamp<int64_t>(tokens.cache_write_input, 0, input - cached);
  const int64_t uncached = input - cached - written;
  const int64_t output = std::max<int64_t>(tokens.output, 0);

  // Running sums of the exact cost (micro-dollars x 1e6), one component after another.
  const __int128 after_input = static_cast<__int128>(uncached) * rates.input;
  const __int128 after_cached = after_input + static_cast<__int128>(cached) * rates.cached_input;
  const __int128 after_write = after_cached + static_cast<__int128>(written) * rates.cache_write;
  const __int128 exact = after_write + static_cast<__int128>(output) * rates.output;

  Cost cost;
  cost.total = CeilMicros(exact);
  const int64_t through_input = CeilMicros(after_input);
  const int64_t through_cached = CeilMicros(after_cached);
  const int64_t through_write = CeilMicros(after_write);
  cost.input = through_input;
  cost.cached_input = through_cached - through_input;
  cost.cache_write = through_write - through_cached;
  cost.output = cost.total - through_write;
  return cost;
}

}  // namespace turnpike
