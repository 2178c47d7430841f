// OpenAI's chat shapes beyond plain text, for the HTTP front door (docs/openai-compatible.md):
// image content parts, assistant tool calls and tool results in the conversation, `tools`,
// `tool_choice` and `response_format` read into the gateway's own request (the turnpike.v1
// fields of docs/tools.md), and tool calls written back as `tool_calls` (stream deltas by index,
// or whole in a reply). Errors are INVALID_ARGUMENT naming the field in OpenAI's own names. No
// I/O; stateless; thread-safe.
#ifndef TURNPIKE_SERVER_HTTP_OPENAI_TOOLS_WIRE_H_
#define TURNPIKE_SERVER_HTTP_OPENAI_TOOLS_WIRE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/json_writer.h"
#include "server/http/openai_wire.h"
#include "server/providers/provider_adapter.h"
#include "simdjson.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// A message's `content` (at `field`): a string, or an array of parts, "text" and "image_url"
// ({"url": an https or data: URL}). Text-only parts are joined into the message's content;
// with an image they become its parts, in order.
absl::Status ReadOpenAiContent(const simdjson::dom::element& content, const std::string& field,
                               v1::Message* message);
// An assistant message's `tool_calls` (at `field`): [{"id","type":"function","function":
// {"name","arguments"}}].
absl::Status ReadOpenAiToolCalls(const simdjson::dom::element& calls, const std::string& field,
                                 v1::Message* message);
// The request's `tools`, `tool_choice` and `response_format`.
absl::Status ReadOpenAiToolOptions(const simdjson::dom::object& root,
                                   v1::StreamCompletionRequest* request);

// One stream event with a tool call's piece as a `tool_calls` delta: the call's first piece
// carries its index, id, type and name; the next ones its index and an arguments fragment.
std::string ToolCallChunkEvent(const ChunkHeader& header, const ToolCallFragment& fragment,
                               bool include_usage);
// "tool_calls":[...] of a whole reply's message (the key included).
void WriteOpenAiToolCalls(JsonWriter& w, const std::vector<v1::ToolCall>& calls);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_HTTP_OPENAI_TOOLS_WIRE_H_
