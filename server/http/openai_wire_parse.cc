// The request side of the OpenAI wire format (server/http/openai_wire.h): the bodies of POST
// /v1/chat/completions and /v1/embeddings read into the gateway's own requests, every error an
// INVALID_ARGUMENT naming the field in the request's own names. Tools, images and response formats
// are read by openai_tools_wire.cc. Stateless; thread-safe.
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "server/http/openai_json.h"
#include "server/http/openai_tools_wire.h"
#include "server/http/openai_wire.h"
#include "simdjson.h"

namespace turnpike {
namespace {

using openai_json::Member;
using openai_json::ParseObject;
using openai_json::ReadBool;
using openai_json::ReadDouble;
using openai_json::ReadInt32;
using openai_json::ReadString;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr int kMaxMetadata = 16;

absl::Status ReadMessages(const object& root, v1::StreamCompletionRequest* request) {
  element e;
  simdjson::dom::array messages;
  if (!Member(root, "messages", &e)) return InvalidFieldError("messages", "is required");
  if (e.get(messages)) return InvalidFieldError("messages", "must be an array");
  size_t i = 0;
  for (element m : messages) {
    const std::string field = absl::StrCat("messages[", i++, "]");
    object o;
    if (m.get(o)) return InvalidFieldError(field, "must be an object");
    std::string role;
    if (!Member(o, "role", &e)) return InvalidFieldError(field + ".role", "is required");
    if (absl::Status s = ReadString(e, field + ".role", &role); !s.ok()) return s;
    v1::Message* message = request->add_messages();
    if (role == "system" || role == "developer") {
      message->set_role(v1::ROLE_SYSTEM);
    } else if (role == "user") {
      message->set_role(v1::ROLE_USER);
    } else if (role == "assistant") {
      message->set_role(v1::ROLE_ASSISTANT);
    } else if (role == "tool") {
      message->set_role(v1::ROLE_TOOL);
      if (!Member(o, "tool_call_id", &e)) {
        return InvalidFieldError(field + ".tool_call_id", "is required");
      }
      if (absl::Status s = ReadString(e, field + ".tool_call_id", message->mutable_tool_call_id());
          !s.ok()) {
        return s;
      }
    } else {
      return InvalidFieldError(field + ".role",
                               absl::StrCat("\"", role,
                                            "\" is not supported; use system, developer, user, "
                                            "assistant or tool"));
    }
    if (Member(o, "content", &e)) {
      if (absl::Status s = ReadOpenAiContent(e, field + ".content", message); !s.ok()) return s;
    } else if (message->role() != v1::ROLE_ASSISTANT) {
      return InvalidFieldError(field + ".content", "is required");
    }
    if (message->role() == v1::ROLE_ASSISTANT && Member(o, "tool_calls", &e)) {
      if (absl::Status s = ReadOpenAiToolCalls(e, field + ".tool_calls", message); !s.ok())
        return s;
    }
  }
  if (request->messages_size() == 0) {
    return InvalidFieldError("messages", "at least one message is required");
  }
  return absl::OkStatus();
}

absl::Status ReadCommon(const object& root, std::string* model, std::string* user,
                        google::protobuf::Map<std::string, std::string>* tags) {
  element e;
  if (!Member(root, "model", &e)) return InvalidFieldError("model", "is required");
  if (absl::Status s = ReadString(e, "model", model); !s.ok()) return s;
  if (model->empty()) return InvalidFieldError("model", "must not be empty");
  if (Member(root, "user", &e)) {
    if (absl::Status s = ReadString(e, "user", user); !s.ok()) return s;
  }
  // OpenAI's request metadata (string pairs) becomes the request's tags.
  if (Member(root, "metadata", &e)) {
    object metadata;
    if (e.get(metadata)) return InvalidFieldError("metadata", "must be an object of strings");
    int n = 0;
    for (auto [key, value] : metadata) {
      if (++n > kMaxMetadata) {
        return InvalidFieldError("metadata", absl::StrCat("at most ", kMaxMetadata, " pairs"));
      }
      std::string v;
      if (absl::Status s = ReadString(value, absl::StrCat("metadata.", Absl(key)), &v); !s.ok())
        return s;
      (*tags)[std::string(key)] = std::move(v);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiChatRequest> ParseOpenAiChatRequest(std::string_view body) {
  object root;
  if (absl::Status s = ParseObject(body, &root); !s.ok()) return s;
  OpenAiChatRequest out;
  v1::StreamCompletionRequest& r = out.request;
  if (absl::Status s = ReadCommon(root, r.mutable_capability(), r.mutable_user(), r.mutable_tags());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadMessages(root, &r); !s.ok()) return s;
  element e;
  // max_completion_tokens is the newer name; either sets the bound.
  for (std::string_view key : {"max_tokens", "max_completion_tokens"}) {
    if (!Member(root, key, &e)) continue;
    int32_t v;
    if (absl::Status s = ReadInt32(e, key, &v); !s.ok()) return s;
    r.set_max_tokens(v);
  }
  if (Member(root, "temperature", &e)) {
    double v;
    if (absl::Status s = ReadDouble(e, "temperature", &v); !s.ok()) return s;
    r.set_temperature(v);
  }
  if (Member(root, "top_p", &e)) {
    double v;
    if (absl::Status s = ReadDouble(e, "top_p", &v); !s.ok()) return s;
    r.set_top_p(v);
  }
  if (Member(root, "stop", &e)) {
    if (e.is_string()) {
      if (absl::Status s = ReadString(e, "stop", r.add_stop()); !s.ok()) return s;
    } else {
      simdjson::dom::array stops;
      if (e.get(stops)) return InvalidFieldError("stop", "must be a string or an array of strings");
      size_t i = 0;
      for (element stop : stops) {
        if (absl::Status s = ReadString(stop, absl::StrCat("stop[", i++, "]"), r.add_stop());
            !s.ok())
          return s;
      }
    }
  }
  if (Member(root, "n", &e)) {
    int32_t n;
    if (absl::Status s = ReadInt32(e, "n", &n); !s.ok()) return s;
    if (n != 1) return InvalidFieldError("n", "only n=1 is supported");
  }
  if (absl::Status s = ReadOpenAiToolOptions(root, &r); !s.ok()) return s;
  if (Member(root, "stream", &e)) {
    if (absl::Status s = ReadBool(e, "stream", &out.stream); !s.ok()) return s;
  }
  if (Member(root, "stream_options", &e)) {
    object options;
    if (e.get(options)) return InvalidFieldError("stream_options", "must be an object");
    if (Member(options, "include_usage", &e)) {
      if (absl::Status s = ReadBool(e, "stream_options.include_usage", &out.include_usage); !s.ok())
        return s;
    }
  }
  return out;
}

absl::StatusOr<OpenAiEmbedRequest> ParseOpenAiEmbedRequest(std::string_view body) {
  object root;
  if (absl::Status s = ParseObject(body, &root); !s.ok()) return s;
  OpenAiEmbedRequest out;
  v1::EmbedRequest& r = out.request;
  if (absl::Status s = ReadCommon(root, r.mutable_capability(), r.mutable_user(), r.mutable_tags());
      !s.ok()) {
    return s;
  }
  element e;
  if (!Member(root, "input", &e)) return InvalidFieldError("input", "is required");
  if (e.is_string()) {
    if (absl::Status s = ReadString(e, "input", r.add_inputs()); !s.ok()) return s;
  } else {
    simdjson::dom::array inputs;
    if (e.get(inputs)) return InvalidFieldError("input", "must be a string or an array of strings");
    size_t i = 0;
    for (element input : inputs) {
      const std::string field = absl::StrCat("input[", i++, "]");
      if (!input.is_string()) {
        return InvalidFieldError(field, "must be a string (token arrays are not supported)");
      }
      if (absl::Status s = ReadString(input, field, r.add_inputs()); !s.ok()) return s;
    }
  }
  if (Member(root, "dimensions", &e)) {
    int32_t v;
    if (absl::Status s = ReadInt32(e, "dimensions", &v); !s.ok()) return s;
    r.set_dimensions(v);
  }
  if (Member(root, "encoding_format", &e)) {
    std::string format;
    if (absl::Status s = ReadString(e, "encoding_format", &format); !s.ok()) return s;
    if (format != "float" && format != "base64") {
      return InvalidFieldError("encoding_format", "must be \"float\" or \"base64\"");
    }
    out.base64 = format == "base64";
  }
  return out;
}

}  // namespace turnpike
