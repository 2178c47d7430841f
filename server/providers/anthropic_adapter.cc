// Anthropic request building, error classification and the factory. Response parsing is in
// anthropic_response.cc.
#include "server/providers/anthropic_adapter.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
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
  // Local Anthropic-compatible servers may run without a key; send none rather than an empty one.
  if (!api_key.empty()) headers.push_back(absl::StrCat("x-api-key: ", api_key));
  headers.push_back(absl::StrCat("anthropic-version: ", kAnthropicVersion));
  headers.push_back("content-type: application/json");
  headers.push_back(stream ? "accept: text/event-stream" : "accept: application/json");
  adapter_util::AppendProviderHeaders(provider, headers);
  return headers;
}

// Messages sent to Anthropic, with the reasons the spend-limit and credit errors come as
// 400 invalid_request_error (observed: "Your credit balance is too low to access the Anthropic
// API...", "You have reached your specified API usage limits. You will regain access on ...").
bool NamesSpendLimit(std::string_view message) {
  static constexpr std::array<std::string_view, 5> kMarkers = {
      "credit balance", "api usage limit", "spend limit", "spending limit", "billing"};
  const std::string lower = absl::AsciiStrToLower(AsAbsl(message));
  for (std::string_view marker : kMarkers) {
    if (absl::StrContains(lower, AsAbsl(marker))) return true;
  }
  return false;
}

ProviderErrorClass ClassFromStatus(int http_status) {
  switch (http_status) {
    case 401:
    case 403:
      return ProviderErrorClass::kAuth;
    case 402:
      return ProviderErrorClass::kQuotaExhausted;
    case 404:
      return ProviderErrorClass::kNotFound;
    case 408:
    case 409:
      return ProviderErrorClass::kServer;
    case 429:
      return ProviderErrorClass::kRateLimited;
    case 503:
    case 529:
      return ProviderErrorClass::kOverloaded;
    default:
      break;
  }
  // Anthropic: invalid_request_error "may also be used for other 4XX status codes not listed".
  if (http_status >= 400 && http_status < 500) return ProviderErrorClass::kInvalidRequest;
  if (http_status >= 500 && http_status < 600) return ProviderErrorClass::kServer;
  return ProviderErrorClass::kUnknown;
}

// An image block (docs/providers.md §2.2): inline bytes as base64 with their media type, or a URL
// (a data: URL is sent as base64, which Anthropic's url source does not take).
void WriteImageBlock(JsonWriter& json, const v1::ImagePart& image) {
  json.BeginObject().Key("type").String("image").Key("source").BeginObject();
  std::string_view url = image.url();
  if (image.has_url() && absl::StartsWith(adapter_util::AsAbsl(url), "data:")) {
    const size_t semi = url.find(';');
    const size_t comma = url.find(',');
    if (semi != std::string_view::npos && comma != std::string_view::npos && semi < comma) {
      json.Key("type").String("base64").Key("media_type").String(url.substr(5, semi - 5));
      json.Key("data").String(url.substr(comma + 1));
    } else {
      json.Key("type").String("url").Key("url").String(url);
    }
  } else if (image.has_url()) {
    json.Key("type").String("url").Key("url").String(url);
  } else {
    json.Key("type").String("base64").Key("media_type").String(image.media_type());
    json.Key("data").String(absl::Base64Escape(image.data()));
  }
  json.EndObject().EndObject();
}

// One message as Anthropic content blocks (docs/providers.md §2.2): text and image parts; an
// assistant's tool calls as tool_use blocks (input is the arguments' JSON object, as written); a
// tool result as a user message's tool_result block. System messages went to `system`.
void WriteAnthropicMessage(JsonWriter& json, const v1::Message& message) {
  const bool tool_result = message.role() == v1::ROLE_TOOL;
  const char* role = message.role() == v1::ROLE_USER || tool_result ? "user"
                     : message.role() == v1::ROLE_ASSISTANT         ? "assistant"
                                                                    : nullptr;
  if (role == nullptr) return;
  const bool plain = message.parts_size() == 0 && message.tool_calls_size() == 0 && !tool_result;
  if (plain && message.content().empty()) return;
  json.BeginObject().Key("role").String(role).Key("content");
  if (plain) {
    json.String(message.content()).EndObject();
    return;
  }
  json.BeginArray();
  if (tool_result) {
    json.BeginObject().Key("type").String("tool_result");
    json.Key("tool_use_id").String(message.tool_call_id()).Key("content");
  }
  if (tool_result && message.parts_size() > 0) json.BeginArray();
  if (!message.content().empty()) {
    if (tool_result) {
      json.String(message.content());
    } else {
      json.BeginObject().Key("type").String("text").Key("text").String(message.content());
      json.EndObject();
    }
  }
  for (const v1::ContentPart& part : message.parts()) {
    if (part.has_image()) {
      WriteImageBlock(json, part.image());
    } else {
      json.BeginObject().Key("type").String("text").Key("text").String(part.text()).EndObject();
    }
  }
  if (tool_result) {
    if (message.parts_size() > 0) json.EndArray();
    if (message.parts_size() == 0 && message.content().empty()) json.String("");
    json.EndObject();
  }
  for (const v1::ToolCall& call : message.tool_calls()) {
    json.BeginObject().Key("type").String("tool_use").Key("id").String(call.id());
    json.Key("name").String(call.name()).Key("input");
    json.Raw(call.arguments_json().empty() ? std::string_view("{}") : call.arguments_json());
    json.EndObject();
  }
  json.EndArray().EndObject();
}

// tools and tool_choice (docs/providers.md §2.2): auto, any (= required), tool (named), none.
void WriteAnthropicTools(JsonWriter& json, const ChatParams& params) {
  if (params.tools == nullptr || params.tools->empty()) return;
  json.Key("tools").BeginArray();
  for (const v1::Tool& tool : *params.tools) {
    json.BeginObject().Key("name").String(tool.name());
    if (!tool.description().empty()) json.Key("description").String(tool.description());
    json.Key("input_schema").Raw(adapter_util::ToolParameters(tool));
    json.EndObject();
  }
  json.EndArray();
  switch (params.tool_choice.mode()) {
    case v1::TOOL_CHOICE_MODE_NONE:
      json.Key("tool_choice").BeginObject().Key("type").String("none").EndObject();
      break;
    case v1::TOOL_CHOICE_MODE_REQUIRED:
      json.Key("tool_choice").BeginObject().Key("type").String("any").EndObject();
      break;
    case v1::TOOL_CHOICE_MODE_TOOL:
      json.Key("tool_choice").BeginObject().Key("type").String("tool");
      json.Key("name").String(params.tool_choice.tool_name()).EndObject();
      break;
    default:  // auto, Anthropic's default with tools
      break;
  }
}

}  // namespace

AnthropicAdapter::AnthropicAdapter(const config::v1::Provider& provider, std::string api_key)
    : api_key_(std::move(api_key)) {
  url_ = adapter_util::TrimBaseUrl(provider.base_url(), kAnthropicDefaultBaseUrl);
  // "https://api.anthropic.com" and "https://api.anthropic.com/v1" both mean the same endpoint.
  url_ += absl::EndsWith(url_, "/v1") ? "/messages" : "/v1/messages";
  stream_headers_ = MakeHeaders(provider, api_key_, /*stream=*/true);
  unary_headers_ = MakeHeaders(provider, api_key_, /*stream=*/false);
}

HttpRequest AnthropicAdapter::BuildChatRequest(const ChatParams& params) const {
  HttpRequest request;
  request.url = url_;
  request.headers = params.stream ? stream_headers_ : unary_headers_;

  std::string system;
  if (params.messages != nullptr) {
    for (const v1::Message& message : *params.messages) {
      if (message.role() != v1::ROLE_SYSTEM || message.content().empty()) continue;
      if (!system.empty()) system += "\n\n";
      system += message.content();
    }
  }

  JsonWriter json;
  json.BeginObject();
  json.Key("model").String(params.model);
  json.Key("max_tokens").Int(params.max_tokens);
  if (!system.empty()) json.Key("system").String(system);
  json.Key("messages").BeginArray();
  if (params.messages != nullptr) {
    for (const v1::Message& message : *params.messages) WriteAnthropicMessage(json, message);
  }
  json.EndArray();
  WriteAnthropicTools(json, params);
  json.Key("stream").Bool(params.stream);
  if (params.temperature.has_value()) {
    // Anthropic's range is 0–1, ours 0–2. Clamp rather than scale: values up to 1 keep their
    // exact meaning, and above 1 Anthropic's most random setting is the closest it has.
    json.Key("temperature").Double(std::clamp(*params.temperature, 0.0, 1.0));
  }
  if (params.top_p.has_value()) json.Key("top_p").Double(*params.top_p);
  if (!params.stop.empty()) {
    json.Key("stop_sequences").BeginArray();
    for (std::string_view stop : params.stop) json.String(stop);
    json.EndArray();
  }
  if (!params.user.empty()) {
    json.Key("metadata").BeginObject().Key("user_id").String(params.user).EndObject();
  }
  json.EndObject();
  request.body = json.Release();
  return request;
}

ProviderErrorClass ClassifyAnthropicError(int http_status, std::string_view type,
                                          std::string_view message) {
  // 529 is Anthropic's own "overloaded" status, whatever the body says.
  if (http_status == 529 || type == "overloaded_error") return ProviderErrorClass::kOverloaded;
  if (type == "billing_error") return ProviderErrorClass::kQuotaExhausted;
  // A spend limit or an empty credit balance is not fixed by the request (not kInvalidRequest)
  // nor by waiting a few seconds (not kRateLimited). Server-side types never carry it.
  const bool server_side = type == "api_error" || type == "timeout_error" || http_status >= 500;
  if (!server_side && NamesSpendLimit(message)) return ProviderErrorClass::kQuotaExhausted;
  if (type == "invalid_request_error" || type == "request_too_large") {
    return ProviderErrorClass::kInvalidRequest;
  }
  if (type == "authentication_error" || type == "permission_error") {
    return ProviderErrorClass::kAuth;
  }
  if (type == "not_found_error") return ProviderErrorClass::kNotFound;
  if (type == "rate_limit_error") return ProviderErrorClass::kRateLimited;
  if (type == "api_error" || type == "timeout_error") return ProviderErrorClass::kServer;
  // Unknown or missing type (non-JSON bodies such as Cloudflare's 413 page): the status decides;
  // an unknown error event inside a 200 stream is unknown.
  return ClassFromStatus(http_status);
}

v1::FinishReason AnthropicFinishReason(std::string_view stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return v1::FINISH_REASON_STOP;
  // The context window ending the reply truncates it just as max_tokens does.
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return v1::FINISH_REASON_LENGTH;
  }
  if (stop_reason == "tool_use") return v1::FINISH_REASON_TOOL_CALLS;
  if (stop_reason == "refusal") return v1::FINISH_REASON_CONTENT_FILTER;
  if (stop_reason.empty()) return v1::FINISH_REASON_UNSPECIFIED;
  return v1::FINISH_REASON_OTHER;  // pause_turn and whatever comes next
}

std::unique_ptr<ProviderAdapter> NewAnthropicAdapter(const config::v1::Provider& provider,
                                                     std::string api_key) {
  return std::make_unique<AnthropicAdapter>(provider, std::move(api_key));
}

}  // namespace turnpike
