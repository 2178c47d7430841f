// OpenAI-format requests (docs/providers.md §1.1–1.2, §1.7, §4, §5). Unary responses are parsed in
// openai_response.cc, streams decoded in openai_stream_decoder.cc, errors classified in
// openai_errors.cc.
//
// Token-limit field, per provider (OpenAiDialect::use_max_completion_tokens):
//   - OpenAI: `max_completion_tokens`. `max_tokens` is deprecated and a 400 on reasoning models.
//   - Azure: `max_completion_tokens` from api-version 2024-09-01(-preview) on, and for undated
//     versions ("preview", "latest"); `max_tokens` for older dated versions, which reject
//     arguments they do not know ("Unrecognized request argument supplied"). ⚠ The cut-over
//     date is from Azure's changelog, not re-verified against every api-version.
//   - OpenAI-compatible (vLLM, llama.cpp, Ollama, generic): `max_tokens`. Ollama ignores
//     `max_completion_tokens` silently (the limit would vanish); vLLM and llama.cpp accept both;
//     older or lesser-known servers (LM Studio, TGI, LocalAI, vLLM < 0.6) know only
//     `max_tokens`. A silently ignored limit is worse than a deprecated field, so `max_tokens`.
// `stream_options:{"include_usage":true}` goes on streams only (OpenAI and vLLM answer 400 when
// it comes without `stream:true`), and for Azure only on api-versions from 2024-09-01 (older
// ones reject it). `user` is forwarded to OpenAI and Azure only (Ollama does not support it,
// vLLM ignores it).
#include "server/providers/openai_adapter.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "server/providers/adapter_util.h"
#include "server/providers/adapters.h"
#include "server/providers/openai_internal.h"

namespace turnpike {
namespace {

using adapter_util::ImageUrl;
using adapter_util::SchemaName;
using adapter_util::ToolParameters;

// First Azure api-version that knows max_completion_tokens and stream_options.
constexpr std::string_view kAzureModernApiVersion = "2024-09-01";

std::string TrimTrailingSlashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

OpenAiDialect DialectFor(const config::v1::Provider& provider) {
  OpenAiDialect d;
  switch (provider.kind()) {
    case config::v1::PROVIDER_KIND_AZURE_OPENAI: {
      d.azure = true;
      const std::string& version = provider.api_version();
      // Dated versions compare as strings; an undated one ("preview", "latest") is current.
      const bool dated = !version.empty() && absl::ascii_isdigit(version[0]);
      const bool modern = !dated || version >= kAzureModernApiVersion;
      d.use_max_completion_tokens = modern;
      d.send_stream_options = modern;
      d.send_user = true;
      break;
    }
    case config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE:
      d.use_max_completion_tokens = false;
      d.send_stream_options = true;
      d.send_user = false;
      d.done_requires_finish = provider.compat_flavor() == config::v1::COMPAT_FLAVOR_LLAMA_CPP;
      d.send_tool_choice = provider.compat_flavor() != config::v1::COMPAT_FLAVOR_OLLAMA;
      break;
    default:  // PROVIDER_KIND_OPENAI
      break;
  }
  return d;
}

bool SafeHeaderText(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string_view HeaderName(std::string_view line) { return line.substr(0, line.find(':')); }

std::vector<std::string> FixedHeaders(const config::v1::Provider& provider,
                                      const std::string& api_key, const OpenAiDialect& dialect) {
  std::vector<std::string> headers = {"Content-Type: application/json"};
  // No key, no auth header: local servers need none, and Azure with Entra ID gets its
  // Authorization header from the provider's extra headers.
  if (!api_key.empty() && SafeHeaderText(api_key)) {
    headers.push_back(dialect.azure ? absl::StrCat("api-key: ", api_key)
                                    : absl::StrCat("Authorization: Bearer ", api_key));
  }
  // Sorted so requests are byte-for-byte reproducible (the proto map has no order).
  std::vector<std::pair<std::string, std::string>> extra(provider.headers().begin(),
                                                         provider.headers().end());
  std::sort(extra.begin(), extra.end());
  for (const auto& [name, value] : extra) {
    if (name.empty() || !SafeHeaderText(name) || !SafeHeaderText(value) ||
        name.find(':') != std::string::npos) {
      continue;
    }
    // An extra header replaces one of ours with the same name. (A named copy of the binding:
    // clang 14 cannot capture structured bindings in a lambda.)
    const std::string& header_name = name;
    std::erase_if(headers, [&header_name](const std::string& line) {
      return absl::EqualsIgnoreCase(openai_internal::ToAbsl(HeaderName(line)), header_name);
    });
    headers.push_back(absl::StrCat(name, ": ", value));
  }
  return headers;
}

// Percent-encodes everything but RFC 3986 unreserved characters (for a path segment or query
// value taken from config).
std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_SYSTEM:
      return "system";
    case v1::ROLE_ASSISTANT:
      return "assistant";
    case v1::ROLE_TOOL:
      return "tool";
    default:  // ROLE_USER; the service rejects ROLE_UNSPECIFIED before routing
      return "user";
  }
}

// A message's content: its text, or its parts as OpenAI content parts (docs/providers.md §1.2);
// inline image bytes travel as a data: URL. An assistant message that only calls tools has null
// content.
void WriteContent(JsonWriter& w, const v1::Message& m) {
  w.Key("content");
  if (m.parts_size() == 0) {
    if (m.content().empty() && m.tool_calls_size() > 0) {
      w.Null();
    } else {
      w.String(m.content());
    }
    return;
  }
  w.BeginArray();
  for (const v1::ContentPart& part : m.parts()) {
    w.BeginObject();
    if (part.has_image()) {
      w.Key("type").String("image_url").Key("image_url").BeginObject().Key("url");
      w.String(ImageUrl(part.image()));
      w.EndObject();
    } else {
      w.Key("type").String("text").Key("text").String(part.text());
    }
    w.EndObject();
  }
  w.EndArray();
}

void WriteMessage(JsonWriter& w, const v1::Message& m) {
  w.BeginObject().Key("role").String(RoleName(m.role()));
  WriteContent(w, m);
  if (m.role() == v1::ROLE_TOOL) w.Key("tool_call_id").String(m.tool_call_id());
  if (m.tool_calls_size() > 0) {
    w.Key("tool_calls").BeginArray();
    for (const v1::ToolCall& call : m.tool_calls()) {
      w.BeginObject().Key("id").String(call.id()).Key("type").String("function");
      w.Key("function").BeginObject().Key("name").String(call.name());
      w.Key("arguments").String(call.arguments_json()).EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

// tools, tool_choice and response_format (docs/providers.md §1.2). Schemas were validated as JSON
// objects on the way in, so they are inserted as they are.
void WriteToolsAndFormat(JsonWriter& w, const ChatParams& params, const OpenAiDialect& dialect) {
  if (params.tools != nullptr && !params.tools->empty()) {
    w.Key("tools").BeginArray();
    for (const v1::Tool& tool : *params.tools) {
      w.BeginObject().Key("type").String("function").Key("function").BeginObject();
      w.Key("name").String(tool.name());
      if (!tool.description().empty()) w.Key("description").String(tool.description());
      w.Key("parameters").Raw(ToolParameters(tool));
      w.EndObject().EndObject();
    }
    w.EndArray();
    const v1::ToolChoice& choice = params.tool_choice;
    if (dialect.send_tool_choice) {
      switch (choice.mode()) {
        case v1::TOOL_CHOICE_MODE_NONE:
          w.Key("tool_choice").String("none");
          break;
        case v1::TOOL_CHOICE_MODE_REQUIRED:
          w.Key("tool_choice").String("required");
          break;
        case v1::TOOL_CHOICE_MODE_TOOL:
          w.Key("tool_choice").BeginObject().Key("type").String("function");
          w.Key("function").BeginObject().Key("name").String(choice.tool_name()).EndObject();
          w.EndObject();
          break;
        default:  // auto is OpenAI's default with tools
          break;
      }
    }
  }
  const v1::ResponseFormat& format = params.response_format;
  switch (format.type()) {
    case v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT:
      w.Key("response_format").BeginObject().Key("type").String("json_object").EndObject();
      break;
    case v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
      w.Key("response_format").BeginObject().Key("type").String("json_schema");
      w.Key("json_schema").BeginObject().Key("name").String(SchemaName(format));
      w.Key("schema").Raw(format.json_schema());
      if (format.strict()) w.Key("strict").Bool(true);
      w.EndObject().EndObject();
      break;
    default:  // text: the default, not sent
      break;
  }
}

}  // namespace

OpenAiAdapter::OpenAiAdapter(const config::v1::Provider& provider, std::string api_key)
    : base_url_(TrimTrailingSlashes(provider.base_url())),
      api_version_(provider.api_version()),
      api_key_(std::move(api_key)),
      dialect_(DialectFor(provider)),
      fixed_headers_(FixedHeaders(provider, api_key_, dialect_)) {}

std::string OpenAiAdapter::Url(std::string_view model, std::string_view operation) const {
  const absl::string_view op = openai_internal::ToAbsl(operation);
  if (!dialect_.azure) return absl::StrCat(base_url_, "/", op);
  return absl::StrCat(base_url_, "/openai/deployments/", PercentEncode(model), "/", op,
                      "?api-version=", PercentEncode(api_version_));
}

std::vector<std::string> OpenAiAdapter::Headers(bool stream) const {
  std::vector<std::string> headers = fixed_headers_;
  headers.push_back(stream ? "Accept: text/event-stream" : "Accept: application/json");
  return headers;
}

HttpRequest OpenAiAdapter::BuildChatRequest(const ChatParams& params) const {
  JsonWriter w;
  w.BeginObject();
  // Azure routes by the deployment in the URL and ignores `model` on classic routes; it is
  // sent anyway, as the official SDK does.
  w.Key("model").String(params.model);
  w.Key("messages").BeginArray();
  if (params.messages != nullptr) {
    for (const v1::Message& m : *params.messages) WriteMessage(w, m);
  }
  w.EndArray();
  w.Key("stream").Bool(params.stream);
  if (params.stream && dialect_.send_stream_options) {
    w.Key("stream_options").BeginObject().Key("include_usage").Bool(true).EndObject();
  }
  w.Key(dialect_.use_max_completion_tokens ? "max_completion_tokens" : "max_tokens")
      .Int(params.max_tokens);
  if (params.temperature.has_value()) w.Key("temperature").Double(*params.temperature);
  if (params.top_p.has_value()) w.Key("top_p").Double(*params.top_p);
  if (!params.stop.empty()) {
    w.Key("stop").BeginArray();
    for (std::string_view s : params.stop) w.String(s);
    w.EndArray();
  }
  if (dialect_.send_user && !params.user.empty()) w.Key("user").String(params.user);
  WriteToolsAndFormat(w, params, dialect_);
  w.EndObject();
  return HttpRequest{Url(params.model, "chat/completions"), Headers(params.stream), w.Release()};
}

std::unique_ptr<StreamDecoder> OpenAiAdapter::NewStreamDecoder() const {
  return openai_internal::NewStreamDecoder(dialect_.done_requires_finish);
}

absl::StatusOr<HttpRequest> OpenAiAdapter::BuildEmbedRequest(const EmbedParams& params) const {
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String(params.model);
  w.Key("input").BeginArray();
  for (std::string_view input : params.inputs) w.String(input);
  w.EndArray();
  // Explicit, because the response parser wants numbers and "float" is only a default; the
  // base64 answer the openai-python SDK asks for is still decoded if a server sends it anyway.
  w.Key("encoding_format").String("float");
  if (params.dimensions.has_value()) w.Key("dimensions").Int(*params.dimensions);
  if (dialect_.send_user && !params.user.empty()) w.Key("user").String(params.user);
  w.EndObject();
  return HttpRequest{Url(params.model, "embeddings"), Headers(false), w.Release()};
}

std::unique_ptr<ProviderAdapter> NewOpenAiAdapter(const config::v1::Provider& provider,
                                                  std::string api_key) {
  return std::make_unique<OpenAiAdapter>(provider, std::move(api_key));
}

}  // namespace turnpike
