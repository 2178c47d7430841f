// libFuzzer target: the HTTP front door's request parsers (server/http/openai_wire.h) on
// arbitrary bytes, as a client may send them to POST /v1/chat/completions and /v1/embeddings,
// then the replies written from what they parsed (a parsed string must come back as valid JSON).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "server/http/openai_tools_wire.h"
#include "server/http/openai_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<turnpike::OpenAiChatRequest> chat = turnpike::ParseOpenAiChatRequest(body);
  if (chat.ok()) {
    turnpike::ChunkHeader header{"chatcmpl-x", 0, chat->request.capability()};
    std::string text;
    std::vector<turnpike::v1::ToolCall> calls;
    for (const auto& m : chat->request.messages()) {
      text += m.content();
      calls.insert(calls.end(), m.tool_calls().begin(), m.tool_calls().end());
    }
    (void)turnpike::TextChunkEvent(header, text, chat->include_usage);
    (void)turnpike::ChatCompletionJson(header, text, calls, {});
    for (const auto& call : calls) {
      (void)turnpike::ToolCallChunkEvent(
          header, turnpike::ToolCallFragment{0, call.id(), call.name(), call.arguments_json()},
          chat->include_usage);
    }
  } else {
    (void)turnpike::ToHttpError(chat.status());
  }
  absl::StatusOr<turnpike::OpenAiEmbedRequest> embed = turnpike::ParseOpenAiEmbedRequest(body);
  if (embed.ok()) (void)turnpike::ModelJson(embed->request.capability());
  return 0;
}
