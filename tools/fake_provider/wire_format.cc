#include "tools/fake_provider/wire_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tools/fake_provider/embedding.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {

std::string_view ChunkText(const ResponseContext& ctx, int i) {
  const std::string_view source = ctx.tool_name.empty() ? std::string_view(ctx.echo)
                                  : ctx.tool_arguments.empty()
                                      ? kToolArguments
                                      : std::string_view(ctx.tool_arguments);
  if (!source.empty()) {
    const size_t n = static_cast<size_t>(std::max(1, ctx.content_chunks));
    auto boundary = [source, n](size_t k) {
      size_t at = std::min(source.size(), source.size() * k / n);
      while (at < source.size() && (static_cast<unsigned char>(source[at]) & 0xC0) == 0x80) {
        ++at;
      }
      return at;
    };
    const size_t from = boundary(static_cast<size_t>(i));
    return source.substr(from, boundary(static_cast<size_t>(i) + 1) - from);
  }
  static constexpr std::string_view kWords[] = {"Hello", " from", " the", " fake", " provider"};
  // After the first round the sentence repeats with a separating space.
  if (i > 0 && i % 5 == 0) return " Hello";
  return kWords[i % 5];
}

std::string ReplyText(const ResponseContext& ctx) {
  std::string s;
  for (int i = 0; i < ctx.content_chunks; ++i) s.append(ChunkText(ctx, i));
  return s;
}

void FinalizeContext(ResponseContext* ctx) {
  ctx->id_json = JsonString(ctx->id);
  ctx->model_json = JsonString(ctx->model);
}

std::string WireFormat::EmbeddingsBody(const EmbeddingsContext& ctx) const {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, "{\"object\":\"embedding\",\"index\":", i, ",\"embedding\":");
    const std::vector<float> v = FakeEmbedding(ctx.inputs[i], ctx.dims);
    if (ctx.base64) {
      AppendJsonString(&out, EmbeddingBase64(v));
    } else {
      AppendEmbeddingJson(&out, v);
    }
    out.push_back('}');
  }
  out.append("],\"model\":");
  AppendJsonString(&out, ctx.model);
  absl::StrAppend(&out, ",\"usage\":{\"prompt_tokens\":", ctx.input_tokens,
                  ",\"total_tokens\":", ctx.input_tokens, "}}");
  return out;
}

void WireFormat::AppendResponseHeaders(const std::string&, HeaderList*) const {}

const WireFormat& WireFor(Provider p) {
  switch (p) {
    case Provider::kAnthropic:
      return AnthropicWire();
    case Provider::kGemini:
      return GeminiWire();
    default:
      return OpenAIFamilyWire(p);
  }
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Site Overloaded";
    default:
      return "Error";
  }
}

std::string MaskKey(std::string_view key) {
  if (key.size() <= 8) return std::string(key.size(), '*');
  return absl::StrCat(Absl(key.substr(0, 3)), "***", Absl(key.substr(key.size() - 4)));
}

}  // namespace turnpike::fake_provider
