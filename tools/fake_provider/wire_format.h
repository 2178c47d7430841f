// Per-provider response builders for the fake provider. A WireFormat turns a
// ResponseContext (what to say) into the exact bytes a provider would send: non-streaming
// JSON bodies, the stream's prologue / content / epilogue SSE events, in-stream errors and
// HTTP error replies. It knows nothing about faults or sockets; the planner
// (response_plan.h) decides which of these pieces are sent and when.
// Implementations are stateless singletons (WireFor); thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_FORMAT_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/fake_provider/provider.h"
#include "tools/fake_provider/sse.h"

namespace turnpike::fake_provider {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ResponseContext;

// Text of content chunk `i`: in tool-call mode the i-th of ctx.content_chunks nearly equal
// fragments of kToolArguments (cut between UTF-8 sequences); with `echo=1`, the i-th of
// ctx.content_chunks nearly equal pieces of ctx.echo (cut between UTF-8 sequences); else the words
// "Hello", " from", " the", " fake", " provider", cycling (" Hello" from the second round on), so
// five chunks spell "Hello from the fake provider" and seven "Hello from the fake provider Hello
// from".
std::string_view ChunkText(const ResponseContext& ctx, int i);
// Concatenation of the first ctx.content_chunks chunk texts.
std::string ReplyText(const ResponseContext& ctx);

// Everything a builder needs to render one chat response.
struct ResponseContext {
  Provider provider = Provider::kOpenAI;
  std::string model;
  std::string id;          // provider-styled response id (chatcmpl-…, msg_…, responseId)
  std::string request_id;  // req_… (x-request-id / request-id / Anthropic error bodies)
  // `id` and `model` as quoted JSON strings, rendered once per response (see
  // FinalizeContext) because every stream chunk repeats them.
  std::string id_json;
  std::string model_json;
  int64_t created = 0;              // unix seconds
  int64_t input_tokens = 0;         // every prompt token, cached and cache-written included
  int64_t cached_tokens = 0;        // of input_tokens, read from the prompt cache
  int64_t cache_write_tokens = 0;   // of input_tokens, written to the prompt cache
  int64_t reasoning_tokens = 0;     // billed output beyond the content chunks
  int content_chunks = 0;           // content chunks in the full answer = visible output tokens
  bool finish_by_length = false;    // answer cut by the token limit
  bool include_usage = false;       // OpenAI family: usage chunk before [DONE]
  bool continuous_usage = false;    // vLLM continuous_usage_stats
  bool include_obfuscation = true;  // OpenAI: `obfuscation` padding field
  std::string echo;                 // `echo=1`: the reply text (else the usual words)
  // Tool-call mode (README "Tool calls"): the reply is one call of this tool, its arguments
  // (kToolArguments) streamed as the content chunks' fragments; empty for a text reply.
  std::string tool_name;
  // The call's arguments when not kToolArguments (classification mode's answer).
  std::string tool_arguments;
};

// Classification mode's model that answers outside the request's labels (README
// "Classification").
inline constexpr std::string_view kBadLabelsModel = "fake-bad-labels";

// The tool-call mode's call id and arguments (the same in every dialect and every reply).
inline constexpr std::string_view kToolCallId = "call_fake_0";
inline constexpr std::string_view kToolArguments =
    R"({"city": "Paris", "unit": "celsius", "note": "say \"hi\" \u00e9 👋"})";
// Fragments the arguments are streamed in (content chunks in tool-call mode).
inline constexpr int kToolArgumentFragments = 12;

// Fills the derived fields (id_json, model_json) after id and model are set.
void FinalizeContext(ResponseContext* ctx);

struct EmbeddingsContext {
  Provider provider = Provider::kOpenAI;
  std::string model;
  std::string id;
  int64_t created = 0;
  int64_t input_tokens = 0;
  std::vector<std::string> inputs;
  bool base64 = false;
  int dims = 8;
};

enum class ErrorKind {
  kInjected,                    // a `status=` fault
  kAuthMissing,                 // no credential presented
  kAuthInvalid,                 // wrong credential presented
  kInvalidRequest,              // semantic 400 (message + param given)
  kStreamOptionsWithoutStream,  // `stream_options` sent with stream false
  kNotFound,                    // unknown path (OpenAI-style body)
};

struct ErrorSpec {
  int status = 400;
  ErrorKind kind = ErrorKind::kInjected;
  std::string message;        // empty: the provider's usual text for this status/kind
  std::string param;          // OpenAI-family `param`; empty renders as null
  std::string type_override;  // `error_type=` fault: replaces error type / code
  std::string presented_key;  // kAuthInvalid: the key that was sent (masked in text)
  std::string model;
  std::string request_id;
  std::string retry_after;  // seconds, for Gemini RetryInfo on 429
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HeaderList headers;
};

class WireFormat {
 public:
  virtual ~WireFormat() = default;

  virtual std::string_view StreamContentType() const = 0;
  virtual LineEnding DefaultLineEnding() const { return LineEnding::kLf; }

  // Events before the first content chunk (role chunk, message_start, keep-alives...).
  virtual void AppendPrologue(const ResponseContext& ctx, std::vector<SseEvent>* out) const = 0;
  // Content chunk `index`; `final` asks formats that finish in-band (Gemini) to mark it.
  virtual SseEvent ContentEvent(const ResponseContext& ctx, int index, bool final) const = 0;
  // Events after the last content chunk of a complete stream (finish, usage, [DONE]...).
  virtual void AppendEpilogue(const ResponseContext& ctx, std::vector<SseEvent>* out) const = 0;
  // The provider's error inside an already-started 200 stream.
  virtual void AppendStreamError(const ResponseContext& ctx, const std::string& type_override,
                                 std::vector<SseEvent>* out) const = 0;

  // Complete non-streaming chat response body.
  virtual std::string CompletionBody(const ResponseContext& ctx) const = 0;
  // Embeddings response body (OpenAI shape unless overridden).
  virtual std::string EmbeddingsBody(const EmbeddingsContext& ctx) const;
  // Error reply (status, body, extra headers) in the provider's own shape.
  virtual HttpReply Error(const ErrorSpec& spec) const = 0;
  // Provider-specific headers on every reply (request ids, rate-limit headers).
  virtual void AppendResponseHeaders(const std::string& request_id, HeaderList* out) const;
};

// The builder for `p`; lives for the whole program.
const WireFormat& WireFor(Provider p);

// Factories used by WireFor (one per implementation file).
const WireFormat& OpenAIFamilyWire(Provider p);
const WireFormat& AnthropicWire();
const WireFormat& GeminiWire();

// Standard reason phrase for an HTTP status ("Too Many Requests"), or "Error".
std::string_view ReasonPhrase(int status);

// "sk-a***wxyz": enough of a key to recognise it, as providers echo it in 401 bodies.
std::string MaskKey(std::string_view key);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_FORMAT_H_
