// libFuzzer target: the SSE parser (server/providers/sse_parser.h) on arbitrary upstream bytes.
// The input is fed in chunks whose sizes come from the first byte, so line endings split across
// reads (CR then LF) are exercised. Checks the parser's own promises: every data view has
// SseParser::kPadding readable bytes after it, and limits hold.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/providers/sse_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  turnpike::SseParser::Options options;
  options.max_line_bytes = 4096;
  options.max_event_bytes = 8192;
  turnpike::SseParser parser(options);
  volatile char sink = 0;
  while (!input.empty()) {
    const size_t n = input.size() < chunk ? input.size() : chunk;
    const absl::Status status =
        parser.Feed(input.substr(0, n), [&](std::string_view event, std::string_view data) {
          // Touch the promised padding so ASan catches a short buffer.
          for (size_t i = 0; i < turnpike::SseParser::kPadding; ++i)
            sink = sink ^ data.data()[data.size() + i];
          if (data.size() > options.max_event_bytes) __builtin_trap();
          (void)event;
          return absl::OkStatus();
        });
    if (!status.ok()) break;
    input.remove_prefix(n);
  }
  parser.Finish();
  return 0;
}
