#include "server/providers/provider_adapter.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/providers/adapters.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {

absl::StatusOr<HttpRequest> ProviderAdapter::BuildEmbedRequest(const EmbedParams&) const {
  return absl::FailedPreconditionError("this provider kind does not serve embeddings");
}

absl::StatusOr<EmbedResult> ProviderAdapter::ParseEmbedResponse(std::string_view) const {
  return absl::FailedPreconditionError("this provider kind does not serve embeddings");
}

void NormalizeTokenParts(ChatFinish& finish) {
  finish.input_tokens = std::max<int64_t>(finish.input_tokens, 0);
  finish.output_tokens = std::max<int64_t>(finish.output_tokens, 0);
  finish.cached_input_tokens =
      std::clamp<int64_t>(finish.cached_input_tokens, 0, finish.input_tokens);
  finish.cache_write_input_tokens = std::clamp<int64_t>(
      finish.cache_write_input_tokens, 0, finish.input_tokens - finish.cached_input_tokens);
  finish.reasoning_output_tokens =
      std::clamp<int64_t>(finish.reasoning_output_tokens, 0, finish.output_tokens);
}

absl::StatusOr<std::unique_ptr<ProviderAdapter>> MakeProviderAdapter(
    const config::v1::Provider& provider, std::string api_key) {
  switch (provider.kind()) {
    case config::v1::PROVIDER_KIND_OPENAI:
    case config::v1::PROVIDER_KIND_AZURE_OPENAI:
    case config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE:
      return NewOpenAiAdapter(provider, std::move(api_key));
    case config::v1::PROVIDER_KIND_ANTHROPIC:
      return NewAnthropicAdapter(provider, std::move(api_key));
    case config::v1::PROVIDER_KIND_GEMINI:
      return NewGeminiAdapter(provider, std::move(api_key));
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("provider \"", provider.name(), "\": unknown kind ", provider.kind()));
  }
}

namespace {

constexpr char kClassPayloadUrl[] = "turnpike.internal/provider_error_class";

absl::StatusCode CodeFor(ProviderErrorClass c) {
  switch (c) {
    case ProviderErrorClass::kInvalidRequest:
      return absl::StatusCode::kInvalidArgument;
    case ProviderErrorClass::kAuth:
    case ProviderErrorClass::kNotFound:
    case ProviderErrorClass::kQuotaExhausted:
      // The gateway's own credential or route is wrong: the caller cannot fix it by retrying.
      return absl::StatusCode::kFailedPrecondition;
    case ProviderErrorClass::kRateLimited:
      return absl::StatusCode::kResourceExhausted;
    case ProviderErrorClass::kOverloaded:
    case ProviderErrorClass::kServer:
    case ProviderErrorClass::kUnknown:
      return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kUnavailable;
}

const char* ClassName(ProviderErrorClass c) {
  switch (c) {
    case ProviderErrorClass::kInvalidRequest:
      return "invalid request";
    case ProviderErrorClass::kAuth:
      return "authentication failed";
    case ProviderErrorClass::kNotFound:
      return "not found";
    case ProviderErrorClass::kRateLimited:
      return "rate limited";
    case ProviderErrorClass::kQuotaExhausted:
      return "quota exhausted";
    case ProviderErrorClass::kOverloaded:
      return "overloaded";
    case ProviderErrorClass::kServer:
      return "server error";
    case ProviderErrorClass::kUnknown:
      return "error";
  }
  return "error";
}

// `s` with every byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF) replaced by U+FFFD. Provider error bodies are
// untrusted bytes; the turnpike.v1.ProviderError detail carries them in proto3 `string` fields,
// which fail to parse (and so lose the whole detail) on invalid UTF-8.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace

absl::Status ProviderErrorStatus(const ProviderError& error) {
  std::string message = absl::StrCat("provider ", ClassName(error.error_class));
  if (error.http_status != 0) {
    absl::StrAppend(&message, " (HTTP ", error.http_status, ")");
  } else {
    absl::StrAppend(&message, " (error event in stream)");
  }
  if (!error.type.empty()) absl::StrAppend(&message, " ", error.type);
  if (!error.message.empty()) absl::StrAppend(&message, ": ", error.message);
  absl::Status status(CodeFor(error.error_class), message);
  v1::ProviderError detail;
  detail.set_http_status(error.http_status);
  detail.set_error_type(ValidUtf8(error.type));
  detail.set_error_code(ValidUtf8(error.code));
  detail.set_message(ValidUtf8(error.message));
  detail.set_retry_after_ms(error.retry_after_ms);
  status.SetPayload(kProviderErrorPayloadUrl, absl::Cord(detail.SerializeAsString()));
  // The class rides along in its own payload so the router can decide on retries.
  status.SetPayload(kClassPayloadUrl,
                    absl::Cord(std::to_string(static_cast<int>(error.error_class))));
  return status;
}

std::optional<ProviderError> ProviderErrorFromStatus(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kProviderErrorPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  v1::ProviderError detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  ProviderError error;
  absl::optional<absl::Cord> cls = status.GetPayload(kClassPayloadUrl);
  error.error_class = cls.has_value()
                          ? static_cast<ProviderErrorClass>(std::atoi(std::string(*cls).c_str()))
                          : ProviderErrorClass::kUnknown;
  error.http_status = detail.http_status();
  error.type = detail.error_type();
  error.code = detail.error_code();
  error.message = detail.message();
  error.retry_after_ms = detail.retry_after_ms();
  return error;
}

bool IsRetryable(ProviderErrorClass error_class) {
  switch (error_class) {
    case ProviderErrorClass::kRateLimited:
    case ProviderErrorClass::kOverloaded:
    case ProviderErrorClass::kServer:
    case ProviderErrorClass::kUnknown:
      return true;
    default:
      return false;
  }
}

void ToolCallAssembler::Add(const ToolCallFragment& fragment) {
  size_t i = 0;
  while (i < indexes_.size() && indexes_[i] != fragment.index) ++i;
  if (i == indexes_.size()) {
    indexes_.push_back(fragment.index);
    calls_.emplace_back();
  }
  v1::ToolCall& call = calls_[i];
  if (!fragment.id.empty()) call.set_id(std::string(fragment.id));
  if (!fragment.name.empty()) call.set_name(std::string(fragment.name));
  call.mutable_arguments_json()->append(fragment.arguments);
}

bool ProviderFeatures::Supports(v1::RequestFeature feature) const {
  switch (feature) {
    case v1::REQUEST_FEATURE_TOOLS:
    case v1::REQUEST_FEATURE_TOOL_RESULTS:
      return tools;
    case v1::REQUEST_FEATURE_IMAGES:
      return images;
    case v1::REQUEST_FEATURE_JSON_OBJECT:
      return json_object;
    case v1::REQUEST_FEATURE_JSON_SCHEMA:
      return json_schema;
    default:
      return true;
  }
}

ProviderFeatures FeaturesOf(const config::v1::Provider& provider) {
  switch (provider.kind()) {
    case config::v1::PROVIDER_KIND_OPENAI:
    case config::v1::PROVIDER_KIND_AZURE_OPENAI:
    case config::v1::PROVIDER_KIND_GEMINI:
      return {true, true, true, true};
    case config::v1::PROVIDER_KIND_ANTHROPIC:
      // The Messages API has tools and images; the adapter maps no response format.
      return {true, true, false, false};
    case config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE:
      switch (provider.compat_flavor()) {
        case config::v1::COMPAT_FLAVOR_VLLM:
        case config::v1::COMPAT_FLAVOR_OLLAMA:
          return {true, true, true, true};
        case config::v1::COMPAT_FLAVOR_LLAMA_CPP:
          return {true, false, true, true};
        default:
          // An unknown server may ignore what it does not know: never count on it.
          return {};
      }
    default:
      return {};
  }
}

std::string_view FeatureName(v1::RequestFeature feature) {
  switch (feature) {
    case v1::REQUEST_FEATURE_TOOLS:
      return "tools";
    case v1::REQUEST_FEATURE_TOOL_RESULTS:
      return "tool results";
    case v1::REQUEST_FEATURE_IMAGES:
      return "images";
    case v1::REQUEST_FEATURE_JSON_OBJECT:
      return "JSON object output";
    case v1::REQUEST_FEATURE_JSON_SCHEMA:
      return "JSON Schema output";
    default:
      return "an unknown feature";
  }
}

}  // namespace turnpike
