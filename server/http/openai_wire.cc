#include "server/http/openai_wire.h"

#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "google/rpc/error_details.pb.h"
#include "server/http/openai_json.h"
#include "server/http/openai_tools_wire.h"
#include "simdjson.h"

namespace turnpike {
namespace {

using openai_json::AsEvent;
using openai_json::BeginChunk;
using openai_json::Member;
using openai_json::ParseObject;
using openai_json::ReadBool;
using openai_json::ReadDouble;
using openai_json::ReadInt32;
using openai_json::ReadString;
using simdjson::dom::element;
using simdjson::dom::element_type;
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

void WriteUsage(JsonWriter& w, const v1::Usage& usage) {
  w.BeginObject()
      .Key("prompt_tokens")
      .Int(usage.input_tokens())
      .Key("completion_tokens")
      .Int(usage.output_tokens())
      .Key("total_tokens")
      .Int(usage.input_tokens() + usage.output_tokens());
  if (usage.cached_input_tokens() > 0) {
    w.Key("prompt_tokens_details").BeginObject();
    w.Key("cached_tokens").Int(usage.cached_input_tokens()).EndObject();
  }
  if (usage.reasoning_output_tokens() > 0) {
    w.Key("completion_tokens_details").BeginObject();
    w.Key("reasoning_tokens").Int(usage.reasoning_output_tokens()).EndObject();
  }
  w.EndObject();
}

// One choice with `delta` already open: closes it and the chunk.
std::string ChoiceChunk(const ChunkHeader& header, std::string_view role, std::string_view text,
                        std::string_view finish_reason, bool include_usage) {
  JsonWriter w;
  BeginChunk(w, header);
  w.Key("choices").BeginArray().BeginObject().Key("index").Int(0).Key("delta").BeginObject();
  if (!role.empty()) w.Key("role").String(role);
  if (!role.empty() || !text.empty()) w.Key("content").String(text);
  w.EndObject().Key("finish_reason");
  if (finish_reason.empty()) {
    w.Null();
  } else {
    w.String(finish_reason);
  }
  w.EndObject().EndArray();
  if (include_usage) w.Key("usage").Null();
  w.EndObject();
  return AsEvent(w);
}

struct ErrorFacts {
  int http_status;
  std::string_view type;
};

ErrorFacts FactsOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, "invalid_request_error"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "authentication_error"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_error"};
    case absl::StatusCode::kNotFound:
      return {404, "invalid_request_error"};
    case absl::StatusCode::kResourceExhausted:
      return {429, "rate_limit_error"};
    case absl::StatusCode::kUnavailable:
      return {503, "service_unavailable"};
    case absl::StatusCode::kDeadlineExceeded:
      return {504, "timeout"};
    case absl::StatusCode::kCancelled:
      return {499, "cancelled"};
    default:  // FAILED_PRECONDITION (the gateway's provider credential or quota), INTERNAL, ...
      return {500, "server_error"};
  }
}

std::string ErrorObject(const absl::Status& status) {
  const ErrorFacts facts = FactsOf(status.code());
  std::string param;
  if (auto bad = GetDetail<google::rpc::BadRequest>(status);
      bad.has_value() && bad->field_violations_size() > 0) {
    param = bad->field_violations(0).field();
  }
  std::string code;
  if (auto info = GetDetail<google::rpc::ErrorInfo>(status); info.has_value()) {
    code = info->reason() == "CAPABILITY_NOT_FOUND" ? "model_not_found"
                                                    : absl::AsciiStrToLower(info->reason());
  }
  JsonWriter w;
  w.BeginObject().Key("error").BeginObject();
  w.Key("message").String(Std(status.message()));
  w.Key("type").String(facts.type);
  w.Key("param");
  if (param.empty() || param == "body") {
    w.Null();
  } else {
    w.String(param);
  }
  w.Key("code");
  if (code.empty()) {
    w.Null();
  } else {
    w.String(code);
  }
  w.EndObject().EndObject();
  return w.Release();
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

std::string_view OpenAiFinishReason(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_CONTENT_FILTER:
      return "content_filter";
    case v1::FINISH_REASON_TOOL_CALLS:
      return "tool_calls";
    default:
      return "stop";
  }
}

std::string ChatCompletionJson(const ChunkHeader& header, std::string_view text,
                               const std::vector<v1::ToolCall>& tool_calls,
                               const v1::CompletionFinish& finish) {
  JsonWriter w;
  w.BeginObject()
      .Key("id")
      .String(header.id)
      .Key("object")
      .String("chat.completion")
      .Key("created")
      .Int(header.created)
      .Key("model")
      .String(header.model);
  w.Key("choices").BeginArray().BeginObject().Key("index").Int(0);
  w.Key("message").BeginObject().Key("role").String("assistant").Key("content");
  // A reply that only calls tools has "content": null, as OpenAI's.
  if (text.empty() && !tool_calls.empty()) {
    w.Null();
  } else {
    w.String(text);
  }
  if (!tool_calls.empty()) WriteOpenAiToolCalls(w, tool_calls);
  w.Key("refusal").Null().EndObject();
  w.Key("logprobs").Null();
  w.Key("finish_reason").String(OpenAiFinishReason(finish.finish_reason()));
  w.EndObject().EndArray();
  w.Key("usage");
  WriteUsage(w, finish.usage());
  w.EndObject();
  return w.Release();
}

std::string RoleChunkEvent(const ChunkHeader& header, bool include_usage) {
  return ChoiceChunk(header, "assistant", "", "", include_usage);
}

std::string TextChunkEvent(const ChunkHeader& header, std::string_view text, bool include_usage) {
  return ChoiceChunk(header, "", text, "", include_usage);
}

std::string FinishChunkEvent(const ChunkHeader& header, v1::FinishReason reason,
                             bool include_usage) {
  return ChoiceChunk(header, "", "", OpenAiFinishReason(reason), include_usage);
}

std::string UsageChunkEvent(const ChunkHeader& header, const v1::Usage& usage) {
  JsonWriter w;
  BeginChunk(w, header);
  w.Key("choices").BeginArray().EndArray().Key("usage");
  WriteUsage(w, usage);
  w.EndObject();
  return AsEvent(w);
}

std::string EmbeddingListJson(const v1::EmbedResponse& response, std::string_view model,
                              bool base64) {
  JsonWriter w;
  w.BeginObject().Key("object").String("list").Key("data").BeginArray();
  for (const v1::Embedding& e : response.embeddings()) {
    w.BeginObject().Key("object").String("embedding").Key("index").Int(e.index());
    w.Key("embedding");
    if (base64) {
      std::string bytes(static_cast<size_t>(e.values_size()) * 4, '\0');
      for (int i = 0; i < e.values_size(); ++i) {  // little-endian float32, as OpenAI sends
        const float f = e.values(i);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
      }
      w.String(absl::Base64Escape(bytes));
    } else {
      w.BeginArray();
      for (float v : e.values()) w.Double(v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray().Key("model").String(model).Key("usage").BeginObject();
  w.Key("prompt_tokens").Int(response.usage().input_tokens());
  w.Key("total_tokens").Int(response.usage().input_tokens()).EndObject();
  w.EndObject();
  return w.Release();
}

std::string ModelJson(std::string_view capability) {
  JsonWriter w;
  w.BeginObject()
      .Key("id")
      .String(capability)
      .Key("object")
      .String("model")
      .Key("created")
      .Int(0)
      .Key("owned_by")
      .String("turnpike")
      .EndObject();
  return w.Release();
}

std::string ModelListJson(const std::vector<std::string>& capabilities) {
  JsonWriter w;
  w.BeginObject().Key("object").String("list").Key("data").BeginArray();
  for (const std::string& c : capabilities) w.Raw(ModelJson(c));
  w.EndArray().EndObject();
  return w.Release();
}

HttpError ToHttpError(const absl::Status& status) {
  HttpError out;
  out.http_status = FactsOf(status.code()).http_status;
  out.body = ErrorObject(status);
  if (auto retry = GetDetail<google::rpc::RetryInfo>(status); retry.has_value()) {
    const int64_t millis =
        retry->retry_delay().seconds() * 1000 + retry->retry_delay().nanos() / 1000000;
    out.retry_after_seconds = std::max<int64_t>(1, (millis + 999) / 1000);
  }
  return out;
}

std::string ErrorEvent(const absl::Status& status) {
  return absl::StrCat("data: ", ErrorObject(status), "\n\n");
}

}  // namespace turnpike
