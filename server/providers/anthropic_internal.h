// Pieces shared by the Anthropic adapter's readers (anthropic_response.cc: the Message body and
// error bodies; anthropic_stream_decoder.cc: the SSE stream): the `usage` object, the counts it
// gives a ChatFinish, and the `error` object. Not for use outside the adapter. Stateless
// functions, thread-safe.
#ifndef TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_INTERNAL_H_
#define TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/providers/provider_adapter.h"
#include "simdjson.h"

namespace turnpike::anthropic_internal {

inline constexpr std::string_view kProvider = "anthropic";

// `usage` as sent in message_start.message, message_delta and the Message body.
struct Usage {
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> cache_creation_input_tokens;
  std::optional<int64_t> cache_read_input_tokens;
  std::optional<int64_t> output_tokens;

  bool any() const {
    return input_tokens || cache_creation_input_tokens || cache_read_input_tokens || output_tokens;
  }
  // Each count present in `newer` replaces this one (the counts are cumulative).
  void Update(const Usage& newer) {
    if (newer.input_tokens) input_tokens = newer.input_tokens;
    if (newer.cache_creation_input_tokens) {
      cache_creation_input_tokens = newer.cache_creation_input_tokens;
    }
    if (newer.cache_read_input_tokens) cache_read_input_tokens = newer.cache_read_input_tokens;
    if (newer.output_tokens) output_tokens = newer.output_tokens;
  }
};

simdjson::error_code ReadUsage(simdjson::ondemand::value& value, Usage& usage);

// Sets the finish's counts from `usage`. docs/providers.md §2.3: billed input is "the summation
// of input_tokens, cache_creation_input_tokens, and cache_read_input_tokens", so Anthropic's
// input_tokens is only the uncached part; the normalized input_tokens is the sum, and the cache
// reads and writes are its parts. Thinking is inside output_tokens and not reported apart.
void SetCounts(const Usage& usage, ChatFinish& finish);

// The `error` member of an error body or event, {"type": ..., "message": ...}; read leniently.
simdjson::error_code ReadErrorObject(simdjson::ondemand::value& value, std::string& type,
                                     std::string& message);

// A ProviderError of `type` and `message` (with `api_key` masked should the message echo it),
// classified.
ProviderError MakeError(int http_status, std::string type, std::string_view message,
                        std::string_view api_key);

}  // namespace turnpike::anthropic_internal

#endif  // TURNPIKE_SERVER_PROVIDERS_ANTHROPIC_INTERNAL_H_
