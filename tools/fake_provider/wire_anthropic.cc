// Anthropic Messages API (docs/providers.md §2): `event:` + `data:` pairs, no [DONE], errors as
// {"type":"error","error":{...},"request_id":...}.
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {
namespace {

std::string_view AnthropicType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 500:
      return "api_error";
    case 504:
      return "timeout_error";
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string AnthropicMessage(int status, std::string_view type, const std::string& model) {
  if (type == "overloaded_error") return "Overloaded";
  switch (status) {
    case 400:
      return "prompt is too long: 210000 tokens > 200000 maximum";
    case 401:
      return "invalid x-api-key";
    case 402:
      return "Your credit balance is too low to access the Anthropic API.";
    case 403:
      return "Your API key does not have permission to use the specified resource.";
    case 404:
      return absl::StrCat("model: ", model.empty() ? "claude-fake" : model);
    case 413:
      return "Request exceeds the maximum allowed number of bytes.";
    case 429:
      return "Number of request tokens has exceeded your per-minute rate limit "
             "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for "
             "current usage. Please reduce the prompt length or the maximum tokens requested, "
             "or try again later.";
    case 500:
      return "Internal server error";
    case 504:
      return "Request timed out";
    default:
      return absl::StrCat(Absl(ReasonPhrase(status)), " (injected by turnpike-fake-provider)");
  }
}

// docs/providers.md §2.3: input_tokens is only the uncached part of the prompt; the cache reads
// and writes are reported beside it. Thinking is inside output_tokens.
std::string Usage(const ResponseContext& ctx, int64_t output_tokens) {
  return absl::StrCat(
      "{\"input_tokens\":", ctx.input_tokens - ctx.cached_tokens - ctx.cache_write_tokens,
      ",\"cache_creation_input_tokens\":", ctx.cache_write_tokens,
      ",\"cache_read_input_tokens\":", ctx.cached_tokens, ",\"output_tokens\":", output_tokens);
}

class AnthropicWireImpl : public WireFormat {
 public:
  std::string_view StreamContentType() const override { return "text/event-stream"; }

  void AppendPrologue(const ResponseContext& ctx, std::vector<SseEvent>* out) const override {
    std::string start = "{\"type\":\"message_start\",\"message\":{\"id\":";
    AppendJsonString(&start, ctx.id);
    start.append(",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":");
    AppendJsonString(&start, ctx.model);
    absl::StrAppend(
        &start, ",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":", Usage(ctx, 1), "}}}");
    out->push_back(NamedEvent("message_start", std::move(start)));
    if (!ctx.tool_name.empty()) {
      // A tool_use block: id and name now, the input as input_json_delta fragments (§2.4).
      std::string block = absl::StrCat(
          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
          "\"tool_use\",\"id\":\"",
          Absl(kToolCallId), "\",\"name\":");
      AppendJsonString(&block, ctx.tool_name);
      block.append(",\"input\":{}}}");
      out->push_back(NamedEvent("content_block_start", std::move(block)));
      out->push_back(NamedEvent("ping", "{\"type\": \"ping\"}"));
      return;
    }
    out->push_back(NamedEvent(
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}"));
    out->push_back(NamedEvent("ping", "{\"type\": \"ping\"}"));
  }

  SseEvent ContentEvent(const ResponseContext& ctx, int index, bool) const override {
    if (!ctx.tool_name.empty()) {
      std::string data =
          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
          "\"input_json_delta\",\"partial_json\":";
      AppendJsonString(&data, ChunkText(ctx, index));
      data.append("}}");
      return NamedEvent("content_block_delta", std::move(data));
    }
    std::string data =
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":";
    AppendJsonString(&data, ChunkText(ctx, index));
    data.append("}}");
    return NamedEvent("content_block_delta", std::move(data));
  }

  void AppendEpilogue(const ResponseContext& ctx, std::vector<SseEvent>* out) const override {
    out->push_back(
        NamedEvent("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"));
    out->push_back(
        NamedEvent("message_delta",
                   absl::StrCat("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"",
                                StopReason(ctx), "\",\"stop_sequence\":null},\"usage\":",
                                Usage(ctx, ctx.content_chunks + ctx.reasoning_tokens), "}}")));
    out->push_back(NamedEvent("message_stop", "{\"type\":\"message_stop\"}"));
  }

  void AppendStreamError(const ResponseContext& ctx, const std::string& type_override,
                         std::vector<SseEvent>* out) const override {
    const std::string type = type_override.empty() ? "overloaded_error" : type_override;
    std::string data = "{\"type\":\"error\",\"error\":{\"type\":";
    AppendJsonString(&data, type);
    data.append(",\"message\":");
    AppendJsonString(&data, AnthropicMessage(529, type, ctx.model));
    data.append("}}");
    out->push_back(NamedEvent("error", std::move(data)));
  }

  std::string CompletionBody(const ResponseContext& ctx) const override {
    std::string out = "{\"id\":";
    AppendJsonString(&out, ctx.id);
    out.append(",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    AppendJsonString(&out, ctx.model);
    if (!ctx.tool_name.empty()) {
      // The whole input object, as the model wrote it.
      absl::StrAppend(&out, ",\"content\":[{\"type\":\"tool_use\",\"id\":\"", Absl(kToolCallId),
                      "\",\"name\":");
      AppendJsonString(&out, ctx.tool_name);
      out.append(",\"input\":");
      out.append(ReplyText(ctx));
    } else {
      out.append(",\"content\":[{\"type\":\"text\",\"text\":");
      AppendJsonString(&out, ReplyText(ctx));
    }
    absl::StrAppend(
        &out, "}],\"stop_reason\":\"", StopReason(ctx), "\",\"stop_sequence\":null,\"usage\":",
        Usage(ctx, ctx.content_chunks + ctx.reasoning_tokens), ",\"service_tier\":\"standard\"}}");
    return out;
  }

  std::string EmbeddingsBody(const EmbeddingsContext&) const override { return "{}"; }

  HttpReply Error(const ErrorSpec& spec) const override {
    std::string type(AnthropicType(spec.status));
    std::string message;
    switch (spec.kind) {
      case ErrorKind::kAuthMissing:
        type = "authentication_error";
        message = "x-api-key header is required";
        break;
      case ErrorKind::kAuthInvalid:
        type = "authentication_error";
        message = "invalid x-api-key";
        break;
      case ErrorKind::kInjected:
        if (!spec.type_override.empty()) type = spec.type_override;
        message =
            spec.message.empty() ? AnthropicMessage(spec.status, type, spec.model) : spec.message;
        break;
      default:
        message = spec.message;
    }
    if (spec.kind != ErrorKind::kInjected && !spec.type_override.empty()) {
      type = spec.type_override;
    }
    HttpReply r;
    r.status = spec.status;
    r.body = "{\"type\":\"error\",\"error\":{\"type\":";
    AppendJsonString(&r.body, type);
    r.body.append(",\"message\":");
    AppendJsonString(&r.body, message);
    r.body.append("},\"request_id\":");
    AppendJsonString(&r.body, spec.request_id);
    r.body.push_back('}');
    AppendResponseHeaders(spec.request_id, &r.headers);
    return r;
  }

  void AppendResponseHeaders(const std::string& request_id, HeaderList* out) const override {
    out->emplace_back("request-id", request_id);
    out->emplace_back("anthropic-organization-id", "00000000-0000-0000-0000-000000000000");
  }

 private:
  static const char* StopReason(const ResponseContext& ctx) {
    if (!ctx.tool_name.empty()) return "tool_use";
    return ctx.finish_by_length ? "max_tokens" : "end_turn";
  }
};

}  // namespace

const WireFormat& AnthropicWire() {
  static const AnthropicWireImpl kWire;
  return kWire;
}

}  // namespace turnpike::fake_provider
