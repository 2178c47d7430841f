// The response side of the OpenAI wire format (server/http/openai_wire.h): chat.completion
// objects and their stream chunks, embedding and model lists, and errors (with the HTTP status
// and retry-after a status maps to). Tool calls are written by openai_tools_wire.cc. Stateless;
// thread-safe.
#include "server/http/openai_wire.h"

#include <algorithm>
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

namespace turnpike {
namespace {

using openai_json::AsEvent;
using openai_json::BeginChunk;

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
