// The adapter for OpenAI Chat Completions and everything that speaks its wire format: OpenAI
// itself, Azure OpenAI (classic deployment URLs) and self-hosted OpenAI-compatible servers (vLLM,
// llama.cpp, Ollama, or a generic one). docs/providers.md §1, §4, §5 describe the formats; the
// quirks each flavor needs are decided once, at construction, into an OpenAiDialect. The adapter is
// immutable and thread-safe; an OpenAiStreamDecoder is owned by one response on one thread.
//
// Config that the factory cannot reject (it returns no status) is taken as given: an Azure
// provider without api_version still gets a URL ("api-version=" empty, which Azure answers with
// 404); the snapshot validator rejects such a provider before it reaches here. Extra headers whose
// name or value contains CR, LF or NUL are dropped (header injection); an extra header with the
// same name as one the adapter sets (e.g. Authorization for Azure Entra ID tokens) replaces it.
#ifndef TURNPIKE_SERVER_PROVIDERS_OPENAI_ADAPTER_H_
#define TURNPIKE_SERVER_PROVIDERS_OPENAI_ADAPTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/providers/provider_adapter.h"

namespace turnpike {

// Per-provider wire decisions, fixed at construction.
struct OpenAiDialect {
  bool azure = false;
  // Which field carries the token limit. OpenAI rejects `max_tokens` on reasoning models;
  // Ollama ignores `max_completion_tokens`; see openai_adapter.cc for the per-flavor choice.
  bool use_max_completion_tokens = true;
  // Whether to ask for `stream_options.include_usage` on streams (never on unary requests).
  bool send_stream_options = true;
  // Whether to forward ChatParams::user / EmbedParams::user.
  bool send_user = true;
  // Old llama.cpp reports mid-stream errors in a non-standard `error:` SSE field that parsers
  // drop, then sends [DONE]; for it a [DONE] with no finish_reason is a failure, not a success.
  bool done_requires_finish = false;
  // Ollama's /v1 has no `tool_choice` (docs/providers.md §5.3): auto is its only behaviour, so
  // the field is left out rather than sent and ignored.
  bool send_tool_choice = true;
};

class OpenAiAdapter final : public ProviderAdapter {
 public:
  OpenAiAdapter(const config::v1::Provider& provider, std::string api_key);

  HttpRequest BuildChatRequest(const ChatParams& params) const override;
  std::unique_ptr<StreamDecoder> NewStreamDecoder() const override;
  absl::StatusOr<ChatResult> ParseChatResponse(std::string_view body) const override;
  ProviderError ParseError(int http_status, std::string_view body) const override;
  absl::StatusOr<HttpRequest> BuildEmbedRequest(const EmbedParams& params) const override;
  absl::StatusOr<EmbedResult> ParseEmbedResponse(std::string_view body) const override;

  const OpenAiDialect& dialect() const { return dialect_; }

 private:
  // `{base}/chat/completions` or Azure's deployment URL; `operation` is "chat/completions" or
  // "embeddings".
  std::string Url(std::string_view model, std::string_view operation) const;
  std::vector<std::string> Headers(bool stream) const;

  // Constant after construction.
  const std::string base_url_;  // without a trailing slash
  const std::string api_version_;
  const std::string api_key_;
  const OpenAiDialect dialect_;
  // "Name: value" lines sent on every request (auth, content type, the provider's extras).
  const std::vector<std::string> fixed_headers_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_OPENAI_ADAPTER_H_
