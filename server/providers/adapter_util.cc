#include "server/providers/adapter_util.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace turnpike::adapter_util {
namespace {

// Shorter "keys" (test placeholders, local servers' dummies) could match ordinary words.
constexpr size_t kMinMaskedKeyBytes = 8;
constexpr std::string_view kRedacted = "[REDACTED]";

bool HasHeaderBreak(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

std::string_view HeaderName(std::string_view line) { return line.substr(0, line.find(':')); }

}  // namespace

std::string TrimBaseUrl(std::string_view base_url, std::string_view fallback) {
  std::string_view url = base_url;
  while (!url.empty() && absl::ascii_isspace(static_cast<unsigned char>(url.front()))) {
    url.remove_prefix(1);
  }
  while (!url.empty() && absl::ascii_isspace(static_cast<unsigned char>(url.back()))) {
    url.remove_suffix(1);
  }
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return std::string(url.empty() ? fallback : url);
}

void AppendProviderHeaders(const config::v1::Provider& provider,
                           std::vector<std::string>& headers) {
  std::vector<std::pair<std::string_view, std::string_view>> extra;
  extra.reserve(provider.headers().size());
  for (const auto& [name, value] : provider.headers()) {
    if (name.empty() || HasHeaderBreak(name) || HasHeaderBreak(value)) continue;
    extra.emplace_back(name, value);
  }
  std::sort(extra.begin(), extra.end());
  // A named pair, not a structured binding: clang 14 cannot capture bindings in a lambda.
  for (const auto& header : extra) {
    std::erase_if(headers, [&](const std::string& line) {
      return absl::EqualsIgnoreCase(AsAbsl(HeaderName(line)), AsAbsl(header.first));
    });
  }
  for (const auto& [name, value] : extra)
    headers.push_back(absl::StrCat(AsAbsl(name), ": ", AsAbsl(value)));
}

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string SanitizeMessage(std::string_view message, std::string_view api_key) {
  std::string out(message);
  if (api_key.size() >= kMinMaskedKeyBytes) {
    for (size_t pos = out.find(api_key); pos != std::string::npos;
         pos = out.find(api_key, pos + kRedacted.size())) {
      out.replace(pos, api_key.size(), kRedacted);
    }
  }
  if (out.size() > kMaxMessageBytes) out.resize(TruncateUtf8(out, kMaxMessageBytes).size());
  return out;
}

std::string QuotePayload(std::string_view payload) {
  const bool cut = payload.size() > kMaxQuotedPayloadBytes;
  std::string quoted = absl::CHexEscape(
      absl::string_view(payload.data(), std::min(payload.size(), kMaxQuotedPayloadBytes)));
  if (cut) quoted += "...";
  return quoted;
}

absl::Status MalformedError(std::string_view provider, std::string_view what,
                            simdjson::error_code error, std::string_view payload) {
  return absl::InternalError(absl::StrCat(AsAbsl(provider), ": malformed ", AsAbsl(what), ": ",
                                          simdjson::error_message(error),
                                          "; payload starts: ", QuotePayload(payload)));
}

simdjson::error_code IsNull(simdjson::ondemand::value& value, bool& is_null) {
  simdjson::ondemand::json_type type;
  if (auto error = value.type().get(type)) return error;
  is_null = type == simdjson::ondemand::json_type::null;
  return simdjson::SUCCESS;
}

simdjson::error_code ReadInt(simdjson::ondemand::value& value, std::optional<int64_t>& out) {
  bool is_null = false;
  if (auto error = IsNull(value, is_null)) return error;
  if (is_null) return simdjson::SUCCESS;
  int64_t n = 0;
  if (auto error = value.get_int64().get(n)) return error;
  out = n;
  return simdjson::SUCCESS;
}

simdjson::error_code ReadString(simdjson::ondemand::value& value,
                                std::optional<std::string_view>& out) {
  bool is_null = false;
  if (auto error = IsNull(value, is_null)) return error;
  if (is_null) return simdjson::SUCCESS;
  std::string_view s;
  if (auto error = value.get_string().get(s)) return error;
  out = s;
  return simdjson::SUCCESS;
}

simdjson::error_code ReadBool(simdjson::ondemand::value& value, std::optional<bool>& out) {
  bool is_null = false;
  if (auto error = IsNull(value, is_null)) return error;
  if (is_null) return simdjson::SUCCESS;
  bool b = false;
  if (auto error = value.get_bool().get(b)) return error;
  out = b;
  return simdjson::SUCCESS;
}

void CopyStringIfString(simdjson::ondemand::value& value, std::string& out) {
  std::string_view s;
  if (value.get_string().get(s) == simdjson::SUCCESS) out.assign(s);
}

std::string_view ToolParameters(const v1::Tool& tool) {
  if (tool.parameters_json().empty()) return R"({"type":"object","properties":{}})";
  return tool.parameters_json();
}

std::string_view SchemaName(const v1::ResponseFormat& format) {
  return format.schema_name().empty() ? std::string_view("response") : format.schema_name();
}

std::string ImageUrl(const v1::ImagePart& image) {
  if (image.has_url()) return image.url();
  return absl::StrCat("data:", image.media_type(), ";base64,", absl::Base64Escape(image.data()));
}

}  // namespace turnpike::adapter_util
