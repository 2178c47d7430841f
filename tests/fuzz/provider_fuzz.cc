// libFuzzer target: one provider family's wire decoders (server/providers/) on arbitrary response
// bodies. Every input is decoded three ways by every adapter of the family: as an SSE stream
// through SseParser and NewStreamDecoder() (chunk sizes from the first byte), as a non-streaming
// body (ParseChatResponse, ParseEmbedResponse), and as an error body (ParseError). The family is
// chosen at build time (TURNPIKE_FUZZ_FAMILY: 0 OpenAI-family, 1 Anthropic, 2 Gemini), so each
// family has its own fuzzer and corpus.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "server/providers/adapters.h"
#include "server/providers/provider_adapter.h"
#include "server/providers/sse_parser.h"

namespace {

using turnpike::ProviderAdapter;
namespace cfg = turnpike::config::v1;

cfg::Provider MakeProvider(cfg::ProviderKind kind, cfg::CompatFlavor flavor) {
  cfg::Provider p;
  p.set_name("fuzz");
  p.set_kind(kind);
  p.set_compat_flavor(flavor);
  p.set_base_url("https://upstream.example");
  if (kind == cfg::PROVIDER_KIND_AZURE_OPENAI) p.set_api_version("2024-10-21");
  return p;
}

std::vector<std::unique_ptr<ProviderAdapter>> MakeAdapters() {
  std::vector<std::unique_ptr<ProviderAdapter>> out;
#if TURNPIKE_FUZZ_FAMILY == 0
  out.push_back(turnpike::NewOpenAiAdapter(
      MakeProvider(cfg::PROVIDER_KIND_OPENAI, cfg::COMPAT_FLAVOR_UNSPECIFIED), "sk-fuzz"));
  out.push_back(turnpike::NewOpenAiAdapter(
      MakeProvider(cfg::PROVIDER_KIND_AZURE_OPENAI, cfg::COMPAT_FLAVOR_UNSPECIFIED), "key"));
  for (cfg::CompatFlavor flavor : {cfg::COMPAT_FLAVOR_UNSPECIFIED, cfg::COMPAT_FLAVOR_VLLM,
                                   cfg::COMPAT_FLAVOR_LLAMA_CPP, cfg::COMPAT_FLAVOR_OLLAMA}) {
    out.push_back(
        turnpike::NewOpenAiAdapter(MakeProvider(cfg::PROVIDER_KIND_OPENAI_COMPATIBLE, flavor), ""));
  }
#elif TURNPIKE_FUZZ_FAMILY == 1
  out.push_back(turnpike::NewAnthropicAdapter(
      MakeProvider(cfg::PROVIDER_KIND_ANTHROPIC, cfg::COMPAT_FLAVOR_UNSPECIFIED), "sk-ant-fuzz"));
#elif TURNPIKE_FUZZ_FAMILY == 2
  out.push_back(turnpike::NewGeminiAdapter(
      MakeProvider(cfg::PROVIDER_KIND_GEMINI, cfg::COMPAT_FLAVOR_UNSPECIFIED), "gemini-fuzz"));
#else
#error "TURNPIKE_FUZZ_FAMILY must be 0, 1 or 2"
#endif
  return out;
}

// Checks the sink contract: text is never empty, nothing follows OnFinish, OnFinish at most once.
class CheckingSink : public turnpike::StreamSink {
 public:
  void OnText(std::string_view text) override {
    if (text.empty() || finished_) __builtin_trap();
  }
  void OnToolCall(const turnpike::ToolCallFragment& fragment) override {
    if (finished_ || fragment.index < 0) __builtin_trap();
  }
  void OnFinish(const turnpike::ChatFinish&) override {
    if (finished_) __builtin_trap();
    finished_ = true;
  }

 private:
  bool finished_ = false;
};

void DecodeStream(const ProviderAdapter& adapter, std::string_view body, size_t chunk) {
  std::unique_ptr<turnpike::StreamDecoder> decoder = adapter.NewStreamDecoder();
  CheckingSink sink;
  turnpike::SseParser parser;
  absl::Status status;
  while (status.ok() && !body.empty()) {
    const size_t n = body.size() < chunk ? body.size() : chunk;
    status = parser.Feed(body.substr(0, n), [&](std::string_view event, std::string_view data) {
      return decoder->OnEvent(event, data, sink);
    });
    body.remove_prefix(n);
  }
  if (status.ok()) {
    parser.Finish();
    (void)decoder->OnEnd(sink);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* adapters = new std::vector<std::unique_ptr<ProviderAdapter>>(MakeAdapters());
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const size_t chunk = size == 0 ? 1 : 1 + data[0] % 97;
  const int http_status = 400 + static_cast<int>(size % 200);
  for (const auto& adapter : *adapters) {
    DecodeStream(*adapter, body, chunk);
    (void)adapter->ParseChatResponse(body);
    (void)adapter->ParseEmbedResponse(body);
    turnpike::ProviderError error = adapter->ParseError(http_status, body);
    // The error must survive its round trip through a status (what the router does with it).
    if (!turnpike::ProviderErrorFromStatus(turnpike::ProviderErrorStatus(error)).has_value()) {
      __builtin_trap();
    }
  }
  return 0;
}
