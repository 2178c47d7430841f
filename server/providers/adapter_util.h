// Small helpers shared by the Anthropic and Gemini adapters: base-URL and header assembly, safe
// excerpts of untrusted bytes for status messages, and null-aware field readers for simdjson
// On-Demand values (a JSON null is treated exactly like an absent field). Stateless functions;
// thread-safe. Not part of the adapter contract: the OpenAI adapter keeps its own helpers.
#ifndef TURNPIKE_SERVER_PROVIDERS_ADAPTER_UTIL_H_
#define TURNPIKE_SERVER_PROVIDERS_ADAPTER_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/providers/sse_parser.h"
#include "simdjson.h"
#include "turnpike/config/v1/snapshot.pb.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike::adapter_util {

// simdjson parses an SSE event's data in place only if the parser left enough slack after it.
static_assert(SseParser::kPadding >= simdjson::SIMDJSON_PADDING);

// Longest provider message kept in a ProviderError, and longest piece of a payload quoted in a
// "malformed" status (payloads may carry user content, so quote little).
inline constexpr size_t kMaxMessageBytes = 512;
inline constexpr size_t kMaxQuotedPayloadBytes = 200;

// The Abseil of this toolchain has its own string_view type: convert explicitly.
inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// `base_url` without trailing slashes, or `fallback` when it is empty.
std::string TrimBaseUrl(std::string_view base_url, std::string_view fallback);

// Appends "Name: value" for each of provider.headers() (sorted by name, so requests are
// deterministic). An extra header replaces any entry of `headers` with the same name (compared
// case-insensitively); one whose name or value holds CR, LF or NUL is dropped (header injection).
void AppendProviderHeaders(const config::v1::Provider& provider, std::vector<std::string>& headers);

// At most `max_bytes` of `s`, cut on a UTF-8 character boundary.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

// A provider message fit for a ProviderError: `api_key` masked (when long enough to be a real
// key), truncated to kMaxMessageBytes on a UTF-8 boundary.
std::string SanitizeMessage(std::string_view message, std::string_view api_key);

// The first kMaxQuotedPayloadBytes of an untrusted payload, C-escaped (control and non-ASCII
// bytes as \xNN), with "..." when cut: safe to put in a status message or a log line.
std::string QuotePayload(std::string_view payload);

// INTERNAL "<provider>: malformed <what>: <simdjson error>; payload starts: <quoted payload>".
absl::Status MalformedError(std::string_view provider, std::string_view what,
                            simdjson::error_code error, std::string_view payload);

// A view of `data` that simdjson may parse in place; `data` must have SseParser::kPadding
// readable bytes after it (the SSE parser guarantees that for event data).
inline simdjson::padded_string_view PaddedEventData(std::string_view data) {
  return simdjson::padded_string_view(data.data(), data.size(), data.size() + SseParser::kPadding);
}

// Null-aware readers. A JSON null leaves `out` unchanged and succeeds; any other wrong type is an
// error. String views point into the parser and live until its next iterate().
simdjson::error_code ReadInt(simdjson::ondemand::value& value, std::optional<int64_t>& out);
simdjson::error_code ReadString(simdjson::ondemand::value& value,
                                std::optional<std::string_view>& out);
simdjson::error_code ReadBool(simdjson::ondemand::value& value, std::optional<bool>& out);
// Whether `value` is JSON null (without consuming anything else).
simdjson::error_code IsNull(simdjson::ondemand::value& value, bool& is_null);

// Calls fn(std::string_view key, simdjson::ondemand::value& value) -> simdjson::error_code for
// every member of `object`, in order, stopping at the first error. Visiting every member (rather
// than looking one up) makes On-Demand check the whole object's structure.
template <typename Fn>
simdjson::error_code ForEachField(simdjson::ondemand::object& object, Fn&& fn) {
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return error;
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return error;
    if (auto error = fn(key, field.value())) return error;
  }
  return simdjson::SUCCESS;
}

// The same for a value, which must be an object (INCORRECT_TYPE otherwise); null is skipped.
template <typename Fn>
simdjson::error_code ForEachField(simdjson::ondemand::value& value, Fn&& fn) {
  bool is_null = false;
  if (auto error = IsNull(value, is_null); error || is_null) return error;
  simdjson::ondemand::object object;
  if (auto error = value.get_object().get(object)) return error;
  return ForEachField(object, fn);
}

// `out` = `value` when `value` is a string (copied), unchanged otherwise; never fails. For error
// bodies, which are read leniently.
void CopyStringIfString(simdjson::ondemand::value& value, std::string& out);

// The pieces of tools, images and response formats every adapter writes the same way.
// A tool's parameter schema, or an empty object schema when it has none.
std::string_view ToolParameters(const v1::Tool& tool);
// A response format's schema name, "response" when unset.
std::string_view SchemaName(const v1::ResponseFormat& format);
// An image as a URL: its own, or a data: URL of its bytes ("data:<type>;base64,<base64>").
std::string ImageUrl(const v1::ImagePart& image);

}  // namespace turnpike::adapter_util

#endif  // TURNPIKE_SERVER_PROVIDERS_ADAPTER_UTIL_H_
