#include "server/exchange/chat_usage.h"

#include <algorithm>

namespace turnpike {

int64_t EstimateTokens(size_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); }

void MeterChatUsage(const ChatFinish& finish,
                    const google::protobuf::RepeatedPtrField<v1::Message>* prompt,
                    size_t reply_bytes, const TargetEntry& target, RequestFinished& event) {
  int64_t input = finish.input_tokens;
  int64_t output = finish.output_tokens;
  if (!finish.usage_reported) {
    // The provider reported no usage (a stream cut off before its usage event, a server that
    // ignores stream_options.include_usage): meter an estimate, marked as such, never zero.
    event.usage_estimated = true;
    size_t prompt_bytes = 0;
    if (prompt != nullptr) {
      for (const v1::Message& m : *prompt) prompt_bytes += m.content().size();
    }
    input = std::max(input, EstimateTokens(prompt_bytes));
    output = std::max(output, EstimateTokens(reply_bytes));
  }
  event.input_tokens = input;
  event.output_tokens = output;
  event.cached_input_tokens = finish.cached_input_tokens;
  event.cache_write_input_tokens = finish.cache_write_input_tokens;
  event.reasoning_output_tokens = finish.reasoning_output_tokens;
  const Cost cost = RuntimeConfig::CostOf(
      target, TokenCounts{input, event.cached_input_tokens, event.cache_write_input_tokens, output,
                          event.reasoning_output_tokens});
  event.cost_usd_micros = cost.total;
  event.input_cost_usd_micros = cost.input;
  event.cached_input_cost_usd_micros = cost.cached_input;
  event.cache_write_cost_usd_micros = cost.cache_write;
  event.output_cost_usd_micros = cost.output;
  event.cost_known = target.price.has_value();
}

v1::Usage UsageOf(const RequestFinished& event) {
  v1::Usage usage;
  usage.set_input_tokens(event.input_tokens);
  usage.set_output_tokens(event.output_tokens);
  usage.set_cost_usd_micros(event.cost_usd_micros);
  usage.set_cached_input_tokens(event.cached_input_tokens);
  usage.set_cache_write_input_tokens(event.cache_write_input_tokens);
  usage.set_reasoning_output_tokens(event.reasoning_output_tokens);
  return usage;
}

}  // namespace turnpike
