#include "server/providers/provider_adapter.h"

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
  detail.set_error_type(error.type);
  detail.set_error_code(error.code);
  detail.set_message(error.message);
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

}  // namespace turnpike
