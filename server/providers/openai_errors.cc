// Error classification for OpenAI-format providers (docs/providers.md §1.5, §4.3, §5): the bodies
// of non-2xx responses and of error events inside a 200 stream, in OpenAI's, Azure's, vLLM's,
// llama.cpp's and Ollama's shapes, normalized into a ProviderError with secrets masked.
#include <array>
#include <cctype>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "server/providers/openai_adapter.h"
#include "server/providers/openai_internal.h"

namespace turnpike {
namespace openai_internal {
namespace {

constexpr size_t kMaxIdentifierBytes = 128;  // for `type` and `code`
constexpr std::string_view kKeyMask = "***";

bool OneOf(std::string_view s, std::initializer_list<std::string_view> values) {
  for (std::string_view v : values) {
    if (s == v) return true;
  }
  return false;
}

// Whether `type` or `code` is one of `values`.
bool Says(const ErrorFields& f, std::initializer_list<std::string_view> values) {
  return OneOf(f.type, values) || OneOf(f.code, values);
}

// The class of an error event that came with no HTTP status: judged by its type and code
// strings (OpenAI, llama.cpp and Ollama type names, vLLM's exception names).
ProviderErrorClass ClassifyByName(const ErrorFields& f) {
  if (Says(f, {"insufficient_quota"})) return ProviderErrorClass::kQuotaExhausted;
  if (Says(f, {"rate_limit_exceeded", "rate_limit_error", "tokens", "requests"})) {
    return ProviderErrorClass::kRateLimited;
  }
  if (Says(f, {"invalid_request_error", "context_length_exceeded", "content_filter",
               "unsupported_parameter", "invalid_value", "exceed_context_size_error",
               "not_supported_error", "BadRequestError"})) {
    return ProviderErrorClass::kInvalidRequest;
  }
  if (Says(f, {"authentication_error", "invalid_api_key", "permission_error", "permission_denied",
               "Unauthorized"})) {
    return ProviderErrorClass::kAuth;
  }
  if (Says(f, {"not_found_error", "model_not_found", "DeploymentNotFound", "NotFoundError"})) {
    return ProviderErrorClass::kNotFound;
  }
  if (Says(f,
           {"overloaded_error", "unavailable_error", "engine_overloaded", "service_unavailable"})) {
    return ProviderErrorClass::kOverloaded;
  }
  // server_error, api_error, InternalServerError, or nothing recognizable: the upstream failed
  // in the middle of a reply it had accepted.
  return ProviderErrorClass::kServer;
}

bool IsKeyChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

// Where a token that began at `begin` ends: at whitespace, quotes or list punctuation. A token's
// trailing '.' or ',' is sentence punctuation, kept outside the mask.
size_t TokenEnd(std::string_view s, size_t begin) {
  size_t end = begin;
  while (end < s.size() && !absl::ascii_isspace(s[end]) &&
         std::string_view("\"'`,;()<>[]{}").find(s[end]) == std::string_view::npos) {
    ++end;
  }
  while (end > begin && (s[end - 1] == '.' || s[end - 1] == ':')) --end;
  return end;
}

// Reads "<number><unit>" pairs ("1.574s", "20ms", "6m0s") at the start of `s`; 0 if none.
int64_t ParseGoDuration(std::string_view s) {
  double total_ms = 0;
  bool any = false;
  while (!s.empty() && (absl::ascii_isdigit(s[0]) || s[0] == '.')) {
    std::string number_text;
    while (!s.empty() && (absl::ascii_isdigit(s[0]) || s[0] == '.')) {
      number_text.push_back(s[0]);
      s.remove_prefix(1);
    }
    const double number = std::strtod(number_text.c_str(), nullptr);
    if (s.starts_with("ms")) {
      total_ms += number;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      total_ms += number * 1000;
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      total_ms += number * 60'000;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      total_ms += number * 3'600'000;
      s.remove_prefix(1);
    } else {
      break;
    }
    any = true;
  }
  return any ? static_cast<int64_t>(total_ms + 0.5) : 0;
}

}  // namespace

ProviderErrorClass ClassifyError(int http_status, const ErrorFields& fields) {
  int status = http_status;
  // Inside a stream vLLM and llama.cpp still put the HTTP status they meant in `code`.
  if (status == 0 && fields.numeric_code >= 400 && fields.numeric_code <= 599) {
    status = fields.numeric_code;
  }
  switch (status) {
    case 0:
      return ClassifyByName(fields);
    case 400:
    case 413:
    case 422:
      return ProviderErrorClass::kInvalidRequest;
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
      // Out of credit: a 429 that retrying cannot fix.
      return Says(fields, {"insufficient_quota"}) ? ProviderErrorClass::kQuotaExhausted
                                                  : ProviderErrorClass::kRateLimited;
    case 503:
      return ProviderErrorClass::kOverloaded;
    default:
      if (status >= 500 && status <= 599) return ProviderErrorClass::kServer;
      if (status >= 400 && status <= 499) return ProviderErrorClass::kInvalidRequest;
      return ProviderErrorClass::kUnknown;
  }
}

std::string SanitizeMessage(std::string_view message, std::string_view api_key, size_t max_bytes) {
  std::string unmasked(message);
  // Our own key, verbatim, whatever its shape (short strings would mask innocent words).
  if (api_key.size() >= 8) {
    for (size_t at = unmasked.find(api_key); at != std::string::npos;
         at = unmasked.find(api_key, at + kKeyMask.size())) {
      unmasked.replace(at, api_key.size(), kKeyMask);
    }
  }
  // Anything shaped like an OpenAI/Anthropic key, including OpenAI's own masked echo
  // "sk-VKMIs***…wjh3": replace the whole token.
  std::string out;
  out.reserve(unmasked.size());
  std::string_view s = unmasked;
  for (size_t i = 0; i < s.size();) {
    if (s.substr(i, 3) == "sk-" && (i == 0 || !IsKeyChar(s[i - 1]))) {
      out.append("sk-***");
      i = std::max(TokenEnd(s, i + 3), i + 3);
      continue;
    }
    out.push_back(s[i++]);
  }
  out.resize(TruncateUtf8(out, max_bytes).size());
  return out;
}

int64_t RetryDelayFromMessage(std::string_view message) {
  const std::string lower = absl::AsciiStrToLower(ToAbsl(message));
  // OpenAI: "Please try again in 1.574s." / "in 20ms" / "in 6m0s".
  if (size_t at = lower.find("try again in "); at != std::string::npos) {
    return ParseGoDuration(std::string_view(lower).substr(at + 13));
  }
  // Azure: "Please retry after 86400 seconds."
  if (size_t at = lower.find("retry after "); at != std::string::npos) {
    const char* digits = lower.c_str() + at + 12;
    char* end = nullptr;
    const long long seconds = std::strtoll(digits, &end, 10);
    if (end != digits && seconds > 0 && std::string_view(end).starts_with(" second")) {
      return seconds * 1000;
    }
  }
  return 0;
}

ProviderError MakeProviderError(int http_status, const ErrorFields& fields,
                                std::string_view api_key) {
  ProviderError error;
  error.http_status = http_status;
  error.error_class = ClassifyError(http_status, fields);
  error.type = SanitizeMessage(fields.type, api_key, kMaxIdentifierBytes);
  error.code = SanitizeMessage(fields.code, api_key, kMaxIdentifierBytes);
  error.message = SanitizeMessage(fields.message, api_key, kMaxMessageBytes);
  if (error.error_class == ProviderErrorClass::kRateLimited ||
      error.error_class == ProviderErrorClass::kOverloaded) {
    error.retry_after_ms = RetryDelayFromMessage(fields.message);
  }
  return error;
}

}  // namespace openai_internal

ProviderError OpenAiAdapter::ParseError(int http_status, std::string_view body) const {
  using openai_internal::ErrorFields;
  ErrorFields fields;
  std::string_view trimmed = body;
  while (!trimmed.empty() && absl::ascii_isspace(trimmed.front())) trimmed.remove_prefix(1);
  bool found = false;
  if (trimmed.starts_with("{")) {
    // Error bodies are rare and small: a fresh parser and a padded copy are fine here.
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(body);
    found = openai_internal::ReadErrorBody(parser, padded, fields);
  }
  if (!found) {
    // Empty, HTML from a proxy, plain text: classified by status alone; a little of the text
    // (whitespace collapsed) helps whoever reads the error.
    std::string text;
    for (char c : openai_internal::TruncateUtf8(trimmed, openai_internal::kMaxQuotedPayloadBytes)) {
      if (absl::ascii_isspace(c)) {
        if (!text.empty() && text.back() != ' ') text.push_back(' ');
      } else {
        text.push_back(c);
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    fields = ErrorFields();
    fields.message = std::move(text);
  }
  return openai_internal::MakeProviderError(http_status, fields, api_key_);
}

}  // namespace turnpike
