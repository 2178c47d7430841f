// Unary OpenAI-format bodies: a chat completion (docs/providers.md §1.3, Azure §4.3) and an
// embeddings list (§1.7). These bodies arrive without simdjson padding, so each is parsed from a
// padded copy with a fresh parser: unary calls are not the hot path.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/providers/openai_adapter.h"
#include "server/providers/openai_internal.h"

namespace turnpike {
namespace {

using openai_internal::MalformedError;
using simdjson::ondemand::json_type;

constexpr std::string_view kChat = "OpenAI chat response";
constexpr std::string_view kEmbeddings = "OpenAI embeddings response";

// The root object of `padded`, or INTERNAL naming `what`.
absl::StatusOr<simdjson::ondemand::object> RootObject(simdjson::ondemand::parser& parser,
                                                      simdjson::ondemand::document& doc,
                                                      const simdjson::padded_string& padded,
                                                      std::string_view what) {
  simdjson::ondemand::object root;
  simdjson::error_code error = parser.iterate(padded).get(doc);
  if (!error) error = doc.get_object().get(root);
  if (error) return MalformedError(what, error, "", std::string_view(padded));
  return root;
}

// Reads `choices`, keeping choice 0 in `result`; `have_choice` says whether there was one.
absl::Status ReadChoices(simdjson::ondemand::value& value, ChatResult& result, bool& have_choice,
                         std::string_view body) {
  simdjson::ondemand::array choices;
  if (auto error = value.get_array().get(choices)) {
    return MalformedError(kChat, error, "choices", body);
  }
  for (auto element : choices) {
    simdjson::ondemand::value choice;
    if (auto error = std::move(element).get(choice)) {
      return MalformedError(kChat, error, "choices", body);
    }
    openai_internal::ChoiceFields fields;
    TP_RETURN_IF_ERROR(openai_internal::ReadChoice(choice, "message", fields, kChat, body));
    if (fields.index != 0 || have_choice) continue;  // the gateway never asks for n > 1
    have_choice = true;
    result.text = std::string(fields.content);
    for (const ToolCallFragment& fragment : fields.tool_calls) {
      v1::ToolCall& call = result.tool_calls.emplace_back();
      call.set_id(std::string(fragment.id));
      call.set_name(std::string(fragment.name));
      call.set_arguments_json(std::string(fragment.arguments));
    }
    result.finish.provider_reason = std::string(fields.finish_reason);
    result.finish.reason = openai_internal::MapFinishReason(fields.finish_reason);
  }
  return absl::OkStatus();
}

// Decodes one `embedding`: a float array, or base64 of little-endian float32 (what a server that
// ignored our encoding_format sends).
absl::Status ReadEmbedding(simdjson::ondemand::value& value, std::vector<float>& out,
                           std::string_view body) {
  json_type type;
  if (auto error = value.type().get(type)) {
    return MalformedError(kEmbeddings, error, "embedding", body);
  }
  if (type == json_type::string) {
    std::string_view encoded;
    std::string bytes;
    if (auto error = value.get_string().get(encoded)) {
      return MalformedError(kEmbeddings, error, "embedding", body);
    }
    if (!absl::Base64Unescape(openai_internal::ToAbsl(encoded), &bytes) ||
        bytes.size() % sizeof(float) != 0) {
      return absl::InternalError("malformed OpenAI embeddings response: bad base64 embedding");
    }
    out.resize(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), bytes.size());  // the hosts we build for are LE too
    return absl::OkStatus();
  }
  simdjson::ondemand::array array;
  if (auto error = value.get_array().get(array)) {
    return MalformedError(kEmbeddings, error, "embedding", body);
  }
  for (auto element : array) {
    double number = 0;
    if (auto error = std::move(element).get_double().get(number)) {
      return MalformedError(kEmbeddings, error, "embedding[]", body);
    }
    out.push_back(static_cast<float>(number));
  }
  return absl::OkStatus();
}

// Reads one element of `data`: its `index` (array position when absent) and its vector.
absl::Status ReadEmbeddingItem(simdjson::ondemand::value& item, int64_t& index,
                               std::vector<float>& vector, std::string_view body) {
  simdjson::ondemand::object object;
  if (auto error = item.get_object().get(object)) {
    return MalformedError(kEmbeddings, error, "data[]", body);
  }
  for (auto member : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    simdjson::error_code read_error = member.unescaped_key().get(key);
    if (!read_error) read_error = member.value().get(value);
    if (read_error) return MalformedError(kEmbeddings, read_error, "data[]", body);
    if (key == "index") {
      if (auto error = value.get_int64().get(index)) {
        return MalformedError(kEmbeddings, error, "data[].index", body);
      }
    } else if (key == "embedding") {
      TP_RETURN_IF_ERROR(ReadEmbedding(value, vector, body));
    }
  }
  return absl::OkStatus();
}

// Reads `data` into `result.vectors`, put in input order by their `index`es, which must be
// exactly 0..n-1.
absl::Status ReadEmbeddingData(simdjson::ondemand::value& value, EmbedResult& result,
                               std::string_view body) {
  simdjson::ondemand::array data;
  if (auto error = value.get_array().get(data)) {
    return MalformedError(kEmbeddings, error, "data", body);
  }
  std::vector<std::pair<int64_t, std::vector<float>>> items;
  for (auto element : data) {
    simdjson::ondemand::value item;
    if (auto error = std::move(element).get(item)) {
      return MalformedError(kEmbeddings, error, "data", body);
    }
    int64_t index = static_cast<int64_t>(items.size());
    std::vector<float> vector;
    TP_RETURN_IF_ERROR(ReadEmbeddingItem(item, index, vector, body));
    items.emplace_back(index, std::move(vector));
  }
  result.vectors.assign(items.size(), {});
  std::vector<bool> filled(items.size(), false);
  for (auto& [index, vector] : items) {
    if (index < 0 || index >= static_cast<int64_t>(items.size()) || filled[index]) {
      return absl::InternalError(absl::StrCat("malformed OpenAI embeddings response: index ", index,
                                              " out of range or repeated"));
    }
    filled[index] = true;
    result.vectors[index] = std::move(vector);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChatResult> OpenAiAdapter::ParseChatResponse(std::string_view body) const {
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  const simdjson::padded_string padded(body);
  TP_ASSIGN_OR_RETURN(simdjson::ondemand::object root, RootObject(parser, doc, padded, kChat));
  ChatResult result;
  bool have_choice = false;
  bool error_body = false;
  for (auto member : root) {
    std::string_view key;
    simdjson::ondemand::value value;
    json_type type;
    simdjson::error_code read_error = member.unescaped_key().get(key);
    if (!read_error) read_error = member.value().get(value);
    if (!read_error) read_error = value.type().get(type);
    if (read_error) return MalformedError(kChat, read_error, key, body);
    if (key == "choices" && type != json_type::null) {
      TP_RETURN_IF_ERROR(ReadChoices(value, result, have_choice, body));
    } else if (key == "usage") {
      bool reported = false;
      openai_internal::UsageFields usage;
      TP_RETURN_IF_ERROR(openai_internal::ReadUsage(value, reported, usage, kChat, body));
      if (reported) openai_internal::ApplyUsage(usage, result.finish);
    } else if (key == "error" && (type == json_type::object || type == json_type::string)) {
      error_body = true;
    }
  }
  TP_RETURN_IF_ERROR(openai_internal::CheckFullyRead(doc, kChat, body));
  if (error_body) {
    // Some proxies answer 200 with an error body: classified like an error event in a stream
    // (by its type/code), since the status says nothing.
    ProviderError error = ParseError(0, body);
    error.http_status = 200;
    return ProviderErrorStatus(error);
  }
  if (!have_choice) return absl::InternalError("malformed OpenAI chat response: no choices[0]");
  return result;
}

absl::StatusOr<EmbedResult> OpenAiAdapter::ParseEmbedResponse(std::string_view body) const {
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  const simdjson::padded_string padded(body);
  TP_ASSIGN_OR_RETURN(simdjson::ondemand::object root,
                      RootObject(parser, doc, padded, kEmbeddings));
  EmbedResult result;
  for (auto member : root) {
    std::string_view key;
    simdjson::ondemand::value value;
    simdjson::error_code read_error = member.unescaped_key().get(key);
    if (!read_error) read_error = member.value().get(value);
    if (read_error) return MalformedError(kEmbeddings, read_error, key, body);
    if (key == "model") {
      std::string_view model;
      bool present = false;
      if (auto error = openai_internal::GetNullableString(value, model, present)) {
        return MalformedError(kEmbeddings, error, key, body);
      }
      result.model = std::string(model);
    } else if (key == "usage") {
      bool reported = false;
      openai_internal::UsageFields usage;
      TP_RETURN_IF_ERROR(openai_internal::ReadUsage(value, reported, usage, kEmbeddings, body));
      result.input_tokens = usage.prompt_tokens;
    } else if (key == "data") {
      TP_RETURN_IF_ERROR(ReadEmbeddingData(value, result, body));
    }
  }
  TP_RETURN_IF_ERROR(openai_internal::CheckFullyRead(doc, kEmbeddings, body));
  return result;
}

}  // namespace turnpike
