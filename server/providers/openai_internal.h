// Pieces shared by the OpenAI adapter's source files (openai_adapter.cc, openai_errors.cc,
// openai_stream_decoder.cc) and its tests. Not for use outside the adapter: other adapters have
// their own error shapes. Stateless functions, thread-safe; a stream decoder is single-threaded.
#ifndef TURNPIKE_SERVER_PROVIDERS_OPENAI_INTERNAL_H_
#define TURNPIKE_SERVER_PROVIDERS_OPENAI_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/providers/provider_adapter.h"
#include "simdjson.h"

namespace turnpike::openai_internal {

// Abseil here has its own string_view type: convert explicitly.
inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// Longest provider message kept in a ProviderError, and longest piece of a payload quoted in a
// "malformed" status (payloads may carry user content, so quote little).
inline constexpr size_t kMaxMessageBytes = 512;
inline constexpr size_t kMaxQuotedPayloadBytes = 200;

// The fields of an OpenAI-style error object, any of which may be missing or null.
struct ErrorFields {
  std::string message;
  std::string type;
  std::string code;      // a string code, or a numeric code printed in decimal
  int numeric_code = 0;  // the code when it was a number (vLLM/llama.cpp put the HTTP status here)
};

// What a `usage` object says (docs/providers.md §1.3): the counts the gateway meters.
struct UsageFields {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;     // prompt_tokens_details.cached_tokens, part of prompt_tokens
  int64_t reasoning_tokens = 0;  // completion_tokens_details.reasoning_tokens, part of completion
};

// What one element of `choices` says. Views point into the parser's buffers: valid until the
// parser parses again.
struct ChoiceFields {
  int64_t index = 0;
  std::string_view content;  // delta.content / message.content; empty when absent or null
  std::string_view finish_reason;
  bool has_finish_reason = false;  // present and not null
  bool has_usage = false;          // a non-null `usage` inside the choice (Moonshot)
  UsageFields usage;
  // delta.tool_calls / message.tool_calls, in order. In a unary message a call's index is its
  // position in the array.
  std::vector<ToolCallFragment> tool_calls;
};

// Reads one choice; `message_key` is "delta" in streams and "message" in unary responses.
// Absent and null members are the same; unknown members are skipped. `what` names the document
// and `payload` is quoted (briefly) in the INTERNAL status returned for a malformed choice.
absl::Status ReadChoice(simdjson::ondemand::value& choice, std::string_view message_key,
                        ChoiceFields& fields, std::string_view what, std::string_view payload);

// Reads a `usage` value: null (returns OK, `reported` false) or an object with
// prompt_tokens/completion_tokens and the details objects (missing, null or non-integer counts
// read as 0).
absl::Status ReadUsage(simdjson::ondemand::value& usage, bool& reported, UsageFields& fields,
                       std::string_view what, std::string_view payload);

// Sets a finish's counts from a usage report (and marks it reported).
void ApplyUsage(const UsageFields& usage, ChatFinish& finish);

// A string or null; `present` is false for null. INCORRECT_TYPE for anything else.
simdjson::error_code GetNullableString(simdjson::ondemand::value& value, std::string_view& out,
                                       bool& present);

// Reads an error body: `{"error":{...}}`, `{"error":"text"}`, vLLM's old flat
// `{"object":"error","message":...,"code":400}` or a bare `{"message"|"detail": ...}`. Returns
// false if `json` is not one of these (then `fields` is empty). Unknown members (param, status,
// innererror...) and members of the wrong type are skipped: an error body is read to explain a
// failure, never to cause one.
bool ReadErrorBody(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                   ErrorFields& fields);

// Chooses the class from the HTTP status (0 for an error inside a 200 stream) and the body's
// type/code; see openai_errors.cc for the table.
ProviderErrorClass ClassifyError(int http_status, const ErrorFields& fields);

// The ProviderError for `fields`, with the message sanitized and the class chosen.
ProviderError MakeProviderError(int http_status, const ErrorFields& fields,
                                std::string_view api_key);

// Replaces anything that looks like an API key (`sk-…` tokens, and `api_key` itself when it is
// long enough to be a real key) with a mask, then truncates to `max_bytes` on a UTF-8 boundary.
std::string SanitizeMessage(std::string_view message, std::string_view api_key, size_t max_bytes);

// At most `max_bytes` of `s`, cut on a UTF-8 character boundary.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

// A delay the provider asked for in prose ("Please try again in 1.574s", "in 20ms", "retry after
// 86400 seconds"), in milliseconds, or 0 if there is none.
int64_t RetryDelayFromMessage(std::string_view message);

// INTERNAL "malformed <what>: <simdjson error>[ at <where>]; payload starts: <≤200 bytes>".
absl::Status MalformedError(std::string_view what, simdjson::error_code error,
                            std::string_view where, std::string_view payload);

// INTERNAL (TRAILING_CONTENT) unless `doc` has been read to its end. On-Demand does not look
// past the root value by itself, so `{...}}` would otherwise pass; call after reading the root.
absl::Status CheckFullyRead(simdjson::ondemand::document& doc, std::string_view what,
                            std::string_view payload);

// Maps a Chat Completions finish_reason string to the normalized enum.
v1::FinishReason MapFinishReason(std::string_view reason);

// A decoder for one stream; see openai_stream_decoder.cc.
std::unique_ptr<StreamDecoder> NewStreamDecoder(bool done_requires_finish);

}  // namespace turnpike::openai_internal

#endif  // TURNPIKE_SERVER_PROVIDERS_OPENAI_INTERNAL_H_
