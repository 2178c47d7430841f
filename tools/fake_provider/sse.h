// Server-Sent Events framing for the fake provider: one SseEvent is an optional `event:`
// name plus a `data:` payload (or a comment line), rendered with a chosen line terminator.
// Pure functions; thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_SSE_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_SSE_H_

#include <optional>
#include <string>
#include <string_view>

namespace turnpike::fake_provider {

enum class LineEnding { kLf, kCrLf, kCr };

// Parses "lf", "crlf" or "cr" (case-insensitive).
std::optional<LineEnding> ParseLineEnding(std::string_view s);
std::string_view LineEndingName(LineEnding e);
std::string_view LineTerminator(LineEnding e);

struct SseEvent {
  std::string event;     // `event:` field; omitted when empty
  std::string data;      // `data:` payload (single line)
  bool comment = false;  // when true, `data` is emitted as a `:` comment line instead
};

inline SseEvent DataEvent(std::string data) { return SseEvent{"", std::move(data), false}; }
inline SseEvent NamedEvent(std::string event, std::string data) {
  return SseEvent{std::move(event), std::move(data), false};
}
inline SseEvent CommentEvent(std::string text) { return SseEvent{"", std::move(text), true}; }

// Appends the wire bytes of `ev`, including the blank line that dispatches it.
void AppendSseEvent(std::string* out, const SseEvent& ev, LineEnding eol);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_SSE_H_
