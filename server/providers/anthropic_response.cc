// Everything that reads Anthropic JSON but the stream (anthropic_stream_decoder.cc): the
// non-streaming Message (docs/providers.md §2.3), error bodies (§2.5), and the `usage` and `error`
// objects both share (anthropic_internal.h). Objects are read in one pass over all their members
// (which also makes simdjson On-Demand check their structure), so member order, unknown members
// and trailing spaces do not matter; null and absent members are the same.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "server/providers/adapter_util.h"
#include "server/providers/anthropic_adapter.h"
#include "server/providers/anthropic_internal.h"
#include "simdjson.h"

namespace turnpike {

namespace anthropic_internal {

using adapter_util::ForEachField;
using adapter_util::ReadInt;

simdjson::error_code ReadUsage(simdjson::ondemand::value& value, Usage& usage) {
  return ForEachField(value, [&](std::string_view key, simdjson::ondemand::value& v) {
    if (key == "input_tokens") return ReadInt(v, usage.input_tokens);
    if (key == "cache_creation_input_tokens") return ReadInt(v, usage.cache_creation_input_tokens);
    if (key == "cache_read_input_tokens") return ReadInt(v, usage.cache_read_input_tokens);
    if (key == "output_tokens") return ReadInt(v, usage.output_tokens);
    return simdjson::SUCCESS;
  });
}

void SetCounts(const Usage& usage, ChatFinish& finish) {
  finish.usage_reported = usage.any();
  finish.cached_input_tokens = usage.cache_read_input_tokens.value_or(0);
  finish.cache_write_input_tokens = usage.cache_creation_input_tokens.value_or(0);
  finish.input_tokens =
      usage.input_tokens.value_or(0) + finish.cached_input_tokens + finish.cache_write_input_tokens;
  finish.output_tokens = usage.output_tokens.value_or(0);
  finish.reasoning_output_tokens = 0;
}

simdjson::error_code ReadErrorObject(simdjson::ondemand::value& value, std::string& type,
                                     std::string& message) {
  return ForEachField(value, [&](std::string_view key, simdjson::ondemand::value& v) {
    if (key == "type") adapter_util::CopyStringIfString(v, type);
    if (key == "message") adapter_util::CopyStringIfString(v, message);
    return simdjson::SUCCESS;
  });
}

ProviderError MakeError(int http_status, std::string type, std::string_view message,
                        std::string_view api_key) {
  ProviderError error;
  error.http_status = http_status;
  error.type = std::move(type);
  error.message = adapter_util::SanitizeMessage(message, api_key);
  error.error_class = ClassifyAnthropicError(http_status, error.type, error.message);
  return error;
}

}  // namespace anthropic_internal

namespace {

namespace ondemand = simdjson::ondemand;
using adapter_util::ForEachField;
using adapter_util::ReadString;
using anthropic_internal::kProvider;
using anthropic_internal::MakeError;
using anthropic_internal::ReadErrorObject;
using anthropic_internal::ReadUsage;
using anthropic_internal::SetCounts;
using anthropic_internal::Usage;

}  // namespace

absl::StatusOr<ChatResult> AnthropicAdapter::ParseChatResponse(std::string_view body) const {
  const simdjson::padded_string json(body.data(), body.size());
  ondemand::parser parser;
  ChatResult result;
  Usage usage;
  std::optional<std::string_view> stop_reason, type;
  bool has_error = false;
  std::string error_type, error_message;

  auto read_block = [&](ondemand::value& block) {
    std::optional<std::string_view> block_type, text, id, name;
    std::string_view input;
    auto error = ForEachField(block, [&](std::string_view key, ondemand::value& v) {
      if (key == "type") return ReadString(v, block_type);
      if (key == "text") return ReadString(v, text);
      if (key == "id") return ReadString(v, id);
      if (key == "name") return ReadString(v, name);
      // A tool_use block's input is a JSON object; its text is the call's arguments as sent.
      if (key == "input") return simdjson::to_json_string(v).get(input);
      return simdjson::SUCCESS;
    });
    if (error) return error;
    if (block_type == "text" && text.has_value()) result.text.append(*text);
    if (block_type == "tool_use") {
      v1::ToolCall& call = result.tool_calls.emplace_back();
      call.set_id(std::string(id.value_or("")));
      call.set_name(std::string(name.value_or("")));
      // to_json_string() keeps trailing whitespace; the arguments are the object's text alone.
      while (!input.empty() && (input.back() == ' ' || input.back() == '\n' ||
                                input.back() == '\r' || input.back() == '\t')) {
        input.remove_suffix(1);
      }
      call.set_arguments_json(std::string(input));
    }
    // thinking and other blocks are not part of the normalized reply.
    return error;
  };
  auto parse = [&]() -> simdjson::error_code {
    ondemand::document doc;
    if (auto error = parser.iterate(json).get(doc)) return error;
    ondemand::object root;
    if (auto error = doc.get_object().get(root)) return error;
    return ForEachField(root, [&](std::string_view key, ondemand::value& value) {
      if (key == "content") {
        ondemand::array blocks;
        if (auto error = value.get_array().get(blocks)) return error;
        for (auto block_result : blocks) {
          ondemand::value block;
          if (auto error = std::move(block_result).get(block)) return error;
          if (auto error = read_block(block)) return error;
        }
        return simdjson::SUCCESS;
      }
      if (key == "stop_reason") return ReadString(value, stop_reason);
      if (key == "usage") return ReadUsage(value, usage);
      if (key == "type") return ReadString(value, type);
      if (key == "error") {
        has_error = true;
        return ReadErrorObject(value, error_type, error_message);
      }
      return simdjson::SUCCESS;
    });
  };
  if (auto error = parse()) return adapter_util::MalformedError(kProvider, "message", error, body);
  if (has_error || type == "error") {
    // An error body delivered with HTTP 200 (some proxies do this).
    return ProviderErrorStatus(MakeError(0, std::move(error_type), error_message, api_key_));
  }
  result.finish.provider_reason = std::string(stop_reason.value_or(""));
  result.finish.reason = AnthropicFinishReason(result.finish.provider_reason);
  SetCounts(usage, result.finish);
  return result;
}

ProviderError AnthropicAdapter::ParseError(int http_status, std::string_view body) const {
  std::string type, message;
  bool read_json = false;
  if (!body.empty()) {
    const simdjson::padded_string json(body.data(), body.size());
    ondemand::parser parser;
    ondemand::document doc;
    ondemand::value error_value;
    ondemand::json_type error_type;
    // Lenient: whatever was read before a malformed part is kept.
    if (parser.iterate(json).get(doc) == simdjson::SUCCESS &&
        doc.find_field_unordered("error").get(error_value) == simdjson::SUCCESS &&
        error_value.type().get(error_type) == simdjson::SUCCESS) {
      if (error_type == ondemand::json_type::object) {
        read_json = true;
        (void)ReadErrorObject(error_value, type, message);
      } else if (error_type == ondemand::json_type::string) {
        // {"error": "..."}: proxies in front of Anthropic-compatible servers.
        read_json = true;
        adapter_util::CopyStringIfString(error_value, message);
      }
    }
  }
  // Not Anthropic's shape (Cloudflare's 413 HTML page, a proxy's text): quote a little of it.
  if (!read_json) message = adapter_util::QuotePayload(body);
  return MakeError(http_status, std::move(type), message, api_key_);
}

}  // namespace turnpike
