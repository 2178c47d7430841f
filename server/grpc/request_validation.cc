// Validation of data-plane requests once parsed (server/grpc/request_validation.h): the fields
// every request shares (capability, request id, tags), then each method's own (messages, tools,
// images and response formats for completions; inputs for embeddings). Stateless; thread-safe.
#include "server/grpc/request_validation.h"

#include <cstdio>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "simdjson.h"

namespace turnpike {
namespace {

constexpr int kMaxStop = 4;
constexpr int kMaxTags = 32;
constexpr size_t kMaxTagKey = 64;
constexpr size_t kMaxTagValue = 256;
constexpr size_t kMaxRequestId = 128;
constexpr int32_t kMaxMaxTokens = 1000000;
constexpr int kMaxEmbedInputs = 2048;
// OpenAI's limit on tools per request, the smallest of the providers' (docs/tools.md).
constexpr int kMaxTools = 128;
constexpr size_t kMaxToolName = 64;
// Anthropic's limit per image, the smallest of the providers' (docs/tools.md).
constexpr size_t kMaxImageBytes = 5 << 20;

absl::Status ValidateCommon(const std::string& capability, const std::string& request_id,
                            const google::protobuf::Map<std::string, std::string>& tags) {
  if (capability.empty()) return InvalidFieldError("capability", "is required");
  if (request_id.size() > kMaxRequestId) {
    return InvalidFieldError("request_id", absl::StrCat("longer than ", kMaxRequestId, " bytes"));
  }
  if (tags.size() > kMaxTags) {
    return InvalidFieldError("tags", absl::StrCat("more than ", kMaxTags, " tags"));
  }
  for (const auto& [key, value] : tags) {
    if (key.empty() || key.size() > kMaxTagKey) {
      return InvalidFieldError("tags", absl::StrCat("keys must be 1-", kMaxTagKey, " bytes"));
    }
    if (value.size() > kMaxTagValue) {
      return InvalidFieldError(absl::StrCat("tags[", key, "]"),
                               absl::StrCat("longer than ", kMaxTagValue, " bytes"));
    }
  }
  return absl::OkStatus();
}

bool IsJsonObject(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  return parser.parse(text).get(element) == simdjson::SUCCESS && element.is_object();
}

// Letters, digits, '_' and '-', 1 to kMaxToolName bytes (OpenAI's rule, the strictest).
bool ValidToolName(const std::string& name) {
  if (name.empty() || name.size() > kMaxToolName) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

bool SupportedImageType(const std::string& type) {
  return type == "image/png" || type == "image/jpeg" || type == "image/gif" || type == "image/webp";
}

absl::Status ValidateImage(const v1::ImagePart& image, const std::string& path) {
  if (image.has_url()) {
    if (!absl::StartsWith(image.url(), "https://") && !absl::StartsWith(image.url(), "http://") &&
        !absl::StartsWith(image.url(), "data:image/")) {
      return InvalidFieldError(path + ".url", "must be an http(s): or data:image/ URL");
    }
    if (image.url().size() > kMaxImageBytes * 4 / 3 + 64) {
      return InvalidFieldError(path + ".url",
                               absl::StrCat("image larger than ", kMaxImageBytes, " bytes"));
    }
    if (!image.media_type().empty() && !SupportedImageType(image.media_type())) {
      return InvalidFieldError(path + ".media_type",
                               "must be image/png, image/jpeg, image/gif or image/webp");
    }
    return absl::OkStatus();
  }
  if (!image.has_data() || image.data().empty()) {
    return InvalidFieldError(path, "needs a url or data");
  }
  if (image.data().size() > kMaxImageBytes) {
    return InvalidFieldError(path + ".data",
                             absl::StrCat("image larger than ", kMaxImageBytes, " bytes"));
  }
  if (!SupportedImageType(image.media_type())) {
    return InvalidFieldError(path + ".media_type",
                             "must be image/png, image/jpeg, image/gif or image/webp");
  }
  return absl::OkStatus();
}

// Parts, tool calls and tool results of each message (docs/tools.md): a tool result must answer
// a call of an earlier assistant message.
absl::Status ValidateMessageContents(const v1::StreamCompletionRequest& request) {
  absl::flat_hash_set<std::string> call_ids;
  for (int i = 0; i < request.messages_size(); ++i) {
    const v1::Message& m = request.messages(i);
    const std::string path = absl::StrCat("messages[", i, "]");
    if (m.parts_size() > 0 && !m.content().empty()) {
      return InvalidFieldError(path + ".parts", "set content or parts, not both");
    }
    for (int p = 0; p < m.parts_size(); ++p) {
      const v1::ContentPart& part = m.parts(p);
      const std::string part_path = absl::StrCat(path, ".parts[", p, "]");
      if (part.part_case() == v1::ContentPart::PART_NOT_SET) {
        return InvalidFieldError(part_path, "needs text or image");
      }
      if (!part.has_image()) continue;
      if (m.role() != v1::ROLE_USER) {
        return InvalidFieldError(part_path + ".image", "images only in ROLE_USER messages");
      }
      if (absl::Status s = ValidateImage(part.image(), part_path + ".image"); !s.ok()) return s;
    }
    if (m.tool_calls_size() > 0 && m.role() != v1::ROLE_ASSISTANT) {
      return InvalidFieldError(path + ".tool_calls", "only ROLE_ASSISTANT messages carry them");
    }
    for (int c = 0; c < m.tool_calls_size(); ++c) {
      const v1::ToolCall& call = m.tool_calls(c);
      const std::string call_path = absl::StrCat(path, ".tool_calls[", c, "]");
      if (call.id().empty()) return InvalidFieldError(call_path + ".id", "is required");
      if (!ValidToolName(call.name())) {
        return InvalidFieldError(call_path + ".name",
                                 "1-64 letters, digits, '_' or '-' is required");
      }
      if (!call.arguments_json().empty() && !IsJsonObject(call.arguments_json())) {
        return InvalidFieldError(call_path + ".arguments_json", "must be a JSON object");
      }
      call_ids.insert(call.id());
    }
    if (m.role() == v1::ROLE_TOOL) {
      if (m.tool_call_id().empty()) return InvalidFieldError(path + ".tool_call_id", "is required");
      if (!call_ids.contains(m.tool_call_id())) {
        return InvalidFieldError(path + ".tool_call_id",
                                 "names no tool call of an earlier ROLE_ASSISTANT message");
      }
    } else if (!m.tool_call_id().empty()) {
      return InvalidFieldError(path + ".tool_call_id", "only ROLE_TOOL messages carry one");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateToolsAndFormat(const v1::StreamCompletionRequest& request) {
  if (request.tools_size() > kMaxTools) {
    return InvalidFieldError("tools", absl::StrCat("at most ", kMaxTools, " tools"));
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < request.tools_size(); ++i) {
    const v1::Tool& tool = request.tools(i);
    const std::string path = absl::StrCat("tools[", i, "]");
    if (!ValidToolName(tool.name())) {
      return InvalidFieldError(path + ".name", "1-64 letters, digits, '_' or '-' is required");
    }
    if (!names.insert(tool.name()).second) {
      return InvalidFieldError(path + ".name", "another tool has this name");
    }
    if (!tool.parameters_json().empty() && !IsJsonObject(tool.parameters_json())) {
      return InvalidFieldError(path + ".parameters_json", "must be a JSON Schema (a JSON object)");
    }
  }
  const v1::ToolChoice& choice = request.tool_choice();
  if (choice.mode() == v1::TOOL_CHOICE_MODE_TOOL) {
    if (!names.contains(choice.tool_name())) {
      return InvalidFieldError("tool_choice.tool_name", "names none of the request's tools");
    }
  } else if (!choice.tool_name().empty()) {
    return InvalidFieldError("tool_choice.tool_name", "only with TOOL_CHOICE_MODE_TOOL");
  }
  if (!v1::ToolChoiceMode_IsValid(choice.mode())) {
    return InvalidFieldError("tool_choice.mode", "unknown mode");
  }
  if ((choice.mode() == v1::TOOL_CHOICE_MODE_REQUIRED ||
       choice.mode() == v1::TOOL_CHOICE_MODE_TOOL) &&
      request.tools_size() == 0) {
    return InvalidFieldError("tool_choice", "requires tools");
  }
  const v1::ResponseFormat& format = request.response_format();
  if (!v1::ResponseFormatType_IsValid(format.type())) {
    return InvalidFieldError("response_format.type", "unknown type");
  }
  if (format.type() == v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA) {
    if (!IsJsonObject(format.json_schema())) {
      return InvalidFieldError("response_format.json_schema",
                               "must be a JSON Schema (a JSON object)");
    }
    if (!format.schema_name().empty() && !ValidToolName(format.schema_name())) {
      return InvalidFieldError("response_format.schema_name", "1-64 letters, digits, '_' or '-'");
    }
  } else if (!format.json_schema().empty()) {
    return InvalidFieldError("response_format.json_schema",
                             "only with RESPONSE_FORMAT_TYPE_JSON_SCHEMA");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCompletionRequest(const v1::StreamCompletionRequest& request) {
  if (absl::Status s = ValidateCommon(request.capability(), request.request_id(), request.tags());
      !s.ok()) {
    return s;
  }
  if (request.messages_size() == 0) {
    return InvalidFieldError("messages", "at least one message is required");
  }
  for (int i = 0; i < request.messages_size(); ++i) {
    const v1::Role role = request.messages(i).role();
    if (role != v1::ROLE_SYSTEM && role != v1::ROLE_USER && role != v1::ROLE_ASSISTANT &&
        role != v1::ROLE_TOOL) {
      return InvalidFieldError(absl::StrCat("messages[", i, "].role"),
                               "must be ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL");
    }
  }
  bool has_non_system = false;
  for (const v1::Message& m : request.messages()) has_non_system |= m.role() != v1::ROLE_SYSTEM;
  if (!has_non_system) {
    return InvalidFieldError("messages", "needs at least one ROLE_USER or ROLE_ASSISTANT message");
  }
  if (request.has_max_tokens() &&
      (request.max_tokens() <= 0 || request.max_tokens() > kMaxMaxTokens)) {
    return InvalidFieldError("max_tokens", absl::StrCat("must be between 1 and ", kMaxMaxTokens));
  }
  if (request.has_temperature() &&
      !(request.temperature() >= 0.0 && request.temperature() <= 2.0)) {
    return InvalidFieldError("temperature", "must be between 0 and 2");
  }
  if (request.has_top_p() && !(request.top_p() >= 0.0 && request.top_p() <= 1.0)) {
    return InvalidFieldError("top_p", "must be between 0 and 1");
  }
  if (request.stop_size() > kMaxStop) {
    return InvalidFieldError("stop", absl::StrCat("at most ", kMaxStop, " stop sequences"));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    if (request.stop(i).empty()) {
      return InvalidFieldError(absl::StrCat("stop[", i, "]"), "must not be empty");
    }
  }
  const v1::LatencyClass latency_class = request.latency_class();
  if (latency_class != v1::LATENCY_CLASS_UNSPECIFIED &&
      latency_class != v1::LATENCY_CLASS_INTERACTIVE && latency_class != v1::LATENCY_CLASS_BATCH) {
    return InvalidFieldError("latency_class",
                             "must be LATENCY_CLASS_INTERACTIVE or LATENCY_CLASS_BATCH");
  }
  if (absl::Status s = ValidateMessageContents(request); !s.ok()) return s;
  return ValidateToolsAndFormat(request);
}

absl::Status ValidateEmbedRequest(const v1::EmbedRequest& request) {
  if (absl::Status s = ValidateCommon(request.capability(), request.request_id(), request.tags());
      !s.ok()) {
    return s;
  }
  if (request.inputs_size() == 0)
    return InvalidFieldError("inputs", "at least one input is required");
  if (request.inputs_size() > kMaxEmbedInputs) {
    return InvalidFieldError("inputs", absl::StrCat("at most ", kMaxEmbedInputs, " inputs"));
  }
  for (int i = 0; i < request.inputs_size(); ++i) {
    if (request.inputs(i).empty()) {
      return InvalidFieldError(absl::StrCat("inputs[", i, "]"), "must not be empty");
    }
  }
  if (request.has_dimensions() && request.dimensions() <= 0) {
    return InvalidFieldError("dimensions", "must be positive");
  }
  return absl::OkStatus();
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  const uint64_t hi = absl::Uniform<uint64_t>(gen);
  const uint64_t lo = absl::Uniform<uint64_t>(gen);
  char buf[40];
  snprintf(buf, sizeof(buf), "req_%016lx%016lx", static_cast<unsigned long>(hi),
           static_cast<unsigned long>(lo));
  return buf;
}

}  // namespace turnpike
