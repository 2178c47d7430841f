// OpenAI chat-completions dialects: OpenAI itself, Azure OpenAI, and the OpenAI-compatible
// local servers (vLLM, llama.cpp, Ollama) with the quirks documented in docs/providers.md §1, §4,
// §5.
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"
#include "tools/fake_provider/wire_format.h"
#include "tools/fake_provider/wire_openai_errors.h"

namespace turnpike::fake_provider {
namespace {

constexpr char kContentFilterOk[] =
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}";

constexpr char kLlamaFingerprint[] = "b4500-fake";

class OpenAIWireImpl : public WireFormat {
 public:
  explicit OpenAIWireImpl(Provider dialect) : d_(dialect) {}

  std::string_view StreamContentType() const override { return "text/event-stream; charset=utf-8"; }

  void AppendPrologue(const ResponseContext& ctx, std::vector<SseEvent>* out) const override {
    if (d_ == Provider::kLlamaCpp) {
      // llama.cpp sends keep-alive comments while it processes the prompt.
      out->push_back(CommentEvent(""));
      out->push_back(CommentEvent("keep-alive"));
    }
    if (d_ == Provider::kAzure) {
      // Azure's first chunk carries only the prompt content-filter results (§4.3).
      out->push_back(DataEvent(
          absl::StrCat("{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
                       "\"system_fingerprint\":null,\"prompt_filter_results\":[{\"prompt_index\":0,"
                       "\"content_filter_results\":",
                       kContentFilterOk, "}]}")));
    }
    if (!ctx.tool_name.empty()) {
      // The call's first piece: id, type and name, arguments "" (docs/providers.md §1.4).
      std::string head = absl::StrCat(
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"",
          Absl(kToolCallId), "\",\"type\":\"function\",\"function\":{\"name\":");
      AppendJsonString(&head, ctx.tool_name);
      head.append(",\"arguments\":\"\"}}]}");
      out->push_back(DataEvent(Chunk(ctx, head, "null", /*usage_completion=*/0, -1)));
      return;
    }
    if (d_ == Provider::kOllama) return;  // Ollama puts the role on every content delta.
    const char* role_delta =
        d_ == Provider::kLlamaCpp
            ? "{\"role\":\"assistant\",\"content\":null}"
            : (d_ == Provider::kOpenAI
                   ? "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"
                   : "{\"role\":\"assistant\",\"content\":\"\"}");
    out->push_back(DataEvent(Chunk(ctx, role_delta, "null", /*usage_completion=*/0, -1)));
  }

  SseEvent ContentEvent(const ResponseContext& ctx, int index, bool) const override {
    if (!ctx.tool_name.empty()) {
      std::string delta = "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":";
      AppendJsonString(&delta, ChunkText(ctx, index));
      delta.append("}}]}");
      return DataEvent(Chunk(ctx, delta, "null", index + 1, index));
    }
    std::string delta =
        d_ == Provider::kOllama ? "{\"role\":\"assistant\",\"content\":" : "{\"content\":";
    AppendJsonString(&delta, ChunkText(ctx, index));
    delta.push_back('}');
    return DataEvent(Chunk(ctx, delta, "null", index + 1, index));
  }

  void AppendEpilogue(const ResponseContext& ctx, std::vector<SseEvent>* out) const override {
    const std::string finish = absl::StrCat("\"", FinishReason(ctx), "\"");
    const bool usage_chunk = ctx.include_usage;
    out->push_back(DataEvent(Chunk(ctx, "{}", finish, ctx.content_chunks, -2,
                                   /*timings=*/!usage_chunk)));
    if (usage_chunk) out->push_back(DataEvent(UsageChunk(ctx)));
    out->push_back(DataEvent("[DONE]"));
  }

  void AppendStreamError(const ResponseContext&, const std::string& type_override,
                         std::vector<SseEvent>* out) const override {
    ErrorSpec spec;
    spec.status = 500;
    spec.type_override = type_override;
    spec.message = "The server had an error while processing your request. Sorry about that!";
    out->push_back(DataEvent(ErrorBody(spec)));
    // vLLM follows an in-stream error with [DONE] (§5.1); the others just end the body.
    if (d_ == Provider::kVllm) out->push_back(DataEvent("[DONE]"));
  }

  std::string CompletionBody(const ResponseContext& ctx) const override;
  std::string EmbeddingsBody(const EmbeddingsContext& ctx) const override;
  HttpReply Error(const ErrorSpec& spec) const override;
  void AppendResponseHeaders(const std::string& request_id, HeaderList* out) const override;

 private:
  const char* FinishReason(const ResponseContext& ctx) const {
    if (!ctx.tool_name.empty()) return "tool_calls";
    return ctx.finish_by_length ? "length" : "stop";
  }

  // `completion` counts content chunks; reasoning tokens are inside completion_tokens
  // (docs/providers.md §1.3), and the details objects say how many of each total were cached or
  // reasoning. The details appear on every dialect when a fault set them.
  void AppendUsage(std::string* out, const ResponseContext& ctx, int64_t content_completion,
                   bool full) const {
    const int64_t p = ctx.input_tokens;
    const int64_t completion = content_completion + ctx.reasoning_tokens;
    switch (d_) {
      case Provider::kLlamaCpp:
        absl::StrAppend(out, "{\"completion_tokens\":", completion, ",\"prompt_tokens\":", p,
                        ",\"total_tokens\":", p + completion);
        break;
      case Provider::kVllm:
        absl::StrAppend(out, "{\"prompt_tokens\":", p, ",\"total_tokens\":", p + completion,
                        ",\"completion_tokens\":", completion);
        break;
      case Provider::kOllama:
        absl::StrAppend(out, "{\"prompt_tokens\":", p, ",\"completion_tokens\":", completion,
                        ",\"total_tokens\":", p + completion);
        break;
      default:
        absl::StrAppend(out, "{\"prompt_tokens\":", p, ",\"completion_tokens\":", completion,
                        ",\"total_tokens\":", p + completion);
        if (full) {
          absl::StrAppend(
              out, ",\"prompt_tokens_details\":{\"cached_tokens\":", ctx.cached_tokens,
              ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":",
              ctx.reasoning_tokens,
              ",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
              "\"rejected_prediction_tokens\":0}}");
        } else {
          if (ctx.cached_tokens > 0) {
            absl::StrAppend(
                out, ",\"prompt_tokens_details\":{\"cached_tokens\":", ctx.cached_tokens, "}");
          }
          absl::StrAppend(out, ",\"completion_tokens_details\":{\"reasoning_tokens\":",
                          ctx.reasoning_tokens, "}}");
        }
        return;
    }
    if (ctx.cached_tokens > 0) {
      absl::StrAppend(out, ",\"prompt_tokens_details\":{\"cached_tokens\":", ctx.cached_tokens,
                      "}");
    }
    if (ctx.reasoning_tokens > 0) {
      absl::StrAppend(
          out, ",\"completion_tokens_details\":{\"reasoning_tokens\":", ctx.reasoning_tokens, "}");
    }
    out->push_back('}');
  }

  void AppendTimings(std::string* out, const ResponseContext& ctx) const {
    absl::StrAppend(out, ",\"timings\":{\"prompt_n\":", ctx.input_tokens,
                    ",\"prompt_ms\":1.5,\"prompt_per_token_ms\":0.1,\"prompt_per_second\":10000.0,"
                    "\"predicted_n\":",
                    ctx.content_chunks,
                    ",\"predicted_ms\":2.5,\"predicted_per_token_ms\":0.5,"
                    "\"predicted_per_second\":2000.0}");
  }

  // One chat.completion.chunk with a single choice. `index` is the content chunk number
  // (-1 role chunk, -2 finish chunk); `timings` adds llama.cpp's timings object. This runs
  // once per streamed token, so it appends straight into one preallocated string.
  std::string Chunk(const ResponseContext& ctx, std::string_view delta,
                    std::string_view finish_reason, int64_t usage_completion, int index,
                    bool timings = false) const {
    std::string out;
    out.reserve(256 + delta.size() + (d_ == Provider::kAzure ? 2 * sizeof(kContentFilterOk) : 0));
    auto append_choice = [&] {
      out.push_back('{');
      if (d_ == Provider::kAzure) {
        out.append("\"content_filter_results\":");
        out.append(index >= 0 ? kContentFilterOk : "{}");
        out.push_back(',');
      }
      if (d_ == Provider::kLlamaCpp) {
        out.append("\"finish_reason\":");
        out.append(finish_reason);
        out.append(",\"index\":0,\"delta\":");
        out.append(delta);
      } else if (d_ == Provider::kOllama) {
        out.append("\"index\":0,\"delta\":");
        out.append(delta);
        out.append(",\"finish_reason\":");
        out.append(finish_reason);
      } else {
        out.append("\"index\":0,\"delta\":");
        out.append(delta);
        out.append(",\"logprobs\":null,\"finish_reason\":");
        out.append(finish_reason);
      }
      out.push_back('}');
    };
    auto append_created = [&] { AppendJsonInt(&out, ctx.created); };
    switch (d_) {
      case Provider::kAzure:
        out.append("{\"choices\":[");
        append_choice();
        out.append("],\"created\":");
        append_created();
        out.append(",\"id\":");
        out.append(ctx.id_json);
        out.append(",\"model\":");
        out.append(ctx.model_json);
        out.append(",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_fake\"");
        break;
      case Provider::kLlamaCpp:
        out.append("{\"choices\":[");
        append_choice();
        out.append("],\"created\":");
        append_created();
        out.append(",\"id\":");
        out.append(ctx.id_json);
        out.append(",\"model\":");
        out.append(ctx.model_json);
        out.append(",\"system_fingerprint\":\"");
        out.append(kLlamaFingerprint);
        out.append("\",\"object\":\"chat.completion.chunk\"");
        break;
      default:
        out.append("{\"id\":");
        out.append(ctx.id_json);
        out.append(",\"object\":\"chat.completion.chunk\",\"created\":");
        append_created();
        out.append(",\"model\":");
        out.append(ctx.model_json);
        if (d_ == Provider::kOpenAI) {
          out.append(",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fake\"");
        } else if (d_ == Provider::kOllama) {
          out.append(",\"system_fingerprint\":\"fp_ollama\"");
        }
        out.append(",\"choices\":[");
        append_choice();
        out.push_back(']');
    }
    if (d_ == Provider::kVllm && ctx.continuous_usage) {
      out.append(",\"usage\":");
      AppendUsage(&out, ctx, usage_completion, false);
    } else if (ctx.include_usage && (d_ == Provider::kOpenAI || d_ == Provider::kVllm)) {
      out.append(",\"usage\":null");  // spec: null on every chunk but the usage chunk
    }
    if (d_ == Provider::kOpenAI && ctx.include_obfuscation) AppendObfuscation(&out, index);
    if (timings && d_ == Provider::kLlamaCpp) AppendTimings(&out, ctx);
    out.push_back('}');
    return out;
  }

  static void AppendObfuscation(std::string* out, int index) {
    static constexpr std::string_view kPad = "Zx9QhT3kLw";
    const int n = index < 0 ? (index == -2 ? 0 : 4) : 1 + (index * 7) % 9;
    absl::StrAppend(out, ",\"obfuscation\":\"", Absl(kPad.substr(0, n)), "\"");
  }

  std::string UsageChunk(const ResponseContext& ctx) const {
    std::string out;
    std::string usage;
    AppendUsage(&usage, ctx, ctx.content_chunks, false);
    const std::string& id = ctx.id_json;
    const std::string& model = ctx.model_json;
    switch (d_) {
      case Provider::kAzure:
        absl::StrAppend(&out, "{\"choices\":[],\"created\":", ctx.created, ",\"id\":", id,
                        ",\"model\":", model,
                        ",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_fake\","
                        "\"usage\":",
                        usage, "}");
        break;
      case Provider::kLlamaCpp:
        absl::StrAppend(&out, "{\"choices\":[],\"created\":", ctx.created, ",\"id\":", id,
                        ",\"model\":", model, ",\"system_fingerprint\":\"", kLlamaFingerprint,
                        "\",\"object\":\"chat.completion.chunk\",\"usage\":", usage);
        AppendTimings(&out, ctx);
        out.push_back('}');
        break;
      case Provider::kOllama:
        absl::StrAppend(
            &out, "{\"id\":", id, ",\"object\":\"chat.completion.chunk\",\"created\":", ctx.created,
            ",\"model\":", model,
            ",\"system_fingerprint\":\"fp_ollama\",\"choices\":[],\"usage\":", usage, "}");
        break;
      case Provider::kVllm:
        absl::StrAppend(&out, "{\"id\":", id,
                        ",\"object\":\"chat.completion.chunk\",\"created\":", ctx.created,
                        ",\"model\":", model, ",\"choices\":[],\"usage\":", usage, "}");
        break;
      default:
        absl::StrAppend(&out, "{\"id\":", id,
                        ",\"object\":\"chat.completion.chunk\",\"created\":", ctx.created,
                        ",\"model\":", model,
                        ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fake\","
                        "\"choices\":[],\"usage\":",
                        usage);
        if (ctx.include_obfuscation) out.append(",\"obfuscation\":\"Zx9Q\"");
        out.push_back('}');
    }
    return out;
  }

  // The {"error":{...}} body in this dialect's field layout.
  std::string ErrorBody(const ErrorSpec& spec) const;

  Provider d_;
};

std::string OpenAIWireImpl::ErrorBody(const ErrorSpec& spec) const {
  return OpenAIFamilyErrorBody(d_, spec);
}

HttpReply OpenAIWireImpl::Error(const ErrorSpec& spec) const {
  HttpReply r;
  r.status = spec.status;
  r.body = ErrorBody(spec);
  AppendResponseHeaders(spec.request_id, &r.headers);
  return r;
}

void OpenAIWireImpl::AppendResponseHeaders(const std::string& request_id, HeaderList* out) const {
  if (d_ == Provider::kOpenAI) {
    out->emplace_back("x-request-id", request_id);
    out->emplace_back("openai-version", "2020-10-01");
    out->emplace_back("openai-processing-ms", "1");
    out->emplace_back("x-ratelimit-limit-requests", "10000");
    out->emplace_back("x-ratelimit-remaining-requests", "9999");
    out->emplace_back("x-ratelimit-reset-requests", "6ms");
  } else if (d_ == Provider::kAzure) {
    out->emplace_back("apim-request-id", request_id);
    out->emplace_back("x-ms-region", "Fake Region");
    out->emplace_back("x-ratelimit-remaining-requests", "9999");
    out->emplace_back("x-ratelimit-remaining-tokens", "999000");
  }
}

std::string OpenAIWireImpl::CompletionBody(const ResponseContext& ctx) const {
  std::string out;
  out.reserve(768);
  const std::string& id = ctx.id_json;
  const std::string& model = ctx.model_json;
  // In tool-call mode the message's content is null and its tool_calls carry the call.
  std::string content = JsonString(ReplyText(ctx));
  std::string vllm_tool_calls = ",\"tool_calls\":[]";
  if (!ctx.tool_name.empty()) {
    content =
        absl::StrCat("null,\"tool_calls\":[{\"id\":\"", Absl(kToolCallId),
                     "\",\"type\":\"function\",\"function\":{\"name\":", JsonString(ctx.tool_name),
                     ",\"arguments\":", JsonString(ReplyText(ctx)), "}}]");
    vllm_tool_calls.clear();
  }
  const char* finish = FinishReason(ctx);
  std::string usage;
  AppendUsage(&usage, ctx, ctx.content_chunks, /*full=*/true);
  switch (d_) {
    case Provider::kAzure:
      absl::StrAppend(
          &out, "{\"choices\":[{\"content_filter_results\":", kContentFilterOk,
          ",\"finish_reason\":\"", finish,
          "\",\"index\":0,\"logprobs\":null,\"message\":{\"content\":", content,
          ",\"refusal\":null,\"role\":\"assistant\"}}],\"created\":", ctx.created, ",\"id\":", id,
          ",\"model\":", model,
          ",\"object\":\"chat.completion\",\"prompt_filter_results\":[{\"prompt_index\":"
          "0,\"content_filter_results\":",
          kContentFilterOk, "}],\"system_fingerprint\":\"fp_fake\",\"usage\":", usage, "}");
      break;
    case Provider::kVllm:
      absl::StrAppend(
          &out, "{\"id\":", id, ",\"object\":\"chat.completion\",\"created\":", ctx.created,
          ",\"model\":", model,
          ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":", content,
          vllm_tool_calls, "},\"logprobs\":null,\"finish_reason\":\"", finish,
          "\",\"stop_reason\":null}],\"usage\":", usage, "}");
      break;
    case Provider::kLlamaCpp:
      absl::StrAppend(&out, "{\"choices\":[{\"finish_reason\":\"", finish,
                      "\",\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":", content,
                      "}}],\"created\":", ctx.created, ",\"model\":", model,
                      ",\"system_fingerprint\":\"", kLlamaFingerprint,
                      "\",\"object\":\"chat.completion\",\"usage\":", usage, ",\"id\":", id);
      AppendTimings(&out, ctx);
      out.push_back('}');
      break;
    case Provider::kOllama:
      absl::StrAppend(
          &out, "{\"id\":", id, ",\"object\":\"chat.completion\",\"created\":", ctx.created,
          ",\"model\":", model,
          ",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"message\":{"
          "\"role\":\"assistant\",\"content\":",
          content, "},\"finish_reason\":\"", finish, "\"}],\"usage\":", usage, "}");
      break;
    default:
      absl::StrAppend(
          &out, "{\"id\":", id, ",\"object\":\"chat.completion\",\"created\":", ctx.created,
          ",\"model\":", model,
          ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":", content,
          ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"", finish,
          "\"}],\"usage\":", usage,
          ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fake\"}");
  }
  return out;
}

std::string OpenAIWireImpl::EmbeddingsBody(const EmbeddingsContext& ctx) const {
  std::string base = WireFormat::EmbeddingsBody(ctx);
  if (d_ != Provider::kVllm) return base;
  // vLLM adds an id/created and reports completion tokens as 0.
  std::string out = absl::StrCat("{\"id\":", JsonString(ctx.id), ",\"created\":", ctx.created, ",");
  out.append(base, 1, std::string::npos);
  return out;
}

}  // namespace

const WireFormat& OpenAIFamilyWire(Provider p) {
  static const OpenAIWireImpl kOpenAI(Provider::kOpenAI);
  static const OpenAIWireImpl kAzure(Provider::kAzure);
  static const OpenAIWireImpl kVllm(Provider::kVllm);
  static const OpenAIWireImpl kLlama(Provider::kLlamaCpp);
  static const OpenAIWireImpl kOllama(Provider::kOllama);
  switch (p) {
    case Provider::kAzure:
      return kAzure;
    case Provider::kVllm:
      return kVllm;
    case Provider::kLlamaCpp:
      return kLlama;
    case Provider::kOllama:
      return kOllama;
    default:
      return kOpenAI;
  }
}

}  // namespace turnpike::fake_provider
