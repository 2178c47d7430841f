#include "tools/fake_provider/sse.h"

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace turnpike::fake_provider {

std::optional<LineEnding> ParseLineEnding(std::string_view s) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(s.data(), s.size()));
  if (lower == "lf") return LineEnding::kLf;
  if (lower == "crlf") return LineEnding::kCrLf;
  if (lower == "cr") return LineEnding::kCr;
  return std::nullopt;
}

std::string_view LineEndingName(LineEnding e) {
  switch (e) {
    case LineEnding::kLf:
      return "lf";
    case LineEnding::kCrLf:
      return "crlf";
    case LineEnding::kCr:
      return "cr";
  }
  return "lf";
}

std::string_view LineTerminator(LineEnding e) {
  switch (e) {
    case LineEnding::kLf:
      return "\n";
    case LineEnding::kCrLf:
      return "\r\n";
    case LineEnding::kCr:
      return "\r";
  }
  return "\n";
}

void AppendSseEvent(std::string* out, const SseEvent& ev, LineEnding eol) {
  const std::string_view t = LineTerminator(eol);
  if (ev.comment) {
    out->push_back(':');
    if (!ev.data.empty()) {
      out->push_back(' ');
      out->append(ev.data);
    }
    out->append(t);
    out->append(t);
    return;
  }
  if (!ev.event.empty()) {
    out->append("event: ");
    out->append(ev.event);
    out->append(t);
  }
  out->append("data: ");
  out->append(ev.data);
  out->append(t);
  out->append(t);
}

}  // namespace turnpike::fake_provider
