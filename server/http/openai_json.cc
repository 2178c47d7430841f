#include "server/http/openai_json.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace turnpike::openai_json {

absl::Status ParseObject(std::string_view body, object* root) {
  thread_local simdjson::dom::parser parser;
  element doc;
  if (auto error = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(doc);
      error) {
    return InvalidFieldError("body",
                             absl::StrCat("not valid JSON (", simdjson::error_message(error), ")"));
  }
  if (doc.get(*root)) return InvalidFieldError("body", "must be a JSON object");
  return absl::OkStatus();
}

// The member `key`, or false when it is absent or null.
bool Member(const object& o, std::string_view key, element* out) {
  if (o.at_key(key).get(*out)) return false;
  return !out->is_null();
}

absl::Status ReadString(const element& e, std::string_view field, std::string* out) {
  std::string_view s;
  if (e.get(s)) return InvalidFieldError(field, "must be a string");
  out->assign(s.data(), s.size());
  return absl::OkStatus();
}

absl::Status ReadInt32(const element& e, std::string_view field, int32_t* out) {
  int64_t v;
  if (e.get(v) || v < INT32_MIN || v > INT32_MAX) {
    return InvalidFieldError(field, "must be an integer");
  }
  *out = static_cast<int32_t>(v);
  return absl::OkStatus();
}

absl::Status ReadDouble(const element& e, std::string_view field, double* out) {
  if (!e.is_number() || e.get_double().get(*out))
    return InvalidFieldError(field, "must be a number");
  return absl::OkStatus();
}

absl::Status ReadBool(const element& e, std::string_view field, bool* out) {
  if (e.get(*out)) return InvalidFieldError(field, "must be true or false");
  return absl::OkStatus();
}

void BeginChunk(JsonWriter& w, const ChunkHeader& header) {
  w.BeginObject()
      .Key("id")
      .String(header.id)
      .Key("object")
      .String("chat.completion.chunk")
      .Key("created")
      .Int(header.created)
      .Key("model")
      .String(header.model);
}

std::string AsEvent(const JsonWriter& w) { return absl::StrCat("data: ", w.str(), "\n\n"); }

}  // namespace turnpike::openai_json
