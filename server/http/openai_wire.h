// The OpenAI-compatible wire format of the HTTP front door (docs/openai-compatible.md): request
// bodies of POST /v1/chat/completions and /v1/embeddings parsed into the gateway's own requests
// (the same turnpike.v1 messages the gRPC front door admits), and the responses, stream chunks,
// model lists and errors written in OpenAI's shapes (parsing in openai_wire_parse.cc, writing in
// openai_wire.cc). No I/O; stateless; thread-safe.
#ifndef TURNPIKE_SERVER_HTTP_OPENAI_WIRE_H_
#define TURNPIKE_SERVER_HTTP_OPENAI_WIRE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnpike/v1/completion.pb.h"
#include "turnpike/v1/embedding.pb.h"

namespace turnpike {

struct OpenAiChatRequest {
  v1::StreamCompletionRequest request;  // `model` is its capability
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct OpenAiEmbedRequest {
  v1::EmbedRequest request;
  bool base64 = false;  // encoding_format "base64" (the Python and Node SDKs' default)
};

// Parse a body; errors are INVALID_ARGUMENT naming the field (google.rpc.BadRequest), in the
// request's own field names ("model", "messages[1].content"). Unknown fields are ignored.
absl::StatusOr<OpenAiChatRequest> ParseOpenAiChatRequest(std::string_view body);
absl::StatusOr<OpenAiEmbedRequest> ParseOpenAiEmbedRequest(std::string_view body);

// What identifies one completion's chunks: "chatcmpl-<request id>", the Unix time it was
// accepted, and the model name the client asked for (the capability).
struct ChunkHeader {
  std::string id;
  int64_t created = 0;
  std::string model;
};

// OpenAI's finish_reason for ours ("stop", "length", "content_filter", "tool_calls").
std::string_view OpenAiFinishReason(v1::FinishReason reason);

// A whole chat.completion object (non-streaming reply), with the tool calls the model made.
std::string ChatCompletionJson(const ChunkHeader& header, std::string_view text,
                               const std::vector<v1::ToolCall>& tool_calls,
                               const v1::CompletionFinish& finish);
// One server-sent event ("data: {chat.completion.chunk}\n\n"): the first (role), a text delta,
// the finish, or (with include_usage) the last one with the usage and no choices. With
// include_usage every other chunk carries "usage": null, as OpenAI's do.
std::string RoleChunkEvent(const ChunkHeader& header, bool include_usage);
std::string TextChunkEvent(const ChunkHeader& header, std::string_view text, bool include_usage);
std::string FinishChunkEvent(const ChunkHeader& header, v1::FinishReason reason,
                             bool include_usage);
std::string UsageChunkEvent(const ChunkHeader& header, const v1::Usage& usage);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// The embeddings list object; vectors as JSON numbers, or base64 of little-endian float32.
std::string EmbeddingListJson(const v1::EmbedResponse& response, std::string_view model,
                              bool base64);

// {"object":"list","data":[model objects]} and one model object.
std::string ModelListJson(const std::vector<std::string>& capabilities);
std::string ModelJson(std::string_view capability);

// How a status is told to an HTTP client: its HTTP status, the error JSON
// ({"error":{"message","type","param","code"}}) and the retry-after seconds (0: none).
struct HttpError {
  int http_status = 500;
  std::string body;
  int64_t retry_after_seconds = 0;
};
HttpError ToHttpError(const absl::Status& status);
// The same error as a stream event ("data: {"error":...}\n\n"), for a failure after the 200.
std::string ErrorEvent(const absl::Status& status);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_HTTP_OPENAI_WIRE_H_
