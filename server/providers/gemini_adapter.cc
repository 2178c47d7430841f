// Gemini request building, error classification and the factory. Response parsing is in
// gemini_response.cc.
#include "server/providers/gemini_adapter.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "server/providers/adapter_util.h"
#include "server/providers/adapters.h"
#include "simdjson.h"

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
    case v1::ROLE_TOOL:  // a functionResponse comes from the user's side
      return "user";
    case v1::ROLE_ASSISTANT:
      return "model";
    default:
      return nullptr;
  }
}

bool IsJsonObjectText(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  return parser.parse(text.data(), text.size()).get(element) == simdjson::SUCCESS &&
         element.is_object();
}

// An image part (docs/providers.md §3.2): bytes (or a data: URL) as inlineData, another URL as
// fileData.
void WriteImagePart(const v1::ImagePart& image, JsonWriter& json) {
  std::string_view url = image.url();
  if (!image.has_url()) {
    json.BeginObject().Key("inlineData").BeginObject();
    json.Key("mimeType").String(image.media_type());
    json.Key("data").String(absl::Base64Escape(image.data())).EndObject().EndObject();
    return;
  }
  const size_t semi = url.find(';');
  const size_t comma = url.find(',');
  if (absl::StartsWith(AsAbsl(url), "data:") && semi != std::string_view::npos &&
      comma != std::string_view::npos && semi < comma) {
    json.BeginObject().Key("inlineData").BeginObject();
    json.Key("mimeType").String(url.substr(5, semi - 5));
    json.Key("data").String(url.substr(comma + 1)).EndObject().EndObject();
    return;
  }
  json.BeginObject().Key("fileData").BeginObject();
  if (!image.media_type().empty()) json.Key("mimeType").String(image.media_type());
  json.Key("fileUri").String(url).EndObject().EndObject();
}

// The name of the tool call `id` answers: Gemini's functionResponse names the function, not the
// call. The latest call with that id before message `before` (the ids the gateway makes for
// Gemini's calls, call_0, call_1..., repeat from one reply to the next).
std::string_view CalledName(const google::protobuf::RepeatedPtrField<v1::Message>& messages,
                            int before, std::string_view id) {
  for (int i = before - 1; i >= 0; --i) {
    for (const v1::ToolCall& call : messages.Get(i).tool_calls()) {
      if (call.id() == id) return call.name();
    }
  }
  return "";
}

// contents[] (docs/providers.md §3.2): consecutive messages of one Gemini role share a Content;
// parts are text, images, functionCall (an assistant's tool calls, args as written) and
// functionResponse (a tool result; a result that is not a JSON object is wrapped as
// {"result": text}).
void WriteContents(const google::protobuf::RepeatedPtrField<v1::Message>& messages,
                   JsonWriter& json) {
  json.Key("contents").BeginArray();
  const char* open_role = nullptr;  // the Gemini role of the Content being written
  for (int index = 0; index < messages.size(); ++index) {
    const v1::Message& message = messages.Get(index);
    const char* role_name = RoleName(message.role());
    if (role_name == nullptr) continue;
    const bool tool_result = message.role() == v1::ROLE_TOOL;
    if (!tool_result && message.content().empty() && message.parts_size() == 0 &&
        message.tool_calls_size() == 0) {
      continue;
    }
    if (open_role == nullptr || std::string_view(open_role) != role_name) {
      if (open_role != nullptr) json.EndArray().EndObject();
      json.BeginObject().Key("role").String(role_name).Key("parts").BeginArray();
      open_role = role_name;
    }
    if (tool_result) {
      json.BeginObject().Key("functionResponse").BeginObject();
      json.Key("name").String(CalledName(messages, index, message.tool_call_id()));
      json.Key("response");
      std::string text = message.content();
      for (const v1::ContentPart& part : message.parts()) text += part.text();
      if (IsJsonObjectText(text)) {
        json.Raw(text);
      } else {
        json.BeginObject().Key("result").String(text).EndObject();
      }
      json.EndObject().EndObject();
      continue;
    }
    if (!message.content().empty()) {
      json.BeginObject().Key("text").String(message.content()).EndObject();
    }
    for (const v1::ContentPart& part : message.parts()) {
      if (part.has_image()) {
        WriteImagePart(part.image(), json);
      } else {
        json.BeginObject().Key("text").String(part.text()).EndObject();
      }
    }
    for (const v1::ToolCall& call : message.tool_calls()) {
      json.BeginObject().Key("functionCall").BeginObject().Key("name").String(call.name());
      json.Key("args").Raw(call.arguments_json().empty() ? std::string_view("{}")
                                                         : call.arguments_json());
      json.EndObject().EndObject();
    }
  }
  if (open_role != nullptr) json.EndArray().EndObject();
  json.EndArray();
}

// tools[].functionDeclarations and toolConfig.functionCallingConfig (AUTO, NONE, ANY, ANY with
// allowedFunctionNames for a named tool).
void WriteTools(const ChatParams& params, JsonWriter& json) {
  if (params.tools == nullptr || params.tools->empty()) return;
  json.Key("tools").BeginArray().BeginObject().Key("functionDeclarations").BeginArray();
  for (const v1::Tool& tool : *params.tools) {
    json.BeginObject().Key("name").String(tool.name());
    if (!tool.description().empty()) json.Key("description").String(tool.description());
    // parametersJsonSchema takes JSON Schema as written (additionalProperties, $ref, ...);
    // `parameters` is an OpenAPI subset that refuses those keys (docs/providers.md, 3.6).
    json.Key("parametersJsonSchema").Raw(adapter_util::ToolParameters(tool)).EndObject();
  }
  json.EndArray().EndObject().EndArray();
  const v1::ToolChoice& choice = params.tool_choice;
  if (choice.mode() == v1::TOOL_CHOICE_MODE_UNSPECIFIED ||
      choice.mode() == v1::TOOL_CHOICE_MODE_AUTO) {
    return;
  }
  json.Key("toolConfig").BeginObject().Key("functionCallingConfig").BeginObject();
  json.Key("mode").String(choice.mode() == v1::TOOL_CHOICE_MODE_NONE ? "NONE" : "ANY");
  if (choice.mode() == v1::TOOL_CHOICE_MODE_TOOL) {
    json.Key("allowedFunctionNames").BeginArray().String(choice.tool_name()).EndArray();
  }
  json.EndObject().EndObject();
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
  WriteTools(params, json);
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
  // response format: JSON as the MIME type, and the schema as responseJsonSchema, which takes
  // JSON Schema (responseSchema, an OpenAPI subset, refuses additionalProperties: a strict
  // schema, or a classification's, would get a 400).
  const v1::ResponseFormat& format = params.response_format;
  if (format.type() == v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT ||
      format.type() == v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA) {
    json.Key("responseMimeType").String("application/json");
  }
  if (format.type() == v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA) {
    json.Key("responseJsonSchema").Raw(format.json_schema());
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
