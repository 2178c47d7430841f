#include "server/exchange/chat_request.h"

#include <openssl/sha.h>

#include <cstring>

namespace turnpike {
namespace {

void AppendField(std::string* out, std::string_view value) {
  const uint64_t n = value.size();
  out->append(reinterpret_cast<const char*>(&n), sizeof(n));
  out->append(value);
}

void AppendNumber(std::string* out, std::optional<double> value) {
  if (!value.has_value()) {
    out->push_back('\0');
    return;
  }
  out->push_back('\1');
  double v = *value;
  char bytes[sizeof(v)];
  std::memcpy(bytes, &v, sizeof(v));
  out->append(bytes, sizeof(bytes));
}

}  // namespace

std::vector<v1::RequestFeature> ChatFeatures(const ChatRequest& request) {
  bool tools = request.tools != nullptr && !request.tools->empty();
  bool tool_results = false, images = false;
  if (request.messages != nullptr) {
    for (const v1::Message& m : *request.messages) {
      tool_results |= m.tool_calls_size() > 0 || m.role() == v1::ROLE_TOOL;
      for (const v1::ContentPart& p : m.parts()) images |= p.has_image();
    }
  }
  std::vector<v1::RequestFeature> out;
  if (tools) out.push_back(v1::REQUEST_FEATURE_TOOLS);
  if (tool_results) out.push_back(v1::REQUEST_FEATURE_TOOL_RESULTS);
  if (images) out.push_back(v1::REQUEST_FEATURE_IMAGES);
  switch (request.response_format.type()) {
    case v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT:
      out.push_back(v1::REQUEST_FEATURE_JSON_OBJECT);
      break;
    case v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
      out.push_back(v1::REQUEST_FEATURE_JSON_SCHEMA);
      break;
    default:
      break;
  }
  return out;
}

std::string ChatCacheKey(std::string_view capability, const ChatRequest& request,
                         int32_t max_tokens) {
  std::string normalized;
  AppendField(&normalized, capability);
  AppendField(&normalized, std::to_string(max_tokens));
  AppendNumber(&normalized, request.temperature);
  AppendNumber(&normalized, request.top_p);
  AppendField(&normalized, std::to_string(request.stop.size()));
  for (const std::string& s : request.stop) AppendField(&normalized, s);
  if (request.messages != nullptr) {
    AppendField(&normalized, std::to_string(request.messages->size()));
    for (const v1::Message& m : *request.messages) {
      AppendField(&normalized, std::to_string(static_cast<int>(m.role())));
      AppendField(&normalized, m.content());
      // Parts, tool calls and tool results only when present, so plain-text keys stay as they were.
      if (m.parts_size() > 0 || m.tool_calls_size() > 0 || !m.tool_call_id().empty()) {
        v1::Message rest = m;
        rest.clear_role();
        rest.clear_content();
        AppendField(&normalized, rest.SerializeAsString());
      }
    }
  }
  if (request.tools != nullptr && !request.tools->empty()) {
    for (const v1::Tool& t : *request.tools) AppendField(&normalized, t.SerializeAsString());
    AppendField(&normalized, request.tool_choice.SerializeAsString());
  }
  if (request.response_format.type() != v1::RESPONSE_FORMAT_TYPE_UNSPECIFIED) {
    AppendField(&normalized, request.response_format.SerializeAsString());
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(normalized.data()), normalized.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

const ChatRequest& ChatFormFor(const ChatRequest& request, const TargetEntry& target) {
  if (request.without_json_schema != nullptr &&
      !target.features.Supports(v1::REQUEST_FEATURE_JSON_SCHEMA)) {
    return *request.without_json_schema;
  }
  return request;
}

}  // namespace turnpike
