// Per-request fault injection settings for the fake provider. A FaultSpec comes from three
// sources that share one key=value vocabulary: `x-fake-<key>` request headers, a
// `[[fake key=value ...]]` directive inside the message text, and the queue fed through
// `POST /_fake/faults` (a JSON array of objects). Later sources override earlier ones field
// by field (MergeFrom). Value type; thread-compatible.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_FAULT_SPEC_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_FAULT_SPEC_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/fake_provider/sse.h"

namespace turnpike::fake_provider {

struct FaultSpec {
  // HTTP status to answer with (the provider's own error body). 200 means "no error".
  std::optional<int> status;
  // Overrides the provider error type / code in error bodies and in-stream errors.
  std::optional<std::string> error_type;
  // Values for the `retry-after` and `retry-after-ms` response headers (kept as text so
  // fractional seconds survive).
  std::optional<std::string> retry_after;
  std::optional<std::string> retry_after_ms;
  // Delay before the status line is sent.
  std::optional<int> first_byte_delay_ms;
  // Streaming shape for this request.
  std::optional<int> chunks;
  std::optional<int> chunk_delay_ms;
  // After this many content chunks: reset the TCP connection (0 = before any byte).
  std::optional<int> reset_after_chunks;
  // After this many content chunks: the provider's in-stream error, then end of response.
  std::optional<int> stream_error_after;
  // After the first content chunk, one event whose data is invalid JSON.
  std::optional<bool> malformed;
  // SSE line terminator for this response.
  std::optional<LineEnding> line_ending;
  // End the body after the content chunks without the terminal event.
  std::optional<bool> truncate;
  // After this many content chunks stop sending but keep the connection open.
  std::optional<int> stall_after_chunks;
  // Usage detail (docs/providers.md): of the prompt's tokens, this many were read from the
  // prompt cache / written to it, and this many reasoning tokens were spent on top of the content
  // chunks. Each dialect reports them in its own fields (tools/fake_provider/README.md).
  std::optional<int> cached_tokens;
  std::optional<int> cache_write_tokens;
  std::optional<int> reasoning_tokens;
  // The reply text is the request's directive-bearing message text with the directives cut out
  // (split over the content chunks), instead of "Hello from the fake provider".
  std::optional<bool> echo;
  // An error body's message is that same text (for tests of what quotes provider text).
  std::optional<bool> error_echo;

  // Sets one key (e.g. "status", "retry_after"; '-' is accepted for '_') from its text
  // value. Returns InvalidArgument for an unknown key or a malformed value.
  absl::Status Set(std::string_view key, std::string_view value);

  // Copies every field that is set in `other` over this one.
  void MergeFrom(const FaultSpec& other);

  // True when no field is set.
  bool empty() const;

  // Compact JSON object of the set fields (for introspection and logs).
  std::string ToJson() const;
};

// Parses all `[[fake key=value ...]]` directives in `text`, merging them in order.
// Returns InvalidArgument naming the bad token if one does not parse.
absl::StatusOr<FaultSpec> ParseFaultDirectives(std::string_view text);

// `text` without its `[[fake ...]]` directives.
std::string StripFaultDirectives(std::string_view text);

// True if `text` contains a directive opener; a cheap pre-check before parsing.
bool ContainsFaultDirective(std::string_view text);

// Parses the body of `POST /_fake/faults`: a JSON array of objects (or a single object)
// whose values are numbers, strings or booleans.
absl::StatusOr<std::vector<FaultSpec>> ParseFaultQueueJson(std::string_view json);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_FAULT_SPEC_H_
