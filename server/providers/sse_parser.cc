#include "server/providers/sse_parser.h"

#include <algorithm>

namespace turnpike {
namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

SseParser::SseParser(Options options) : options_(options) {}

absl::Status SseParser::LineTooLong() const {
  return absl::ResourceExhaustedError("SSE line longer than " +
                                      std::to_string(options_.max_line_bytes) + " bytes");
}

absl::Status SseParser::Feed(std::string_view bytes, EventFn on_event) {
  if (at_stream_start_) {
    // The BOM may itself arrive split across reads: hold bytes until we can decide.
    if (line_.empty() && bytes.size() < kBom.size() && kBom.substr(0, bytes.size()) == bytes) {
      line_.assign(bytes);
      return absl::OkStatus();
    }
    std::string joined;
    if (!line_.empty()) {
      joined = line_ + std::string(bytes);
      line_.clear();
      if (joined.size() < kBom.size() && kBom.substr(0, joined.size()) == joined) {
        line_ = std::move(joined);
        return absl::OkStatus();
      }
      at_stream_start_ = false;
      std::string_view view = joined;
      if (view.substr(0, kBom.size()) == kBom) view.remove_prefix(kBom.size());
      return Feed(view, on_event);
    }
    at_stream_start_ = false;
    if (bytes.substr(0, kBom.size()) == kBom) bytes.remove_prefix(kBom.size());
  }

  size_t pos = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes[0] == '\n') pos = 1;
    skip_lf_ = false;
  }
  while (pos < bytes.size()) {
    const char* begin = bytes.data() + pos;
    const size_t remaining = bytes.size() - pos;
    // Find the next CR or LF.
    size_t i = 0;
    while (i < remaining && begin[i] != '\n' && begin[i] != '\r') ++i;
    if (i == remaining) {
      if (line_.size() + remaining > options_.max_line_bytes) return LineTooLong();
      line_.append(begin, remaining);
      return absl::OkStatus();
    }
    absl::Status status;
    // The limit is checked on every path, so it does not depend on how the reads fall.
    if (line_.size() + i > options_.max_line_bytes) return LineTooLong();
    if (line_.empty()) {
      status = ProcessLine(std::string_view(begin, i), on_event);
    } else {
      line_.append(begin, i);
      // ProcessLine never touches line_; clearing afterwards keeps its capacity for the next
      // line that straddles reads.
      status = ProcessLine(line_, on_event);
      line_.clear();
    }
    pos += i + 1;
    if (begin[i] == '\r') {
      if (pos < bytes.size()) {
        if (bytes[pos] == '\n') ++pos;
      } else {
        skip_lf_ = true;
      }
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status SseParser::ProcessLine(std::string_view line, EventFn on_event) {
  if (line.empty()) return Dispatch(on_event);
  if (line[0] == ':') return absl::OkStatus();  // comment / keep-alive
  std::string_view field;
  std::string_view value;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    field = line;
  } else {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > options_.max_event_bytes) {
      return absl::ResourceExhaustedError("SSE event larger than " +
                                          std::to_string(options_.max_event_bytes) + " bytes");
    }
    data_.append(value);
    data_.push_back('\n');
    has_fields_ = true;
  } else if (field == "event") {
    event_type_.assign(value);
    has_fields_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_.assign(value);
    has_fields_ = true;
  } else if (field == "retry") {
    if (!value.empty() &&
        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        value.size() < 18) {
      retry_ms_ = std::stoll(std::string(value));
    }
    has_fields_ = true;
  }
  // Any other field name is ignored.
  return absl::OkStatus();
}

absl::Status SseParser::Dispatch(EventFn on_event) {
  has_fields_ = false;
  if (data_.empty()) {
    event_type_.clear();
    return absl::OkStatus();
  }
  data_.pop_back();  // the trailing LF
  // Guarantee kPadding readable bytes after the data for in-place JSON parsing.
  if (data_.capacity() < data_.size() + kPadding) data_.reserve(data_.size() + kPadding);
  std::string_view event = event_type_.empty() ? std::string_view("message") : event_type_;
  absl::Status status = on_event(event, data_);
  data_.clear();
  event_type_.clear();
  return status;
}

bool SseParser::Finish() {
  const bool dropped = !data_.empty() || has_fields_ || !line_.empty();
  data_.clear();
  event_type_.clear();
  line_.clear();
  has_fields_ = false;
  return dropped;
}

}  // namespace turnpike
