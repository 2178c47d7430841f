// The direct baseline: the same completions sent straight to the fake provider's OpenAI
// `POST /v1/chat/completions` over HTTP/1.1 with libcurl multi, streaming SSE. Measured like the
// gRPC calls: the first `data:` event with generated text is the first token, later ones give
// the gaps. Each worker thread owns one multi handle, its easy handles (connections are reused
// across calls) and its own Recorder.
#ifndef TURNPIKE_TOOLS_BENCH_HTTP_LOAD_H_
#define TURNPIKE_TOOLS_BENCH_HTTP_LOAD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/bench/load_plan.h"
#include "tools/bench/recorder.h"

namespace turnpike::bench {

struct HttpTarget {
  std::string base_url;  // e.g. http://127.0.0.1:8080 (the path /v1/chat/completions is added)
  bool unary = false;    // "stream": false
  std::string model = "gpt-4o-mini";
  std::string api_key;               // sent as Authorization: Bearer
  std::vector<std::string> headers;  // extra "Name: value" lines (e.g. x-fake-chunks)
  std::string prompt;
  int max_tokens = 1024;  // what the gateway sends when the request sets none
};

// The request body the gateway's OpenAI adapter would send for `target`.
std::string ChatRequestBody(const HttpTarget& target);

absl::StatusOr<Recorder> RunHttpLoad(const LoadOptions& options, const HttpTarget& target);

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_HTTP_LOAD_H_
