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
#include "server/providers/adapters.h"
#include "server/providers/openai_internal.h"

namespace turnpike {
namespace {

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
    default:  // ROLE_USER; the service rejects ROLE_UNSPECIFIED before routing
      return "user";
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
    for (const v1::Message& m : *params.messages) {
      w.BeginObject().Key("role").String(RoleName(m.role())).Key("content").String(m.content());
      w.EndObject();
    }
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
