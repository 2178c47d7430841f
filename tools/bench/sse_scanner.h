// Incremental scanner for an OpenAI chat-completions SSE body, as the direct baseline reads it
// from the fake provider. It does not parse JSON: it only has to tell, per `data:` event, whether
// the event carries generated text (a non-empty `"content":"..."` delta, the same event the
// gateway turns into a CompletionDelta) and whether `[DONE]` arrived. Bytes may be split
// anywhere between Feed() calls. Not thread-safe; one scanner per response.
#ifndef TURNPIKE_TOOLS_BENCH_SSE_SCANNER_H_
#define TURNPIKE_TOOLS_BENCH_SSE_SCANNER_H_

#include <string>
#include <string_view>

namespace turnpike::bench {

class SseScanner {
 public:
  // What one Feed() found.
  struct Events {
    int data = 0;     // `data:` events other than [DONE]
    int content = 0;  // of which carry non-empty content
  };

  void Reset();
  Events Feed(std::string_view bytes);
  bool done() const { return done_; }

  // Whether a chunk's JSON payload carries non-empty delta text.
  static bool HasContent(std::string_view payload);

 private:
  void Line(std::string_view line, Events& events);

  std::string partial_;  // an incomplete last line
  bool done_ = false;
};

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_SSE_SCANNER_H_
