// Error bodies of the OpenAI dialects (docs/providers.md §1.5, §4.3, §5): the same situations
// rendered in OpenAI's, Azure's, vLLM's, llama.cpp's and Ollama's field layouts.
#include "tools/fake_provider/wire_openai_errors.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {
namespace {

struct ErrorText {
  std::string message;
  std::string type;
  std::string code;  // empty renders as null
};

// OpenAI's own texts (docs/providers.md §1.5), also the basis for Azure and the local servers.
ErrorText OpenAIInjectedText(const ErrorSpec& spec) {
  const std::string model = spec.model.empty() ? "gpt-4o" : spec.model;
  if (spec.type_override == "insufficient_quota") {
    return {
        "You exceeded your current quota, please check your plan and billing details. For "
        "more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota", "insufficient_quota"};
  }
  switch (spec.status) {
    case 400:
      return {
          "This model's maximum context length is 128000 tokens. However, your messages "
          "resulted in 130000 tokens. Please reduce the length of the messages.",
          "invalid_request_error", "context_length_exceeded"};
    case 401:
      return {
          "Incorrect API key provided. You can find your API key at "
          "https://platform.openai.com/account/api-keys.",
          "invalid_request_error", "invalid_api_key"};
    case 403:
      return {"Country, region, or territory not supported", "request_forbidden",
              "unsupported_country_region_territory"};
    case 404:
      return {
          absl::StrCat("The model `", model, "` does not exist or you do not have access to it."),
          "invalid_request_error", "model_not_found"};
    case 429:
      return {
          absl::StrCat("Rate limit reached for ", model,
                       " in organization org-fake on requests per min (RPM): Limit 60, Used 60, "
                       "Requested 1. Please try again in 1s. Visit "
                       "https://platform.openai.com/account/rate-limits to learn more."),
          "requests", "rate_limit_exceeded"};
    case 500:
      return {"The server had an error while processing your request. Sorry about that!",
              "server_error", ""};
    case 503:
      return {"The engine is currently overloaded, please try again later.", "server_error", ""};
    default:
      return {
          absl::StrCat(Absl(ReasonPhrase(spec.status)), " (injected by turnpike-fake-provider)"),
          spec.status >= 500 ? "server_error" : "invalid_request_error", ""};
  }
}

std::string_view VllmType(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "UnauthorizedError";
    case 403:
      return "ForbiddenError";
    case 404:
      return "NotFoundError";
    case 429:
      return "TooManyRequestsError";
    case 500:
      return "InternalServerError";
    case 501:
      return "NotImplementedError";
    case 502:
      return "BadGatewayError";
    case 503:
      return "ServiceUnavailableError";
    case 504:
      return "GatewayTimeoutError";
    default:
      return status >= 500 ? "InternalServerError" : "BadRequestError";
  }
}

std::string_view LlamaType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 501:
      return "not_supported_error";
    case 429:
    case 503:
      return "unavailable_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string_view OllamaType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 404:
      return "not_found_error";
    default:
      return "api_error";
  }
}

std::string_view AzureCode(int status) {
  switch (status) {
    case 400:
      return "BadRequest";
    case 404:
      return "DeploymentNotFound";
    case 500:
      return "InternalServerError";
    case 503:
      return "ServiceUnavailable";
    default:
      return {};
  }
}

std::string OpenAIInjectedMessage(const ErrorSpec& spec) {
  return spec.message.empty() ? OpenAIInjectedText(spec).message : spec.message;
}

}  // namespace

std::string OpenAIFamilyErrorBody(Provider d, const ErrorSpec& spec) {
  ErrorText t = OpenAIInjectedText(spec);
  std::string param = spec.param;
  switch (spec.kind) {
    case ErrorKind::kAuthMissing:
      t = {
          "You didn't provide an API key. You need to provide your API key in an Authorization "
          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
          "field (with blank username) if you're accessing the API from your browser and are "
          "prompted for a username and password. You can obtain an API key from "
          "https://platform.openai.com/account/api-keys.",
          "invalid_request_error", "invalid_api_key"};
      if (d == Provider::kAzure) {
        t = {
            "Access denied due to missing subscription key. Make sure to include subscription "
            "key when making requests to an API.",
            "", "401"};
      }
      break;
    case ErrorKind::kAuthInvalid:
      t = {absl::StrCat(
               "Incorrect API key provided: ", MaskKey(spec.presented_key),
               ". You can find your API key at https://platform.openai.com/account/api-keys."),
           "invalid_request_error", "invalid_api_key"};
      if (d == Provider::kAzure) {
        t = {
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
            "", "401"};
      }
      break;
    case ErrorKind::kStreamOptionsWithoutStream:
      if (d == Provider::kVllm) {
        t = {"Stream options can only be defined when `stream=True`.", "BadRequestError", ""};
        param.clear();
      } else {
        t = {"The 'stream_options' parameter is only allowed when 'stream' is enabled.",
             "invalid_request_error", ""};
        param = "stream_options";
      }
      break;
    case ErrorKind::kInvalidRequest:
    case ErrorKind::kNotFound:
      t = {spec.message, "invalid_request_error", ""};
      if (d == Provider::kAzure) t.code = spec.status == 404 ? "404" : "BadRequest";
      break;
    case ErrorKind::kInjected:
      t.message = OpenAIInjectedMessage(spec);
      if (d == Provider::kAzure) {
        const std::string_view code = AzureCode(spec.status);
        t.code = code.empty() ? std::to_string(spec.status) : std::string(code);
        if (spec.status == 401) {
          t.message =
              "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
              "provide a valid key for an active subscription and use a correct regional API "
              "endpoint for your resource.";
        } else if (spec.status == 429) {
          t.message =
              "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
              "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
              "Please retry after 1 second. Please go here: https://aka.ms/oai/quotaincrease if "
              "you would like to further increase the default rate limit.";
        } else if (spec.status == 404) {
          t.message =
              "The API deployment for this resource does not exist. If you created the deployment "
              "within the last 5 minutes, please wait a moment and try again.";
        }
      }
      break;
  }
  if (!spec.type_override.empty()) {
    t.type = spec.type_override;
    t.code = spec.type_override;
  }

  std::string out;
  switch (d) {
    case Provider::kAzure:
      // Azure: string `code`, no `type`/`param` (§4.3).
      out = "{\"error\":{\"code\":";
      AppendJsonString(&out, t.code.empty() ? std::to_string(spec.status) : t.code);
      out.append(",\"message\":");
      AppendJsonString(&out, t.message);
      out.append("}}");
      return out;
    case Provider::kLlamaCpp:
      absl::StrAppend(&out, "{\"error\":{\"code\":", spec.status, ",\"message\":");
      AppendJsonString(&out, t.message);
      out.append(",\"type\":");
      AppendJsonString(&out, spec.type_override.empty() ? LlamaType(spec.status) : t.type);
      out.append("}}");
      return out;
    case Provider::kVllm:
      out = "{\"error\":{\"message\":";
      AppendJsonString(&out, t.message);
      out.append(",\"type\":");
      AppendJsonString(&out, spec.type_override.empty() ? VllmType(spec.status) : t.type);
      absl::StrAppend(&out, ",\"param\":null,\"code\":", spec.status, "}}");
      return out;
    case Provider::kOllama:
      out = "{\"error\":{\"message\":";
      AppendJsonString(&out, t.message);
      out.append(",\"type\":");
      AppendJsonString(&out, spec.type_override.empty() ? OllamaType(spec.status) : t.type);
      out.append(",\"param\":null,\"code\":null}}");
      return out;
    default:
      out = "{\"error\":{\"message\":";
      AppendJsonString(&out, t.message);
      out.append(",\"type\":");
      AppendJsonString(&out, t.type);
      out.append(",\"param\":");
      if (param.empty()) {
        out.append("null");
      } else {
        AppendJsonString(&out, param);
      }
      out.append(",\"code\":");
      if (t.code.empty()) {
        out.append("null");
      } else {
        AppendJsonString(&out, t.code);
      }
      out.append("}}");
      return out;
  }
}

}  // namespace turnpike::fake_provider
