#include "server/http/openai_tools_wire.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/http/openai_json.h"

namespace turnpike {
namespace {

using openai_json::element;
using openai_json::Member;
using openai_json::object;
using openai_json::ReadBool;
using openai_json::ReadString;

absl::Status ReadType(const object& o, const std::string& field, std::string* type) {
  element v;
  if (!Member(o, "type", &v)) return InvalidFieldError(field + ".type", "is required");
  return ReadString(v, field + ".type", type);
}

// A JSON value (a schema) as compact JSON text.
std::string Minified(const element& e) { return simdjson::minify(e); }

// `o`'s "function" object, and its name (required).
absl::Status ReadFunction(const object& o, const std::string& field, object* function,
                          std::string* name) {
  element v;
  if (!Member(o, "function", &v) || v.get(*function)) {
    return InvalidFieldError(field + ".function", "must be an object");
  }
  if (!Member(*function, "name", &v)) {
    return InvalidFieldError(field + ".function.name", "is required");
  }
  return ReadString(v, field + ".function.name", name);
}

absl::Status ReadTools(const element& e, v1::StreamCompletionRequest* request) {
  simdjson::dom::array tools;
  if (e.get(tools)) return InvalidFieldError("tools", "must be an array");
  size_t i = 0;
  for (element t : tools) {
    const std::string field = absl::StrCat("tools[", i++, "]");
    object o;
    if (t.get(o)) return InvalidFieldError(field, "must be an object");
    std::string type;
    if (absl::Status s = ReadType(o, field, &type); !s.ok()) return s;
    if (type != "function") {
      return InvalidFieldError(field + ".type", "only \"function\" tools are supported");
    }
    v1::Tool* tool = request->add_tools();
    object function;
    if (absl::Status s = ReadFunction(o, field, &function, tool->mutable_name()); !s.ok()) return s;
    element v;
    if (Member(function, "description", &v)) {
      if (absl::Status s =
              ReadString(v, field + ".function.description", tool->mutable_description());
          !s.ok()) {
        return s;
      }
    }
    // The schema is checked as the gRPC door checks it (a JSON object), by the shared validation.
    if (Member(function, "parameters", &v)) tool->set_parameters_json(Minified(v));
  }
  return absl::OkStatus();
}

absl::Status ReadToolChoice(const element& e, v1::ToolChoice* choice) {
  if (e.is_string()) {
    std::string mode;
    if (absl::Status s = ReadString(e, "tool_choice", &mode); !s.ok()) return s;
    if (mode == "auto") {
      choice->set_mode(v1::TOOL_CHOICE_MODE_AUTO);
    } else if (mode == "none") {
      choice->set_mode(v1::TOOL_CHOICE_MODE_NONE);
    } else if (mode == "required") {
      choice->set_mode(v1::TOOL_CHOICE_MODE_REQUIRED);
    } else {
      return InvalidFieldError("tool_choice",
                               "must be \"auto\", \"none\", \"required\" or an "
                               "object naming a function");
    }
    return absl::OkStatus();
  }
  object o;
  if (e.get(o)) {
    return InvalidFieldError("tool_choice", "must be a string or an object naming a function");
  }
  choice->set_mode(v1::TOOL_CHOICE_MODE_TOOL);
  object function;
  return ReadFunction(o, "tool_choice", &function, choice->mutable_tool_name());
}

absl::Status ReadResponseFormat(const element& e, v1::ResponseFormat* format) {
  object o;
  if (e.get(o)) return InvalidFieldError("response_format", "must be an object");
  std::string type;
  if (absl::Status s = ReadType(o, "response_format", &type); !s.ok()) return s;
  if (type == "text") {
    format->set_type(v1::RESPONSE_FORMAT_TYPE_TEXT);
    return absl::OkStatus();
  }
  if (type == "json_object") {
    format->set_type(v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT);
    return absl::OkStatus();
  }
  if (type != "json_schema") {
    return InvalidFieldError("response_format.type",
                             "must be \"text\", \"json_object\" or \"json_schema\"");
  }
  format->set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  element v;
  object schema;
  if (!Member(o, "json_schema", &v) || v.get(schema)) {
    return InvalidFieldError("response_format.json_schema", "must be an object");
  }
  if (Member(schema, "name", &v)) {
    if (absl::Status s =
            ReadString(v, "response_format.json_schema.name", format->mutable_schema_name());
        !s.ok()) {
      return s;
    }
  }
  if (!Member(schema, "schema", &v)) {
    return InvalidFieldError("response_format.json_schema.schema", "is required");
  }
  format->set_json_schema(Minified(v));
  if (Member(schema, "strict", &v)) {
    bool strict = false;
    if (absl::Status s = ReadBool(v, "response_format.json_schema.strict", &strict); !s.ok()) {
      return s;
    }
    format->set_strict(strict);
  }
  return absl::OkStatus();
}

void BeginToolCallDelta(JsonWriter& w, const ChunkHeader& header, int32_t index) {
  openai_json::BeginChunk(w, header);
  w.Key("choices").BeginArray().BeginObject().Key("index").Int(0).Key("delta").BeginObject();
  w.Key("tool_calls").BeginArray().BeginObject().Key("index").Int(index);
}

}  // namespace

absl::Status ReadOpenAiContent(const element& e, const std::string& field, v1::Message* message) {
  if (e.is_string()) return ReadString(e, field, message->mutable_content());
  simdjson::dom::array parts;
  if (e.get(parts)) return InvalidFieldError(field, "must be a string or an array of parts");
  google::protobuf::RepeatedPtrField<v1::ContentPart> out;
  bool image = false;
  size_t i = 0;
  for (element part : parts) {
    const std::string part_field = absl::StrCat(field, "[", i++, "]");
    object p;
    std::string type;
    if (part.get(p) || !ReadType(p, part_field, &type).ok()) {
      return InvalidFieldError(part_field, "must be an object with a \"type\"");
    }
    element v;
    if (type == "text") {
      if (!Member(p, "text", &v)) return InvalidFieldError(part_field + ".text", "is required");
      if (absl::Status s = ReadString(v, part_field + ".text", out.Add()->mutable_text()); !s.ok())
        return s;
    } else if (type == "image_url") {
      object image_url;
      if (!Member(p, "image_url", &v) || v.get(image_url) || !Member(image_url, "url", &v)) {
        return InvalidFieldError(part_field + ".image_url.url", "is required");
      }
      // An https URL or a data: URL, as the gRPC door takes them (docs/tools.md).
      if (absl::Status s = ReadString(v, part_field + ".image_url.url",
                                      out.Add()->mutable_image()->mutable_url());
          !s.ok()) {
        return s;
      }
      image = true;
    } else {
      return InvalidFieldError(
          part_field + ".type",
          absl::StrCat("\"", type, "\" parts are not supported; send text or image_url"));
    }
  }
  if (image) {
    *message->mutable_parts() = std::move(out);
  } else {
    for (const v1::ContentPart& part : out) message->mutable_content()->append(part.text());
  }
  return absl::OkStatus();
}

absl::Status ReadOpenAiToolCalls(const element& e, const std::string& field, v1::Message* message) {
  simdjson::dom::array calls;
  if (e.get(calls)) return InvalidFieldError(field, "must be an array");
  size_t i = 0;
  for (element c : calls) {
    const std::string call_field = absl::StrCat(field, "[", i++, "]");
    object o;
    if (c.get(o)) return InvalidFieldError(call_field, "must be an object");
    v1::ToolCall* call = message->add_tool_calls();
    element v;
    if (!Member(o, "id", &v)) return InvalidFieldError(call_field + ".id", "is required");
    if (absl::Status s = ReadString(v, call_field + ".id", call->mutable_id()); !s.ok()) return s;
    object function;
    if (absl::Status s = ReadFunction(o, call_field, &function, call->mutable_name()); !s.ok())
      return s;
    if (Member(function, "arguments", &v)) {
      if (absl::Status s =
              ReadString(v, call_field + ".function.arguments", call->mutable_arguments_json());
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReadOpenAiToolOptions(const object& root, v1::StreamCompletionRequest* request) {
  element e;
  if (Member(root, "tools", &e)) {
    if (absl::Status s = ReadTools(e, request); !s.ok()) return s;
  }
  if (Member(root, "tool_choice", &e)) {
    if (absl::Status s = ReadToolChoice(e, request->mutable_tool_choice()); !s.ok()) return s;
  }
  if (Member(root, "response_format", &e)) {
    if (absl::Status s = ReadResponseFormat(e, request->mutable_response_format()); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

std::string ToolCallChunkEvent(const ChunkHeader& header, const ToolCallFragment& fragment,
                               bool include_usage) {
  JsonWriter w;
  BeginToolCallDelta(w, header, fragment.index);
  if (!fragment.id.empty()) w.Key("id").String(fragment.id).Key("type").String("function");
  w.Key("function").BeginObject();
  if (!fragment.name.empty()) w.Key("name").String(fragment.name);
  w.Key("arguments").String(fragment.arguments);
  w.EndObject();                              // function
  w.EndObject().EndArray();                   // the call, tool_calls
  w.EndObject().Key("finish_reason").Null();  // delta
  w.EndObject().EndArray();                   // the choice, choices
  if (include_usage) w.Key("usage").Null();
  w.EndObject();
  return openai_json::AsEvent(w);
}

void WriteOpenAiToolCalls(JsonWriter& w, const std::vector<v1::ToolCall>& calls) {
  w.Key("tool_calls").BeginArray();
  for (const v1::ToolCall& call : calls) {
    w.BeginObject().Key("id").String(call.id()).Key("type").String("function");
    w.Key("function").BeginObject().Key("name").String(call.name());
    w.Key("arguments").String(call.arguments_json()).EndObject();
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace turnpike
