// What the HTTP front door's OpenAI parsers and writers share (openai_wire_parse.cc and
// openai_wire.cc for the chat and embedding bodies and replies, openai_tools_wire.cc for tools,
// images and response formats): reading JSON members into typed fields with an INVALID_ARGUMENT
// naming the field, and the frame of a chat.completion.chunk event. Stateless; thread-safe (the
// parser's storage is per thread).
#ifndef TURNPIKE_SERVER_HTTP_OPENAI_JSON_H_
#define TURNPIKE_SERVER_HTTP_OPENAI_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/json_writer.h"
#include "server/http/openai_wire.h"
#include "simdjson.h"

namespace turnpike::openai_json {

using simdjson::dom::element;
using simdjson::dom::object;

// Parses `body` into `root` (a JSON object).
absl::Status ParseObject(std::string_view body, object* root);
// The member `key`, or false when it is absent or null.
bool Member(const object& o, std::string_view key, element* out);
absl::Status ReadString(const element& e, std::string_view field, std::string* out);
absl::Status ReadInt32(const element& e, std::string_view field, int32_t* out);
absl::Status ReadDouble(const element& e, std::string_view field, double* out);
absl::Status ReadBool(const element& e, std::string_view field, bool* out);

// Opens a chat.completion.chunk object (id, object, created, model); the caller adds choices.
void BeginChunk(JsonWriter& w, const ChunkHeader& header);
// "data: <json>\n\n".
std::string AsEvent(const JsonWriter& w);

}  // namespace turnpike::openai_json

#endif  // TURNPIKE_SERVER_HTTP_OPENAI_JSON_H_
