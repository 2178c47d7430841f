// libFuzzer target: the HTTP front door's request parsers (server/http/openai_wire.h) on
// arbitrary bytes, as a client may send them to POST /v1/chat/completions and /v1/embeddings,
// then the replies written from what they parsed (a parsed string must come back as valid JSON).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/http/openai_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<turnpike::OpenAiChatRequest> chat = turnpike::ParseOpenAiChatRequest(body);
  if (chat.ok()) {
    turnpike::ChunkHeader header{"chatcmpl-x", 0, chat->request.capability()};
    std::string text;
    for (const auto& m : chat->request.messages()) text += m.content();
    (void)turnpike::TextChunkEvent(header, text, chat->include_usage);
    (void)turnpike::ChatCompletionJson(header, text, {});
  } else {
    (void)turnpike::ToHttpError(chat.status());
  }
  absl::StatusOr<turnpike::OpenAiEmbedRequest> embed = turnpike::ParseOpenAiEmbedRequest(body);
  if (embed.ok()) (void)turnpike::ModelJson(embed->request.capability());
  return 0;
}
