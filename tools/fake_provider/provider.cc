#include "tools/fake_provider/provider.h"

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {
namespace {

// Matches "{prefix}v1/chat/completions" or "{prefix}v1/embeddings" style tails.
std::optional<Endpoint> MatchOpenAITail(std::string_view tail) {
  if (tail == "chat/completions") return Endpoint::kChat;
  if (tail == "embeddings") return Endpoint::kEmbeddings;
  return std::nullopt;
}

std::optional<Route> MatchAzure(std::string_view path) {
  constexpr std::string_view kPrefix = "/openai/deployments/";
  if (!absl::StartsWith(Absl(path), Absl(kPrefix))) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  auto endpoint = MatchOpenAITail(rest.substr(slash + 1));
  if (!endpoint) return std::nullopt;
  Route r;
  r.provider = Provider::kAzure;
  r.endpoint = *endpoint;
  r.path_model = std::string(rest.substr(0, slash));
  return r;
}

std::optional<Route> MatchGemini(std::string_view path) {
  std::string_view rest;
  if (absl::StartsWith(Absl(path), "/v1beta/models/")) {
    rest = path.substr(15);
  } else if (absl::StartsWith(Absl(path), "/v1/models/")) {
    rest = path.substr(11);
  } else {
    return std::nullopt;
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view method = rest.substr(colon + 1);
  Route r;
  r.provider = Provider::kGemini;
  r.endpoint = Endpoint::kChat;
  r.path_model = std::string(rest.substr(0, colon));
  if (method == "generateContent") {
    r.stream_by_path = false;
  } else if (method == "streamGenerateContent") {
    r.stream_by_path = true;
  } else {
    return std::nullopt;
  }
  return r;
}

}  // namespace

std::optional<Route> MatchRoute(std::string_view path) {
  if (path == "/v1/messages") {
    Route r;
    r.provider = Provider::kAnthropic;
    return r;
  }
  if (absl::StartsWith(Absl(path), "/v1/")) {
    if (auto endpoint = MatchOpenAITail(path.substr(4))) {
      Route r;
      r.provider = Provider::kOpenAI;
      r.endpoint = *endpoint;
      return r;
    }
  }
  if (auto r = MatchAzure(path)) return r;
  if (auto r = MatchGemini(path)) return r;
  struct Local {
    std::string_view prefix;
    Provider provider;
  };
  static constexpr Local kLocals[] = {
      {"/vllm/v1/", Provider::kVllm},
      {"/llamacpp/v1/", Provider::kLlamaCpp},
      {"/ollama/v1/", Provider::kOllama},
  };
  for (const Local& local : kLocals) {
    if (!absl::StartsWith(Absl(path), Absl(local.prefix))) continue;
    if (auto endpoint = MatchOpenAITail(path.substr(local.prefix.size()))) {
      Route r;
      r.provider = local.provider;
      r.endpoint = *endpoint;
      return r;
    }
  }
  return std::nullopt;
}

std::string_view ProviderName(Provider p) {
  switch (p) {
    case Provider::kOpenAI:
      return "openai";
    case Provider::kAzure:
      return "azure";
    case Provider::kAnthropic:
      return "anthropic";
    case Provider::kGemini:
      return "gemini";
    case Provider::kVllm:
      return "vllm";
    case Provider::kLlamaCpp:
      return "llamacpp";
    case Provider::kOllama:
      return "ollama";
  }
  return "unknown";
}

bool IsOpenAIFamily(Provider p) { return p != Provider::kAnthropic && p != Provider::kGemini; }

bool IsLocalServer(Provider p) {
  return p == Provider::kVllm || p == Provider::kLlamaCpp || p == Provider::kOllama;
}

}  // namespace turnpike::fake_provider
