// Incremental Server-Sent Events parser following WHATWG HTML §9.2.5–9.2.6: LF, CR and CRLF line
// endings (also split across reads), comments, multi-line data joined with LF, `data:` with or
// without the space, one leading BOM stripped, and an event cut off at end of input dropped.
// It works on bytes: a UTF-8 sequence split across reads is simply carried in the line buffer.
// Not thread-safe: one parser per upstream response, fed from one thread.
#ifndef TURNPIKE_SERVER_PROVIDERS_SSE_PARSER_H_
#define TURNPIKE_SERVER_PROVIDERS_SSE_PARSER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace turnpike {

class SseParser {
 public:
  // Bytes of readable slack guaranteed after every `data` view passed to the callback, so JSON
  // parsers that need padding (simdjson) can parse it in place.
  static constexpr size_t kPadding = 64;

  struct Options {
    // Longest line accepted; longer is RESOURCE_EXHAUSTED (DoS guard, not a protocol limit).
    size_t max_line_bytes = 8 << 20;
    // Largest data buffer accepted for one event.
    size_t max_event_bytes = 8 << 20;
  };

  // Called once per dispatched event. `event` is "message" when no event field was given. A
  // non-OK return stops parsing and is returned from Feed().
  using EventFn = absl::FunctionRef<absl::Status(std::string_view event, std::string_view data)>;

  SseParser() : SseParser(Options()) {}
  explicit SseParser(Options options);

  // Parses the next bytes of the stream, dispatching every complete event.
  absl::Status Feed(std::string_view bytes, EventFn on_event);

  // The stream ended. Any pending, unterminated event is discarded (WHATWG rule); returns true if
  // one was discarded, so callers can tell a truncated stream.
  bool Finish();

  const std::string& last_event_id() const { return last_event_id_; }
  // The last valid `retry:` value in milliseconds, or -1.
  long long retry_ms() const { return retry_ms_; }

 private:
  absl::Status ProcessLine(std::string_view line, EventFn on_event);
  absl::Status Dispatch(EventFn on_event);
  absl::Status LineTooLong() const;

  const Options options_;
  std::string line_;        // partial line carried across Feed() calls
  std::string data_;        // data buffer of the event being built
  std::string event_type_;  // event-type buffer
  std::string last_event_id_;
  long long retry_ms_ = -1;
  bool skip_lf_ = false;         // the previous chunk ended with CR; a leading LF belongs to it
  bool at_stream_start_ = true;  // a BOM may still need stripping
  bool has_fields_ = false;      // any field seen since the last dispatch
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_SSE_PARSER_H_
