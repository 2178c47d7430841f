// Gemini request building, error classification and the factory. Response parsing is in
// gemini_response.cc.
#include "server/providers/gemini_adapter.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "server/providers/adapter_util.h"
#include "server/providers/adapters.h"

namespace turnpike {
namespace {

using adapter_util::AsAbsl;

std::vector<std::string> MakeHeaders(const config::v1::Provider& provider,
                                     const std::string& api_key, bool stream) {
  std::vector<std::string> headers;
  if (!api_key.empty()) headers.push_back(absl::StrCat("x-goog-api-key: ", api_key));
  headers.push_back("content-type: application/json");
  headers.push_back(stream ? "accept: text/event-stream" : "accept: application/json");
  adapter_util::AppendProviderHeaders(provider, headers);
  return headers;
}

// "gemini-2.5-flash" → "models/gemini-2.5-flash"; a name with a collection ("models/x",
// "tunedModels/x") is kept. Bytes outside the URL-safe set are percent-encoded, so a stray
// character in a configured model name cannot change the URL's shape.
std::string ModelPath(std::string_view model) {
  std::string path = model.find('/') == std::string_view::npos ? "models/" : "";
  for (char c : model) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      path.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      path.push_back('%');
      path.push_back(kHex[u >> 4]);
      path.push_back(kHex[u & 0xF]);
    }
  }
  return path;
}

const char* RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_USER:
      return "user";
    case v1::ROLE_ASSISTANT:
      return "model";
    default:
      return nullptr;
  }
}

void WriteContents(const google::protobuf::RepeatedPtrField<v1::Message>& messages,
                   JsonWriter& json) {
  json.Key("contents").BeginArray();
  // Role of the Content being written; ROLE_UNSPECIFIED when none is open.
  v1::Role open_role = v1::ROLE_UNSPECIFIED;
  for (const v1::Message& message : messages) {
    const char* role_name = RoleName(message.role());
    if (role_name == nullptr || message.content().empty()) continue;
    if (message.role() != open_role) {
      if (open_role != v1::ROLE_UNSPECIFIED) json.EndArray().EndObject();
      json.BeginObject().Key("role").String(role_name).Key("parts").BeginArray();
      open_role = message.role();
    }
    json.BeginObject().Key("text").String(message.content()).EndObject();
  }
  if (open_role != v1::ROLE_UNSPECIFIED) json.EndArray().EndObject();
  json.EndArray();
}

void WriteSystemInstruction(const google::protobuf::RepeatedPtrField<v1::Message>& messages,
                            JsonWriter& json) {
  bool open = false;
  for (const v1::Message& message : messages) {
    if (message.role() != v1::ROLE_SYSTEM || message.content().empty()) continue;
    if (!open) {
      json.Key("systemInstruction").BeginObject().Key("parts").BeginArray();
      open = true;
    }
    json.BeginObject().Key("text").String(message.content()).EndObject();
  }
  if (open) json.EndArray().EndObject();
}

}  // namespace

GeminiAdapter::GeminiAdapter(const config::v1::Provider& provider, std::string api_key)
    : api_key_(std::move(api_key)) {
  versioned_base_ = adapter_util::TrimBaseUrl(provider.base_url(), kGeminiDefaultBaseUrl);
  if (!absl::EndsWith(versioned_base_, "/v1beta") && !absl::EndsWith(versioned_base_, "/v1") &&
      !absl::EndsWith(versioned_base_, "/v1alpha")) {
    versioned_base_ += "/v1beta";  // the SDK's default version
  }
  stream_headers_ = MakeHeaders(provider, api_key_, /*stream=*/true);
  unary_headers_ = MakeHeaders(provider, api_key_, /*stream=*/false);
}

HttpRequest GeminiAdapter::BuildChatRequest(const ChatParams& params) const {
  HttpRequest request;
  request.url = absl::StrCat(versioned_base_, "/", ModelPath(params.model),
                             params.stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
  request.headers = params.stream ? stream_headers_ : unary_headers_;

  static const google::protobuf::RepeatedPtrField<v1::Message> kNoMessages;
  const auto& messages = params.messages != nullptr ? *params.messages : kNoMessages;
  JsonWriter json;
  json.BeginObject();
  WriteContents(messages, json);
  WriteSystemInstruction(messages, json);
  json.Key("generationConfig").BeginObject();
  json.Key("maxOutputTokens").Int(params.max_tokens);
  // Gemini's temperature range is 0–2, like ours: passed through.
  if (params.temperature.has_value()) json.Key("temperature").Double(*params.temperature);
  if (params.top_p.has_value()) json.Key("topP").Double(*params.top_p);
  if (!params.stop.empty()) {
    json.Key("stopSequences").BeginArray();
    for (std::string_view stop : params.stop) json.String(stop);
    json.EndArray();
  }
  json.EndObject();
  json.EndObject();
  request.body = json.Release();
  return request;
}

ProviderErrorClass ClassifyGeminiError(int code, std::string_view status, std::string_view reason) {
  // An invalid key comes back as 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID;
  // API_KEY_EXPIRED and API_KEY_SERVICE_BLOCKED are the same kind of problem.
  if (absl::StartsWith(AsAbsl(reason), "API_KEY_")) return ProviderErrorClass::kAuth;
  switch (code) {
    case 400:
    case 413:
      return ProviderErrorClass::kInvalidRequest;
    case 401:
    case 403:
      return ProviderErrorClass::kAuth;
    case 404:
      return ProviderErrorClass::kNotFound;
    case 408:
    case 409:
    case 499:  // CANCELLED
    case 500:
    case 502:
    case 504:
      return ProviderErrorClass::kServer;
    case 429:
      return ProviderErrorClass::kRateLimited;
    case 503:
      return ProviderErrorClass::kOverloaded;
    default:
      break;
  }
  if (status == "INVALID_ARGUMENT" || status == "FAILED_PRECONDITION" || status == "OUT_OF_RANGE") {
    return ProviderErrorClass::kInvalidRequest;
  }
  if (status == "UNAUTHENTICATED" || status == "PERMISSION_DENIED") {
    return ProviderErrorClass::kAuth;
  }
  if (status == "NOT_FOUND") return ProviderErrorClass::kNotFound;
  if (status == "RESOURCE_EXHAUSTED") return ProviderErrorClass::kRateLimited;
  if (status == "UNAVAILABLE") return ProviderErrorClass::kOverloaded;
  if (status == "INTERNAL" || status == "DEADLINE_EXCEEDED" || status == "UNKNOWN" ||
      status == "ABORTED" || status == "CANCELLED") {
    return ProviderErrorClass::kServer;
  }
  if (code >= 400 && code < 500) return ProviderErrorClass::kInvalidRequest;
  if (code >= 500 && code < 600) return ProviderErrorClass::kServer;
  return ProviderErrorClass::kUnknown;
}

v1::FinishReason GeminiFinishReason(std::string_view reason) {
  if (reason == "STOP") return v1::FINISH_REASON_STOP;
  if (reason == "MAX_TOKENS") return v1::FINISH_REASON_LENGTH;
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY" ||
      reason == "IMAGE_PROHIBITED_CONTENT" || reason == "IMAGE_RECITATION" ||
      reason == "MODEL_ARMOR") {
    return v1::FINISH_REASON_CONTENT_FILTER;
  }
  if (reason.empty()) return v1::FINISH_REASON_UNSPECIFIED;
  // LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, FINISH_REASON_UNSPECIFIED...
  return v1::FINISH_REASON_OTHER;
}

int64_t GeminiDurationMs(std::string_view duration) {
  if (duration.size() < 2 || duration.back() != 's') return 0;
  double seconds = 0;
  if (!absl::SimpleAtod(AsAbsl(duration.substr(0, duration.size() - 1)), &seconds) ||
      !std::isfinite(seconds) || seconds <= 0) {
    return 0;
  }
  // A day is far beyond any retry a caller would wait for; cap to keep the arithmetic sane.
  if (seconds > 86400) seconds = 86400;
  return static_cast<int64_t>(std::ceil(seconds * 1000));
}

std::unique_ptr<ProviderAdapter> NewGeminiAdapter(const config::v1::Provider& provider,
                                                  std::string api_key) {
  return std::make_unique<GeminiAdapter>(provider, std::move(api_key));
}

}  // namespace turnpike
