// Error bodies for the OpenAI chat-completions dialects (OpenAI, Azure OpenAI, vLLM,
// llama.cpp, Ollama), kept apart from the success-path builders in wire_openai.cc.
// Pure functions; thread-safe.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_OPENAI_ERRORS_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_OPENAI_ERRORS_H_

#include <string>

#include "tools/fake_provider/provider.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {

// The {"error":{...}} body `dialect` sends for `spec` (also used for in-stream errors).
std::string OpenAIFamilyErrorBody(Provider dialect, const ErrorSpec& spec);

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_WIRE_OPENAI_ERRORS_H_
