// A provider adapter translates between Turnpike's normalized request/stream and one provider's
// wire protocol (docs/providers.md): it builds the upstream HTTP request, decodes the SSE stream or
// the JSON body into normalized events, and classifies the provider's error bodies. Adapters do no
// I/O and never retry (the router owns retries). An adapter is immutable after construction and
// safe to share across threads; a StreamDecoder belongs to one response on one thread.
#ifndef TURNPIKE_SERVER_PROVIDERS_PROVIDER_ADAPTER_H_
#define TURNPIKE_SERVER_PROVIDERS_PROVIDER_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnpike/config/v1/snapshot.pb.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// An HTTP request to send upstream. Always POST.
struct HttpRequest {
  std::string url;
  // Complete header lines, "Name: value".
  std::vector<std::string> headers;
  std::string body;
};

// The normalized chat request handed to an adapter.
struct ChatParams {
  std::string_view model;
  // The caller's messages (validated: roles set, at least one message).
  const google::protobuf::RepeatedPtrField<v1::Message>* messages = nullptr;
  int32_t max_tokens = 0;  // resolved: the request's or the route default; always > 0
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string_view> stop;
  std::string_view user;
  bool stream = true;
  // Tools the model may call (validated: names unique, parameters a JSON object); may be null.
  const google::protobuf::RepeatedPtrField<v1::Tool>* tools = nullptr;
  // Unset mode means auto; meaningful only with tools.
  v1::ToolChoice tool_choice;
  // Unset type means plain text.
  v1::ResponseFormat response_format;
};

struct EmbedParams {
  std::string_view model;
  std::vector<std::string_view> inputs;
  std::optional<int32_t> dimensions;
  std::string_view user;
};

// What kind of failure a provider reported; decides the gRPC code and whether to retry.
enum class ProviderErrorClass {
  kInvalidRequest,  // 400/413/422: the request is wrong; never retried
  kAuth,            // 401/403, Gemini API_KEY_INVALID: our credential is wrong
  kNotFound,        // 404: model or deployment missing (a route misconfiguration)
  kRateLimited,     // 429 rate limit: transient, honour retry-after
  kQuotaExhausted,  // 429/402 quota or spend limit (insufficient_quota, billing_error)
  kOverloaded,      // 529, overloaded_error, 503
  kServer,          // other 5xx, 408, 409
  kUnknown,
};

// A provider's error, normalized. Never holds secrets (messages are redacted by the adapter if
// they echo a key, as OpenAI's 401 does).
struct ProviderError {
  ProviderErrorClass error_class = ProviderErrorClass::kUnknown;
  int http_status = 0;  // 0 when the error came inside a 200 stream
  std::string type;     // provider error type, e.g. "rate_limit_error"
  std::string code;     // provider error code, e.g. "invalid_api_key"
  std::string message;
  int64_t retry_after_ms = 0;  // from headers (filled by the caller) or the body
};

// The end of a completion, normalized. Token counts have one meaning whatever the provider
// (docs/usage.md, "Token kinds"); each adapter maps its own fields onto it:
//   input_tokens   every input token billed, cached_input_tokens and cache_write_input_tokens
//                  included (Anthropic's input_tokens excludes them: the adapter adds them);
//   output_tokens  every output token billed, reasoning_output_tokens included (Gemini's
//                  candidatesTokenCount excludes thoughts: the adapter adds them).
// The parts never exceed their totals (NormalizeTokenParts).
struct ChatFinish {
  v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED;
  std::string provider_reason;  // e.g. "stop", "end_turn", "MAX_TOKENS"
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_input_tokens = 0;       // part of input_tokens read from the prompt cache
  int64_t cache_write_input_tokens = 0;  // part of input_tokens written to the prompt cache
  int64_t reasoning_output_tokens = 0;   // part of output_tokens spent on reasoning
  bool usage_reported = false;           // false if the provider sent no usage
};

// Clamps the parts of a finish's counts so that cached + cache-write <= input and
// reasoning <= output (a provider reporting more parts than its total would otherwise make a
// cost component negative). Cache reads are kept before cache writes.
void NormalizeTokenParts(ChatFinish& finish);

// A piece of a streamed tool call, normalized. The first piece of a call carries its id and
// name; the argument fragments, concatenated in order, are the provider's arguments byte for byte.
struct ToolCallFragment {
  int32_t index = 0;           // which call of the reply, from 0, consecutive
  std::string_view id;         // on the call's first fragment (empty otherwise)
  std::string_view name;       // on the call's first fragment (empty otherwise)
  std::string_view arguments;  // the next fragment of the arguments' JSON text; may be empty
};

// Assembles tool-call fragments into whole calls (for unary replies, the cache, tests). A
// fragment with a new index starts a call; argument fragments are appended as they are.
class ToolCallAssembler {
 public:
  void Add(const ToolCallFragment& fragment);
  const std::vector<v1::ToolCall>& calls() const { return calls_; }
  std::vector<v1::ToolCall> Release() { return std::move(calls_); }

 private:
  std::vector<v1::ToolCall> calls_;
  std::vector<int32_t> indexes_;  // the provider's index of each call in calls_
};

struct ChatResult {
  std::string text;
  std::vector<v1::ToolCall> tool_calls;
  ChatFinish finish;
};

struct EmbedResult {
  std::vector<std::vector<float>> vectors;  // in input order
  int64_t input_tokens = 0;
  std::string model;  // as reported by the provider, may be empty
};

// Receives normalized stream events from a decoder.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Generated text, in order. Never empty.
  virtual void OnText(std::string_view text) = 0;
  // A piece of a tool call, in order; a call's first piece comes before any of its arguments.
  virtual void OnToolCall(const ToolCallFragment& fragment) = 0;
  // The stream completed normally. Called at most once, after the last OnText.
  virtual void OnFinish(const ChatFinish& finish) = 0;
};

// Decodes one streamed response. Feed it every SSE event, then OnEnd() at end of body.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // One SSE event. `data` has SseParser::kPadding readable bytes after it. Returns non-OK to abort
  // the stream: ProviderErrorStatus() for an error event sent by the provider inside the 200
  // stream, INTERNAL for malformed data.
  virtual absl::Status OnEvent(std::string_view event, std::string_view data, StreamSink& sink) = 0;
  // End of body. Calls sink.OnFinish() and returns OK if the stream completed; returns UNAVAILABLE
  // ("stream ended before ...") if it was cut off before its terminal event.
  virtual absl::Status OnEnd(StreamSink& sink) = 0;
};

class ProviderAdapter {
 public:
  virtual ~ProviderAdapter() = default;

  virtual HttpRequest BuildChatRequest(const ChatParams& params) const = 0;
  virtual std::unique_ptr<StreamDecoder> NewStreamDecoder() const = 0;
  // Parses a non-streaming 200 body. INTERNAL if malformed.
  virtual absl::StatusOr<ChatResult> ParseChatResponse(std::string_view body) const = 0;

  // Classifies a non-2xx response. `body` may be empty, non-JSON, or another provider's shape.
  virtual ProviderError ParseError(int http_status, std::string_view body) const = 0;

  // Embeddings; FAILED_PRECONDITION for providers without an embeddings API.
  virtual absl::StatusOr<HttpRequest> BuildEmbedRequest(const EmbedParams& params) const;
  virtual absl::StatusOr<EmbedResult> ParseEmbedResponse(std::string_view body) const;
};

// What a provider's API can serve beyond plain text (docs/tools.md, "Which targets serve what").
// Routing skips a target that lacks a feature a request uses.
struct ProviderFeatures {
  bool tools = false;        // tools, tool calls and tool results
  bool images = false;       // image parts
  bool json_object = false;  // a JSON-object response format
  bool json_schema = false;  // a JSON Schema response format
  bool Supports(v1::RequestFeature feature) const;
};
// From the provider's kind and compat flavor.
ProviderFeatures FeaturesOf(const config::v1::Provider& provider);
// "tools", "tool results", "images", "JSON object output", "JSON Schema output".
std::string_view FeatureName(v1::RequestFeature feature);

// Creates the adapter for `provider`. `api_key` is the resolved secret (may be empty for local
// servers). INVALID_ARGUMENT for an unknown kind.
absl::StatusOr<std::unique_ptr<ProviderAdapter>> MakeProviderAdapter(
    const config::v1::Provider& provider, std::string api_key);

// Converts a provider error to the status the caller sees: the gRPC code chosen by error class,
// a message naming the provider status and message, and a turnpike.v1.ProviderError payload
// (kProviderErrorPayloadUrl) so the service can attach it as a rich error detail.
inline constexpr char kProviderErrorPayloadUrl[] = "type.googleapis.com/turnpike.v1.ProviderError";
absl::Status ProviderErrorStatus(const ProviderError& error);
// Recovers the ProviderError from a status made by ProviderErrorStatus(), if any.
std::optional<ProviderError> ProviderErrorFromStatus(const absl::Status& status);
// Whether a failure of this class may be retried or failed over (before the commit point).
bool IsRetryable(ProviderErrorClass error_class);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_PROVIDER_ADAPTER_H_
