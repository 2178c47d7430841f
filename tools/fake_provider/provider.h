// Which provider wire protocol a request path selects. The fake serves every provider from
// one port; the path prefix (see MatchRoute) picks the dialect, exactly as a gateway's
// upstream base URL would. Pure functions and value types; thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_PROVIDER_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_PROVIDER_H_

#include <optional>
#include <string>
#include <string_view>

namespace turnpike::fake_provider {

enum class Provider {
  kOpenAI,     // /v1/chat/completions, /v1/embeddings
  kAzure,      // /openai/deployments/{deployment}/...?api-version=
  kAnthropic,  // /v1/messages
  kGemini,     // /v1beta/models/{model}:generateContent | :streamGenerateContent
  kVllm,       // /vllm/v1/...
  kLlamaCpp,   // /llamacpp/v1/...
  kOllama,     // /ollama/v1/...
};

enum class Endpoint { kChat, kEmbeddings };

struct Route {
  Provider provider = Provider::kOpenAI;
  Endpoint endpoint = Endpoint::kChat;
  // Gemini only: the path asked for :streamGenerateContent.
  bool stream_by_path = false;
  // The model named by the path: Gemini's {model}, Azure's {deployment}; else empty.
  std::string path_model;
};

// Maps a request path (without query string) to a provider route, or nullopt if the path
// is not one the fake serves.
std::optional<Route> MatchRoute(std::string_view path);

// Short stable name, e.g. "openai", "azure", "anthropic", "gemini", "vllm".
std::string_view ProviderName(Provider p);

// True for the providers that speak the OpenAI chat-completions dialect.
bool IsOpenAIFamily(Provider p);

// True for the local servers that do not check credentials.
bool IsLocalServer(Provider p);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_PROVIDER_H_
