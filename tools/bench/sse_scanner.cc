#include "tools/bench/sse_scanner.h"

namespace turnpike::bench {

void SseScanner::Reset() {
  partial_.clear();
  done_ = false;
}

SseScanner::Events SseScanner::Feed(std::string_view bytes) {
  Events events;
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      break;
    }
    if (partial_.empty()) {
      Line(bytes.substr(0, nl), events);
    } else {
      partial_.append(bytes.substr(0, nl));
      Line(partial_, events);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
  return events;
}

void SseScanner::Line(std::string_view line, Events& events) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kData = "data:";
  if (line.substr(0, kData.size()) != kData) return;  // comments, event:, id:, blank lines
  line.remove_prefix(kData.size());
  if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line == "[DONE]") {
    done_ = true;
    return;
  }
  ++events.data;
  if (HasContent(line)) ++events.content;
}

bool SseScanner::HasContent(std::string_view payload) {
  constexpr std::string_view kKey = "\"content\"";
  for (size_t pos = payload.find(kKey); pos != std::string_view::npos;
       pos = payload.find(kKey, pos + 1)) {
    size_t i = pos + kKey.size();
    while (i < payload.size() && (payload[i] == ' ' || payload[i] == ':')) ++i;
    // A string value with at least one character; null, "" and objects are not text.
    if (i + 1 < payload.size() && payload[i] == '"' && payload[i + 1] != '"') return true;
  }
  return false;
}

}  // namespace turnpike::bench
