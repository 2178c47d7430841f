#include "tools/fake_provider/request_parser.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/fault_spec.h"

namespace turnpike::fake_provider {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Looks up `key`, then `alt` (proto-JSON accepts camelCase and snake_case).
bool Lookup(element obj, std::string_view key, element* out, std::string_view alt = {}) {
  if (!obj.is_object()) return false;
  if (obj[key].get(*out) == simdjson::SUCCESS) return true;
  return !alt.empty() && obj[alt].get(*out) == simdjson::SUCCESS;
}

std::optional<int64_t> AsInt(element e) {
  switch (e.type()) {
    case element_type::INT64:
      return e.get_int64().value_unsafe();
    case element_type::UINT64:
      return static_cast<int64_t>(e.get_uint64().value_unsafe());
    case element_type::DOUBLE:
      return static_cast<int64_t>(e.get_double().value_unsafe());
    default:
      return std::nullopt;
  }
}

std::optional<int64_t> IntField(element obj, std::string_view key, std::string_view alt = {}) {
  element e;
  if (!Lookup(obj, key, &e, alt)) return std::nullopt;
  return AsInt(e);
}

std::optional<bool> BoolField(element obj, std::string_view key) {
  element e;
  if (!Lookup(obj, key, &e) || !e.is_bool()) return std::nullopt;
  return e.get_bool().value_unsafe();
}

std::string StringField(element obj, std::string_view key) {
  element e;
  if (!Lookup(obj, key, &e) || !e.is_string()) return {};
  return std::string(e.get_string().value_unsafe());
}

class TextCollector {
 public:
  explicit TextCollector(ParsedRequest* out) : out_(out) {}

  void AddText(std::string_view text) {
    out_->input_words += CountWords(text);
    if (ContainsFaultDirective(text)) out_->directive_texts.emplace_back(text);
  }

  // Message content: a string, an array of parts/blocks with "text", or nested "content"
  // (Anthropic tool_result blocks).
  void AddContent(element content, int depth = 0) {
    if (depth > 8) return;
    if (content.is_string()) {
      AddText(content.get_string().value_unsafe());
      return;
    }
    simdjson::dom::array parts;
    if (content.get_array().get(parts) != simdjson::SUCCESS) return;
    for (element part : parts) {
      if (part.is_string()) {
        AddText(part.get_string().value_unsafe());
        continue;
      }
      element e;
      if (Lookup(part, "text", &e) && e.is_string()) AddText(e.get_string().value_unsafe());
      if (Lookup(part, "content", &e)) AddContent(e, depth + 1);
    }
  }

  // Gemini Content: {"role": ..., "parts": [{"text": ...}, ...]}.
  void AddGeminiContent(element content) {
    element parts;
    if (Lookup(content, "parts", &parts)) AddContent(parts);
  }

 private:
  ParsedRequest* out_;
};

// Whether `parts` is an array with an object that has `key` (equal to `value` unless it is
// empty): a tool_result block, a functionResponse part.
bool HasPartWith(element parts, const char* key, std::string_view value) {
  simdjson::dom::array list;
  if (parts.get_array().get(list) != simdjson::SUCCESS) return false;
  for (element part : list) {
    element e;
    if (!Lookup(part, key, &e)) continue;
    if (value.empty()) return true;
    std::string_view s;
    if (e.get_string().get(s) == simdjson::SUCCESS && s == value) return true;
  }
  return false;
}

void ParseStreamOptions(element root, ParsedRequest* r) {
  element so;
  if (!Lookup(root, "stream_options", &so) || so.is_null()) return;
  r->has_stream_options = true;
  r->include_usage = BoolField(so, "include_usage");
  r->continuous_usage_stats = BoolField(so, "continuous_usage_stats").value_or(false);
  r->include_obfuscation = BoolField(so, "include_obfuscation");
}

void ParseChat(const Route& route, element root, ParsedRequest* r) {
  TextCollector text(r);
  r->stream = BoolField(root, "stream").value_or(false);
  ParseStreamOptions(root, r);
  r->max_completion_tokens = IntField(root, "max_completion_tokens");
  r->max_tokens = IntField(root, "max_tokens");
  r->n_predict = IntField(root, "n_predict");
  if (route.provider == Provider::kAnthropic) {
    element system;
    if (Lookup(root, "system", &system)) text.AddContent(system);
  }
  element messages;
  simdjson::dom::array list;
  if (Lookup(root, "messages", &messages) && messages.get_array().get(list) == simdjson::SUCCESS) {
    r->message_count = 0;
    for (element m : list) {
      ++r->message_count;
      element content;
      const bool has_content = Lookup(m, "content", &content);
      if (has_content) text.AddContent(content);
      // OpenAI: a "tool" message; Anthropic: a tool_result block in a user message.
      r->last_is_tool_result = StringField(m, "role") == "tool" ||
                               (has_content && HasPartWith(content, "type", "tool_result"));
    }
  }
  element tools;
  simdjson::dom::array tool_list;
  if (Lookup(root, "tools", &tools) && tools.get_array().get(tool_list) == simdjson::SUCCESS &&
      tool_list.size() > 0) {
    element first = tool_list.at(0).value_unsafe();
    element function;
    if (Lookup(first, "function", &function)) {
      r->first_tool_name = StringField(function, "name");
    } else {
      r->first_tool_name = StringField(first, "name");  // Anthropic
    }
  }
}

void ParseGemini(const Route& route, element root, ParsedRequest* r) {
  TextCollector text(r);
  r->stream = route.stream_by_path;
  element e;
  if (Lookup(root, "systemInstruction", &e, "system_instruction")) text.AddGeminiContent(e);
  simdjson::dom::array list;
  if (Lookup(root, "contents", &e) && e.get_array().get(list) == simdjson::SUCCESS) {
    r->message_count = 0;
    for (element c : list) {
      ++r->message_count;
      text.AddGeminiContent(c);
      element parts;
      r->last_is_tool_result =
          Lookup(c, "parts", &parts) && HasPartWith(parts, "functionResponse", "");
    }
  }
  simdjson::dom::array tool_list;
  if (Lookup(root, "tools", &e) && e.get_array().get(tool_list) == simdjson::SUCCESS &&
      tool_list.size() > 0) {
    element declarations;
    simdjson::dom::array list2;
    if (Lookup(tool_list.at(0).value_unsafe(), "functionDeclarations", &declarations,
               "function_declarations") &&
        declarations.get_array().get(list2) == simdjson::SUCCESS && list2.size() > 0) {
      r->first_tool_name = StringField(list2.at(0).value_unsafe(), "name");
    }
  }
  if (Lookup(root, "generationConfig", &e, "generation_config")) {
    r->max_output_tokens = IntField(e, "maxOutputTokens", "max_output_tokens");
  }
}

void ParseEmbeddings(element root, ParsedRequest* r) {
  r->encoding_format = StringField(root, "encoding_format");
  r->dimensions = IntField(root, "dimensions");
  element input;
  if (!Lookup(root, "input", &input) || input.is_null()) return;
  r->has_input = true;
  auto ints_to_text = [](element e) {
    std::string s;
    simdjson::dom::array arr;
    if (e.get_array().get(arr) != simdjson::SUCCESS) return s;
    for (element t : arr) {
      if (!s.empty()) s.push_back(' ');
      absl::StrAppend(&s, AsInt(t).value_or(0));
    }
    return s;
  };
  if (input.is_string()) {
    r->inputs.emplace_back(input.get_string().value_unsafe());
  } else if (simdjson::dom::array items; input.get_array().get(items) == simdjson::SUCCESS) {
    bool token_array = false;
    for (element item : items) {
      if (item.is_string()) {
        r->inputs.emplace_back(item.get_string().value_unsafe());
      } else if (item.is_array()) {
        r->inputs.push_back(ints_to_text(item));
      } else if (AsInt(item)) {
        token_array = true;
      }
    }
    if (token_array) r->inputs.push_back(ints_to_text(input));
  }
  for (const std::string& in : r->inputs) r->input_words += CountWords(in);
}

}  // namespace

int64_t CountWords(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    if (IsSpace(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++words;
    }
  }
  return words;
}

namespace {

// The wire is compact JSON as every gateway adapter writes it: a classification's schema
// (`"labels":{"type":"array","items":{"type":"string","enum":["first",...`).
std::string FirstEnumValue(std::string_view body) {
  constexpr std::string_view kOpen =
      "\"labels\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"";
  const size_t at = body.find(kOpen);
  if (at == std::string_view::npos) return "";
  const size_t from = at + kOpen.size();
  for (size_t i = from; i < body.size(); ++i) {
    if (body[i] == '\\') {
      ++i;
    } else if (body[i] == '"') {
      return std::string(body.substr(from, i - from));
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<ParsedRequest> RequestParser::Parse(const Route& route, std::string_view body) {
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; copy into a reused padded
  // buffer instead of letting it allocate a fresh one per request.
  if (padded_.size() < body.size() + simdjson::SIMDJSON_PADDING) {
    padded_.resize(body.size() + simdjson::SIMDJSON_PADDING);
  }
  std::copy(body.begin(), body.end(), padded_.begin());
  element root;
  if (parser_.parse(padded_.data(), body.size(), false).get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("request body is not valid JSON");
  }
  if (!root.is_object()) return absl::InvalidArgumentError("request body is not a JSON object");
  ParsedRequest r;
  r.model = StringField(root, "model");
  r.first_enum_value = FirstEnumValue(body);
  if (route.endpoint == Endpoint::kEmbeddings) {
    ParseEmbeddings(root, &r);
  } else if (route.provider == Provider::kGemini) {
    // As Gemini does: its OpenAPI-subset schema fields refuse JSON Schema's additionalProperties
    // (the gateway sends JSON Schema as responseJsonSchema and parametersJsonSchema instead).
    for (const char* field : {"responseSchema", "parameters"}) {
      const size_t at = body.find(absl::StrCat("\"", field, "\":"));
      if (at != std::string_view::npos &&
          body.find("\"additionalProperties\"", at) != std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Invalid JSON payload received. Unknown name \"additionalProperties\" at '", field,
            "': Cannot find field."));
      }
    }
    ParseGemini(route, root, &r);
  } else {
    ParseChat(route, root, &r);
  }
  return r;
}

}  // namespace turnpike::fake_provider
