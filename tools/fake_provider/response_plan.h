// Decides, for one provider request, exactly what the fake provider sends: status, headers
// and body, or the list of stream segments with the delay between them and how the
// response ends (normally, with a TCP reset, or by stalling). All protocol and fault logic
// lives here as pure functions, so it is unit-testable; response_session.h merely replays
// a ResponsePlan on a socket. Thread-safe (no shared state).
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_PLAN_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/fake_provider/fault_spec.h"
#include "tools/fake_provider/provider.h"
#include "tools/fake_provider/request_parser.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {

struct ResponsePlan {
  enum class Kind {
    kReply,   // one complete response: status, headers, body
    kStream,  // status line + headers, then `segments` (chunked), then `ending`
    kReset,   // reset the connection before sending any byte
    kStall,   // send nothing and hold the connection open
  };
  enum class Ending { kEnd, kReset, kStall };

  Kind kind = Kind::kReply;
  // Counts toward the stream statistics (the request asked for a stream).
  bool is_stream = false;
  int first_byte_delay_ms = 0;
  int status = 200;
  std::string content_type = "application/json";
  HeaderList headers;
  std::string body;                   // kReply
  std::vector<std::string> segments;  // kStream: sent `segment_delay_ms` apart
  int segment_delay_ms = 0;
  Ending ending = Ending::kEnd;
};

struct PlanInput {
  Route route;
  // The parsed body, or the parse error.
  absl::StatusOr<ParsedRequest> parsed = ParsedRequest{};
  // Merged faults (queue, then directives, then headers).
  FaultSpec fault;
  // A fault specification that did not parse: answered with a 400 before anything else.
  std::string fault_error;
  // Authentication / required-header failure detected by the server.
  std::optional<ErrorSpec> pre_error;
  // Gemini: `alt=sse` was in the query (otherwise streams are a JSON array).
  bool gemini_alt_sse = true;
  int default_chunks = 5;
  int default_chunk_delay_ms = 0;
  // Identity of this response.
  std::string response_id;
  std::string request_id;
  int64_t created = 0;
};

ResponsePlan PlanProviderResponse(const PlanInput& in);

// The output-token limit the provider honours for this request, if any (Ollama ignores
// max_completion_tokens; llama.cpp prefers n_predict; Gemini uses maxOutputTokens).
std::optional<int64_t> EffectiveTokenLimit(Provider p, const ParsedRequest& r);

// The provider's 400 for a request that is well-formed JSON but semantically invalid.
std::optional<ErrorSpec> ValidateRequest(const Route& route, const ParsedRequest& r);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_PLAN_H_
