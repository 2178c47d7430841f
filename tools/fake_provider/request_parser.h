// Extracts what the fake provider needs from a provider request body: stream flags, token
// limits, usage options, the words of every message (for deterministic input-token counts)
// and any `[[fake ...]]` fault directives typed into the messages. Uses simdjson's DOM
// parser; a RequestParser reuses its buffers across calls, so keep one per event loop.
// Not thread-safe (one parser per thread).
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_PARSER_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_PARSER_H_

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/fake_provider/provider.h"

namespace turnpike::fake_provider {

struct ParsedRequest {
  std::string model;  // body "model" (empty when absent)
  bool stream = false;

  // `stream_options` present and not null, and its members.
  bool has_stream_options = false;
  std::optional<bool> include_usage;
  bool continuous_usage_stats = false;  // vLLM extension
  std::optional<bool> include_obfuscation;

  // Token limits exactly as sent (the provider decides which ones it honours).
  std::optional<int64_t> max_completion_tokens;
  std::optional<int64_t> max_tokens;         // OpenAI family and Anthropic
  std::optional<int64_t> n_predict;          // llama.cpp extension
  std::optional<int64_t> max_output_tokens;  // Gemini generationConfig.maxOutputTokens

  // Number of entries in `messages` (Gemini: `contents`); -1 when the field is absent.
  int message_count = -1;

  // Whitespace-separated words across every message and the system prompt.
  int64_t input_words = 0;
  // Each message text that contains a `[[fake` directive opener.
  std::vector<std::string> directive_texts;

  // The first tool offered (OpenAI tools[0].function.name, Anthropic tools[0].name, Gemini
  // tools[0].functionDeclarations[0].name); empty without tools.
  std::string first_tool_name;
  // The last message is a tool result (OpenAI role "tool", an Anthropic tool_result block, a
  // Gemini functionResponse part).
  bool last_is_tool_result = false;
  // A gateway classification's schema anywhere in the body (a response schema or a tool's
  // parameters): the first label of its enum, still JSON-escaped; empty if none. Classification
  // mode (README "Classification").
  std::string first_enum_value;

  // Embeddings: one entry per input, the words per input, and the options.
  bool has_input = false;
  std::vector<std::string> inputs;
  std::string encoding_format;
  std::optional<int64_t> dimensions;
};

// Number of runs of non-whitespace characters in `text`.
int64_t CountWords(std::string_view text);

class RequestParser {
 public:
  // Parses `body` for `route`. Returns InvalidArgument when the body is not a JSON object;
  // semantic checks (required fields, option combinations) are left to the caller because
  // each provider reports them differently.
  absl::StatusOr<ParsedRequest> Parse(const Route& route, std::string_view body);

 private:
  simdjson::dom::parser parser_;
  std::string padded_;  // body copy with simdjson's trailing padding
};

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_REQUEST_PARSER_H_
