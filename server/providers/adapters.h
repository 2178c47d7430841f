// Constructors of the concrete provider adapters; MakeProviderAdapter() picks one by kind.
// See provider_adapter.h for the contract.
#ifndef TURNPIKE_SERVER_PROVIDERS_ADAPTERS_H_
#define TURNPIKE_SERVER_PROVIDERS_ADAPTERS_H_

#include <memory>
#include <string>

#include "server/providers/provider_adapter.h"

namespace turnpike {

// OpenAI Chat Completions, Azure OpenAI and OpenAI-compatible servers (by provider.kind() and
// provider.compat_flavor()).
std::unique_ptr<ProviderAdapter> NewOpenAiAdapter(const config::v1::Provider& provider,
                                                  std::string api_key);
// Anthropic Messages.
std::unique_ptr<ProviderAdapter> NewAnthropicAdapter(const config::v1::Provider& provider,
                                                     std::string api_key);
// Google Gemini generateContent / streamGenerateContent?alt=sse.
std::unique_ptr<ProviderAdapter> NewGeminiAdapter(const config::v1::Provider& provider,
                                                  std::string api_key);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_PROVIDERS_ADAPTERS_H_
