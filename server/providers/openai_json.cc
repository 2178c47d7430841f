// simdjson On-Demand readers for the pieces of OpenAI-format JSON that both the stream decoder and
// the unary parsers need: choices, usage and error objects. Every member is matched by name while
// iterating, so member order, unknown members and absent-vs-null do not matter.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/providers/openai_internal.h"

namespace turnpike::openai_internal {

using simdjson::ondemand::json_type;

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  // Back up over continuation bytes (10xxxxxx) so a code point is never cut in half.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

absl::Status MalformedError(std::string_view what, simdjson::error_code error,
                            std::string_view where, std::string_view payload) {
  std::string message =
      absl::StrCat("malformed ", ToAbsl(what), ": ", simdjson::error_message(error));
  if (!where.empty()) absl::StrAppend(&message, " at ", ToAbsl(where));
  // C-escaped: the payload is untrusted bytes and the message ends up in logs and statuses.
  std::string_view quoted = TruncateUtf8(payload, kMaxQuotedPayloadBytes);
  absl::StrAppend(&message, "; payload starts: ", absl::CHexEscape(ToAbsl(quoted)),
                  quoted.size() < payload.size() ? "..." : "");
  return absl::InternalError(message);
}

absl::Status CheckFullyRead(simdjson::ondemand::document& doc, std::string_view what,
                            std::string_view payload) {
  if (doc.current_location().error() == simdjson::OUT_OF_BOUNDS) return absl::OkStatus();
  return MalformedError(what, simdjson::TRAILING_CONTENT, "", payload);
}

v1::FinishReason MapFinishReason(std::string_view reason) {
  if (reason == "stop") return v1::FINISH_REASON_STOP;
  if (reason == "length") return v1::FINISH_REASON_LENGTH;
  if (reason == "content_filter") return v1::FINISH_REASON_CONTENT_FILTER;
  if (reason == "tool_calls" || reason == "function_call") return v1::FINISH_REASON_TOOL_CALLS;
  if (reason.empty()) return v1::FINISH_REASON_UNSPECIFIED;
  return v1::FINISH_REASON_OTHER;
}

simdjson::error_code GetNullableString(simdjson::ondemand::value& value, std::string_view& out,
                                       bool& present) {
  json_type type;
  if (auto error = value.type().get(type)) return error;
  if (type == json_type::null) {
    present = false;
    out = {};
    return simdjson::SUCCESS;
  }
  present = true;
  return value.get_string().get(out);
}

namespace {

// Reads one count; a null or odd-typed count is read as 0 rather than failing a stream that
// already worked.
void ReadCount(simdjson::ondemand::value& value, int64_t& target) {
  int64_t count = 0;
  if (value.get_int64().get(count) == simdjson::SUCCESS && count > 0) target = count;
}

// Reads the one count `wanted` from a details object (prompt_tokens_details,
// completion_tokens_details). Null, absent or odd-typed details read as 0.
absl::Status ReadDetail(simdjson::ondemand::value& details, std::string_view wanted,
                        int64_t& target, std::string_view what, std::string_view payload) {
  json_type type;
  if (auto error = details.type().get(type)) return MalformedError(what, error, "usage", payload);
  if (type != json_type::object) return absl::OkStatus();
  simdjson::ondemand::object object;
  if (auto error = details.get_object().get(object)) {
    return MalformedError(what, error, "usage", payload);
  }
  for (auto member : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    simdjson::error_code error = member.unescaped_key().get(key);
    if (!error) error = member.value().get(value);
    if (error) return MalformedError(what, error, "usage", payload);
    if (key == wanted) ReadCount(value, target);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadUsage(simdjson::ondemand::value& usage, bool& reported, UsageFields& fields,
                       std::string_view what, std::string_view payload) {
  json_type type;
  if (auto error = usage.type().get(type)) return MalformedError(what, error, "usage", payload);
  if (type == json_type::null) {
    reported = false;
    return absl::OkStatus();
  }
  simdjson::ondemand::object object;
  if (auto error = usage.get_object().get(object)) {
    return MalformedError(what, error, "usage", payload);
  }
  reported = true;
  fields = UsageFields();
  for (auto member : object) {
    std::string_view key;
    if (auto error = member.unescaped_key().get(key)) {
      return MalformedError(what, error, "usage", payload);
    }
    if (key != "prompt_tokens" && key != "completion_tokens" && key != "prompt_tokens_details" &&
        key != "completion_tokens_details") {
      continue;  // total_tokens, other details, unknown: skipped
    }
    simdjson::ondemand::value value;
    if (auto error = member.value().get(value)) {
      return MalformedError(what, error, "usage", payload);
    }
    if (key == "prompt_tokens") {
      ReadCount(value, fields.prompt_tokens);
    } else if (key == "completion_tokens") {
      ReadCount(value, fields.completion_tokens);
    } else if (key == "prompt_tokens_details") {
      TP_RETURN_IF_ERROR(ReadDetail(value, "cached_tokens", fields.cached_tokens, what, payload));
    } else {
      TP_RETURN_IF_ERROR(
          ReadDetail(value, "reasoning_tokens", fields.reasoning_tokens, what, payload));
    }
  }
  return absl::OkStatus();
}

void ApplyUsage(const UsageFields& usage, ChatFinish& finish) {
  finish.usage_reported = true;
  // docs/providers.md §1.3: cached_tokens is a part of prompt_tokens and reasoning_tokens a part
  // of completion_tokens, which is already the normalized meaning.
  finish.input_tokens = usage.prompt_tokens;
  finish.output_tokens = usage.completion_tokens;
  finish.cached_input_tokens = usage.cached_tokens;
  finish.cache_write_input_tokens = 0;
  finish.reasoning_output_tokens = usage.reasoning_tokens;
}

namespace {

// Reads `tool_calls` (docs/providers.md §1.3, §1.4): null, or an array of
// {"index", "id", "type", "function": {"name", "arguments"}} where a stream's chunks carry only
// `index` and the next `arguments` fragment after a call's first one. Arguments are taken as the
// provider's string, unescaped, so the client gets exactly the JSON text the model wrote.
absl::Status ReadToolCalls(simdjson::ondemand::value& value, std::vector<ToolCallFragment>& out,
                           std::string_view what, std::string_view payload) {
  constexpr std::string_view kWhere = "choices[].tool_calls";
  json_type type;
  if (auto error = value.type().get(type)) return MalformedError(what, error, kWhere, payload);
  if (type == json_type::null) return absl::OkStatus();
  simdjson::ondemand::array calls;
  if (auto error = value.get_array().get(calls))
    return MalformedError(what, error, kWhere, payload);
  int32_t position = 0;
  for (auto element : calls) {
    simdjson::ondemand::object call;
    if (auto error = element.get_object().get(call)) {
      return MalformedError(what, error, kWhere, payload);
    }
    ToolCallFragment fragment;
    fragment.index = position++;
    for (auto member : call) {
      std::string_view key;
      simdjson::ondemand::value v;
      simdjson::error_code error = member.unescaped_key().get(key);
      if (!error) error = member.value().get(v);
      if (error) return MalformedError(what, error, kWhere, payload);
      bool present = false;
      if (key == "index") {
        int64_t index = 0;
        if (auto e = v.get_int64().get(index); e || index < 0 || index > 1024) {
          return MalformedError(what, e ? e : simdjson::NUMBER_OUT_OF_RANGE, kWhere, payload);
        }
        fragment.index = static_cast<int32_t>(index);
      } else if (key == "id") {
        if (auto e = GetNullableString(v, fragment.id, present)) {
          return MalformedError(what, e, kWhere, payload);
        }
      } else if (key == "function") {
        simdjson::ondemand::object function;
        if (auto e = v.get_object().get(function)) return MalformedError(what, e, kWhere, payload);
        for (auto f : function) {
          std::string_view fkey;
          simdjson::ondemand::value fv;
          simdjson::error_code e = f.unescaped_key().get(fkey);
          if (!e) e = f.value().get(fv);
          if (!e && fkey == "name") e = GetNullableString(fv, fragment.name, present);
          if (!e && fkey == "arguments") e = GetNullableString(fv, fragment.arguments, present);
          if (e) return MalformedError(what, e, kWhere, payload);
        }
      }
    }
    out.push_back(fragment);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadChoice(simdjson::ondemand::value& choice, std::string_view message_key,
                        ChoiceFields& fields, std::string_view what, std::string_view payload) {
  fields = ChoiceFields();
  simdjson::ondemand::object object;
  if (auto error = choice.get_object().get(object)) {
    return MalformedError(what, error, "choices[]", payload);
  }
  for (auto member : object) {
    std::string_view key;
    if (auto error = member.unescaped_key().get(key)) {
      return MalformedError(what, error, "choices[]", payload);
    }
    simdjson::ondemand::value value;
    if (auto error = member.value().get(value)) {
      return MalformedError(what, error, "choices[]", payload);
    }
    if (key == "index") {
      if (auto error = value.get_int64().get(fields.index)) {
        return MalformedError(what, error, "choices[].index", payload);
      }
    } else if (key == "finish_reason") {
      if (auto error = GetNullableString(value, fields.finish_reason, fields.has_finish_reason)) {
        return MalformedError(what, error, "choices[].finish_reason", payload);
      }
    } else if (key == "usage") {
      absl::Status status = ReadUsage(value, fields.has_usage, fields.usage, what, payload);
      if (!status.ok()) return status;
    } else if (key == message_key) {
      json_type type;
      if (auto error = value.type().get(type)) {
        return MalformedError(what, error, "choices[].message", payload);
      }
      if (type == json_type::null) continue;
      simdjson::ondemand::object message;
      if (auto error = value.get_object().get(message)) {
        return MalformedError(what, error, "choices[].message", payload);
      }
      for (auto part : message) {
        std::string_view part_key;
        if (auto error = part.unescaped_key().get(part_key)) {
          return MalformedError(what, error, "choices[].message", payload);
        }
        if (part_key == "tool_calls") {
          simdjson::ondemand::value calls;
          if (auto error = part.value().get(calls)) {
            return MalformedError(what, error, "choices[].message.tool_calls", payload);
          }
          absl::Status status = ReadToolCalls(calls, fields.tool_calls, what, payload);
          if (!status.ok()) return status;
          continue;
        }
        // role, refusal, reasoning, annotations...: not part of the reply's contract.
        if (part_key != "content") continue;
        simdjson::ondemand::value content;
        bool present = false;
        simdjson::error_code error = part.value().get(content);
        if (!error) error = GetNullableString(content, fields.content, present);
        if (error) return MalformedError(what, error, "choices[].message.content", payload);
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// Applies one member of an error object (or of a flat error body) to `fields`. Members of the
// wrong type are ignored: an error body is read to explain a failure, never to cause one.
void ReadErrorMember(std::string_view key, simdjson::ondemand::value& value, ErrorFields& fields) {
  json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return;
  std::string_view text;
  if (key == "message" || key == "type" || key == "detail") {
    if (type != json_type::string || value.get_string().get(text)) return;
    (key == "type" ? fields.type : fields.message).assign(text);
  } else if (key == "code") {
    if (type == json_type::string) {
      if (value.get_string().get(text)) return;
      fields.code.assign(text);
      // Azure sends HTTP statuses as strings ("code":"429").
      if (text.size() == 3 && std::all_of(text.begin(), text.end(), absl::ascii_isdigit)) {
        fields.numeric_code = std::stoi(std::string(text));
      }
    } else if (type == json_type::number) {
      int64_t code = 0;
      if (value.get_int64().get(code) == simdjson::SUCCESS && code > 0 && code < 1000) {
        fields.numeric_code = static_cast<int>(code);
        fields.code = std::to_string(code);
      }
    }
  }
}

}  // namespace

bool ReadErrorBody(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                   ErrorFields& fields) {
  fields = ErrorFields();
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(json).get(doc) || doc.get_object().get(object)) return false;
  ErrorFields flat;
  bool envelope = false;
  bool flat_error = false;
  for (auto member : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    if (member.unescaped_key().get(key) || member.value().get(value)) break;
    json_type type;
    if (value.type().get(type)) break;
    if (key == "error") {
      if (type == json_type::object) {
        simdjson::ondemand::object inner;
        if (value.get_object().get(inner)) break;
        envelope = true;
        for (auto inner_member : inner) {
          std::string_view inner_key;
          simdjson::ondemand::value inner_value;
          if (inner_member.unescaped_key().get(inner_key) ||
              inner_member.value().get(inner_value)) {
            break;
          }
          ReadErrorMember(inner_key, inner_value, fields);
        }
      } else if (type == json_type::string) {  // Ollama's native API: {"error":"..."}
        std::string_view text;
        if (value.get_string().get(text)) break;
        envelope = true;
        fields.message.assign(text);
      }
    } else if (key == "object") {
      std::string_view text;
      flat_error = type == json_type::string && !value.get_string().get(text) && text == "error";
    } else {
      ReadErrorMember(key, value, flat);
    }
  }
  if (envelope) return true;
  // vLLM's old flat shape, or a bare {"message": ...} / {"detail": ...} from some proxy.
  if (flat_error || !flat.message.empty()) {
    fields = std::move(flat);
    return true;
  }
  return false;
}

}  // namespace turnpike::openai_internal
