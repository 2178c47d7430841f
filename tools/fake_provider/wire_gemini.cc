// Gemini generateContent / streamGenerateContent (docs/providers.md §3): every stream chunk is a
// complete GenerateContentResponse with cumulative usageMetadata; finishReason rides on the
// last chunk; no [DONE]; CRLF framing by default; errors are google.rpc.Status JSON.
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {
namespace {

std::string_view GeminiStatus(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 500:
      return "INTERNAL";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

std::string GeminiMessage(int status, const std::string& model) {
  switch (status) {
    case 400:
      return "Request contains an invalid argument.";
    case 403:
      return "The caller does not have permission";
    case 404:
      return absl::StrCat("models/", model.empty() ? "gemini-fake" : model,
                          " is not found for API version v1beta, or is not supported for "
                          "generateContent. Call ListModels to see the list of available models "
                          "and their supported methods.");
    case 429:
      return "You exceeded your current quota, please check your plan and billing details. For "
             "more information on this error, head to: https://ai.google.dev/gemini-api/docs/"
             "rate-limits.";
    case 500:
      return "An internal error has occurred. Please retry or report in "
             "https://developers.generativeai.google/guide/troubleshooting";
    case 503:
      return "The model is overloaded. Please try again later.";
    case 504:
      return "Deadline expired before operation could complete.";
    default:
      return absl::StrCat(Absl(ReasonPhrase(status)), " (injected by turnpike-fake-provider)");
  }
}

constexpr char kApiKeyInvalid[] =
    "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
    "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
    "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\","
    "\"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}},{\"@type\":"
    "\"type.googleapis.com/google.rpc.LocalizedMessage\",\"locale\":\"en-US\",\"message\":"
    "\"API key not valid. Please pass a valid API key.\"}]}}";

class GeminiWireImpl : public WireFormat {
 public:
  std::string_view StreamContentType() const override { return "text/event-stream"; }
  LineEnding DefaultLineEnding() const override { return LineEnding::kCrLf; }

  void AppendPrologue(const ResponseContext&, std::vector<SseEvent>*) const override {}

  SseEvent ContentEvent(const ResponseContext& ctx, int index, bool final) const override {
    return DataEvent(Response(ctx, ChunkText(ctx, index), index + 1, final));
  }

  void AppendEpilogue(const ResponseContext& ctx, std::vector<SseEvent>* out) const override {
    // finishReason normally rides on the last content chunk; with no content at all the
    // stream still ends with one (empty) chunk that carries it.
    if (ctx.content_chunks == 0) out->push_back(DataEvent(Response(ctx, "", 0, true)));
  }

  void AppendStreamError(const ResponseContext&, const std::string& type_override,
                         std::vector<SseEvent>* out) const override {
    std::string data =
        absl::StrCat("{\"error\":{\"code\":503,\"message\":", JsonString(GeminiMessage(503, "")),
                     ",\"status\":");
    AppendJsonString(&data, type_override.empty() ? "UNAVAILABLE" : type_override);
    data.append("}}");
    out->push_back(DataEvent(std::move(data)));
  }

  std::string CompletionBody(const ResponseContext& ctx) const override {
    return Response(ctx, ReplyText(ctx), ctx.content_chunks, true);
  }

  std::string EmbeddingsBody(const EmbeddingsContext&) const override { return "{}"; }

  HttpReply Error(const ErrorSpec& spec) const override {
    HttpReply r;
    r.status = spec.status;
    if (spec.kind == ErrorKind::kAuthMissing || spec.kind == ErrorKind::kAuthInvalid) {
      r.status = 400;
      r.body = kApiKeyInvalid;
      return r;
    }
    std::string message = spec.message;
    if (message.empty()) message = GeminiMessage(spec.status, spec.model);
    const std::string status =
        spec.type_override.empty() ? std::string(GeminiStatus(spec.status)) : spec.type_override;
    r.body = absl::StrCat("{\"error\":{\"code\":", spec.status,
                          ",\"message\":", JsonString(message), ",\"status\":", JsonString(status));
    if (spec.status == 429 && !spec.retry_after.empty()) {
      absl::StrAppend(&r.body,
                      ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                      "\"retryDelay\":",
                      JsonString(absl::StrCat(spec.retry_after, "s")), "}]");
    }
    r.body.append("}}");
    return r;
  }

 private:
  static std::string Response(const ResponseContext& ctx, std::string_view text,
                              int64_t candidates_tokens, bool final) {
    std::string out = "{\"candidates\":[{\"content\":{\"parts\":[{";
    if (!ctx.tool_name.empty()) {
      // Gemini sends a call whole, args as an object, and no id (§3.3).
      out.append("\"functionCall\":{\"name\":");
      AppendJsonString(&out, ctx.tool_name);
      out.append(",\"args\":");
      out.append(ReplyText(ctx));
      out.push_back('}');
    } else {
      out.append("\"text\":");
      AppendJsonString(&out, text);
    }
    out.append("}],\"role\":\"model\"}");
    if (final) {
      absl::StrAppend(&out, ",\"finishReason\":\"", ctx.finish_by_length ? "MAX_TOKENS" : "STOP",
                      "\"");
    }
    // docs/providers.md §3.3: cachedContentTokenCount is a part of promptTokenCount; thoughts are
    // not in candidatesTokenCount but are in totalTokenCount. Both appear when a fault set them.
    absl::StrAppend(
        &out, ",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":", ctx.input_tokens,
        ",\"candidatesTokenCount\":", candidates_tokens,
        ",\"totalTokenCount\":", ctx.input_tokens + candidates_tokens + ctx.reasoning_tokens);
    if (ctx.cached_tokens > 0) {
      absl::StrAppend(&out, ",\"cachedContentTokenCount\":", ctx.cached_tokens);
    }
    if (ctx.reasoning_tokens > 0) {
      absl::StrAppend(&out, ",\"thoughtsTokenCount\":", ctx.reasoning_tokens);
    }
    absl::StrAppend(&out, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":",
                    ctx.input_tokens, "}]},\"modelVersion\":");
    AppendJsonString(&out, ctx.model);
    out.append(",\"responseId\":");
    AppendJsonString(&out, ctx.id);
    out.push_back('}');
    return out;
  }
};

}  // namespace

const WireFormat& GeminiWire() {
  static const GeminiWireImpl kWire;
  return kWire;
}

}  // namespace turnpike::fake_provider
