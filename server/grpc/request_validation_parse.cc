// Strict parsing of data-plane requests (server/grpc/request_validation.h): the message is parsed
// from the raw bytes, and when the generated parser rejects it, the bytes are walked without a
// schema to name the string field with invalid UTF-8. Stateless; thread-safe.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/protobuf/unknown_field_set.h"
#include "server/grpc/request_validation.h"
#include "simdjson.h"

namespace turnpike {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

absl::Status Flatten(const grpc::ByteBuffer& buffer, std::string* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InvalidArgumentError("request: unreadable message");
  out->clear();
  out->reserve(buffer.Length());
  for (const grpc::Slice& s : slices)
    out->append(reinterpret_cast<const char*>(s.begin()), s.size());
  return absl::OkStatus();
}

bool ValidUtf8(const std::string& s) { return simdjson::validate_utf8(s.data(), s.size()); }

// Field paths of the string fields to check, by field number, for a schema-less walk.
struct StringFieldSpec {
  int number;
  const char* name;
  bool repeated;
  // For message fields: the nested string fields (map entries are messages too).
  std::vector<StringFieldSpec> nested;
};

// Finds the first string field with invalid UTF-8, walking the wire format without a schema so
// that it works on bytes the generated parser rejected.
std::string FindInvalidUtf8(const UnknownFieldSet& set, const std::vector<StringFieldSpec>& specs,
                            const std::string& prefix) {
  std::vector<int> counters(specs.size(), 0);
  for (int i = 0; i < set.field_count(); ++i) {
    const UnknownField& field = set.field(i);
    if (field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    for (size_t s = 0; s < specs.size(); ++s) {
      const StringFieldSpec& spec = specs[s];
      if (spec.number != field.number()) continue;
      std::string path = prefix + spec.name;
      if (spec.repeated) absl::StrAppend(&path, "[", counters[s]++, "]");
      if (spec.nested.empty()) {
        if (!ValidUtf8(field.length_delimited())) return path;
      } else {
        UnknownFieldSet nested;
        if (nested.ParseFromString(field.length_delimited())) {
          std::string bad = FindInvalidUtf8(nested, spec.nested, path + ".");
          if (!bad.empty()) return bad;
        }
      }
    }
  }
  return "";
}

template <typename Message>
absl::Status ParseStrict(const grpc::ByteBuffer& buffer, Message* message,
                         const std::vector<StringFieldSpec>& string_fields) {
  std::string bytes;
  if (absl::Status s = Flatten(buffer, &bytes); !s.ok()) return s;
  if (message->ParseFromString(bytes)) return absl::OkStatus();
  UnknownFieldSet set;
  if (set.ParseFromString(bytes)) {
    std::string bad = FindInvalidUtf8(set, string_fields, "");
    if (!bad.empty()) return InvalidFieldError(bad, "invalid UTF-8 (string fields must be UTF-8)");
  }
  return InvalidFieldError("request", "not a valid protobuf message");
}

const std::vector<StringFieldSpec>& CompletionStringFields() {
  static const auto* specs = new std::vector<StringFieldSpec>{
      {1, "capability", false, {}},
      {2,
       "messages",
       true,
       {{2, "content", false, {}},
        {3,
         "parts",
         true,
         {{1, "text", false, {}},
          {2, "image", false, {{1, "url", false, {}}, {3, "media_type", false, {}}}}}},
        {4,
         "tool_calls",
         true,
         {{1, "id", false, {}}, {2, "name", false, {}}, {3, "arguments_json", false, {}}}},
        {5, "tool_call_id", false, {}}}},
      {6, "stop", true, {}},
      {7, "user", false, {}},
      {8, "tags", true, {{1, "key", false, {}}, {2, "value", false, {}}}},
      {9, "request_id", false, {}},
      {11,
       "tools",
       true,
       {{1, "name", false, {}}, {2, "description", false, {}}, {3, "parameters_json", false, {}}}},
      {12, "tool_choice", false, {{2, "tool_name", false, {}}}},
      {13,
       "response_format",
       false,
       {{2, "json_schema", false, {}}, {3, "schema_name", false, {}}}},
  };
  return *specs;
}

const std::vector<StringFieldSpec>& EmbedStringFields() {
  static const auto* specs = new std::vector<StringFieldSpec>{
      {1, "capability", false, {}},
      {2, "inputs", true, {}},
      {4, "user", false, {}},
      {5, "tags", true, {{1, "key", false, {}}, {2, "value", false, {}}}},
      {6, "request_id", false, {}},
  };
  return *specs;
}

const std::vector<StringFieldSpec>& ClassifyStringFields() {
  static const auto* specs = new std::vector<StringFieldSpec>{
      {1, "capability", false, {}},
      {2, "text", false, {}},
      {3,
       "parts",
       true,
       {{1, "text", false, {}},
        {2, "image", false, {{1, "url", false, {}}, {3, "media_type", false, {}}}}}},
      {4, "labels", true, {{1, "name", false, {}}, {2, "description", false, {}}}},
      {6, "instructions", false, {}},
      {7, "user", false, {}},
      {8, "tags", true, {{1, "key", false, {}}, {2, "value", false, {}}}},
      {9, "request_id", false, {}},
  };
  return *specs;
}

}  // namespace

absl::Status ParseCompletionRequest(const grpc::ByteBuffer& buffer,
                                    v1::StreamCompletionRequest* request) {
  return ParseStrict(buffer, request, CompletionStringFields());
}

absl::Status ParseEmbedRequest(const grpc::ByteBuffer& buffer, v1::EmbedRequest* request) {
  return ParseStrict(buffer, request, EmbedStringFields());
}

absl::Status ParseClassifyRequest(const grpc::ByteBuffer& buffer, v1::ClassifyRequest* request) {
  return ParseStrict(buffer, request, ClassifyStringFields());
}

}  // namespace turnpike
