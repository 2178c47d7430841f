#include "tools/fake_provider/response_plan.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/fake_provider/json_writer.h"

namespace turnpike::fake_provider {
namespace {

ErrorSpec InvalidRequest(std::string message, std::string param = "") {
  ErrorSpec e;
  e.status = 400;
  e.kind = ErrorKind::kInvalidRequest;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

// Renders SSE events, or (Gemini without alt=sse) the elements of a streamed JSON array.
class Framer {
 public:
  Framer(bool json_array, LineEnding eol) : json_array_(json_array), eol_(eol) {}

  void Append(std::string* out, const SseEvent& ev) {
    if (!json_array_) {
      AppendSseEvent(out, ev, eol_);
      return;
    }
    if (ev.comment) return;
    out->append(first_ ? "[" : ",\r\n");
    first_ = false;
    out->append(ev.data);
  }

  void AppendAll(std::string* out, const std::vector<SseEvent>& events) {
    for (const SseEvent& ev : events) Append(out, ev);
  }

  // Terminates the array (a no-op for SSE).
  void Close(std::string* out) {
    if (!json_array_) return;
    if (first_) out->append("[");
    out->append("]");
  }

 private:
  const bool json_array_;
  const LineEnding eol_;
  bool first_ = true;
};

std::string ResolveModel(const Route& route, const ParsedRequest& r) {
  if (route.provider == Provider::kGemini) return route.path_model;
  if (!r.model.empty()) return r.model;
  if (!route.path_model.empty()) return route.path_model;
  return "fake-model";
}

// The text `echo=1` and `error_echo=1` send back: the messages that carry a directive, without it.
std::string EchoText(const ParsedRequest& r) {
  std::string text;
  for (const std::string& t : r.directive_texts) text += StripFaultDirectives(t);
  return text;
}

ResponseContext MakeContext(const PlanInput& in, const ParsedRequest& r, int chunks) {
  const Provider p = in.route.provider;
  ResponseContext ctx;
  ctx.provider = p;
  ctx.model = ResolveModel(in.route, r);
  ctx.id = in.response_id;
  ctx.request_id = in.request_id;
  ctx.created = in.created;
  ctx.input_tokens = r.input_words;
  // Cache counts are parts of the prompt; a fault asking for more than the prompt has is clamped.
  ctx.cached_tokens = std::min<int64_t>(in.fault.cached_tokens.value_or(0), ctx.input_tokens);
  ctx.cache_write_tokens = std::min<int64_t>(in.fault.cache_write_tokens.value_or(0),
                                             ctx.input_tokens - ctx.cached_tokens);
  ctx.reasoning_tokens = in.fault.reasoning_tokens.value_or(0);
  ctx.content_chunks = chunks;
  if (const std::optional<int64_t> limit = EffectiveTokenLimit(p, r)) {
    const int64_t clamped = std::max<int64_t>(0, *limit);
    if (clamped < chunks) {
      ctx.content_chunks = static_cast<int>(clamped);
      ctx.finish_by_length = true;
    }
  }
  if (p == Provider::kVllm) {
    ctx.include_usage = r.has_stream_options && r.include_usage.value_or(true);
    ctx.continuous_usage = r.has_stream_options && r.continuous_usage_stats;
  } else {
    ctx.include_usage = r.include_usage.value_or(false);
  }
  ctx.include_obfuscation = r.include_obfuscation.value_or(true);
  if (in.fault.echo.value_or(false)) ctx.echo = EchoText(r);
  // Tool-call mode (README "Tool calls"): a request offering tools whose conversation does not
  // end with a tool result gets a call of its first tool, in many fragments.
  if (!r.first_tool_name.empty() && !r.last_is_tool_result) {
    ctx.tool_name = r.first_tool_name;
    // Gemini sends a call whole, in one chunk.
    ctx.content_chunks = p == Provider::kGemini ? 1 : kToolArgumentFragments;
    ctx.finish_by_length = false;
  }
  // Classification mode (README "Classification"): a request whose response schema or tool lists
  // an enum is answered {"labels":[its first value]}, as text or as the tool call's arguments;
  // the model kBadLabelsModel answers a label outside the enum instead.
  if (!r.first_enum_value.empty() && (ctx.tool_name.empty() || ctx.tool_name == "classify")) {
    const std::string label = ctx.model == kBadLabelsModel ? "not-a-label" : r.first_enum_value;
    std::string answer = absl::StrCat(R"({"labels":[")", label, R"("]})");
    if (!ctx.tool_name.empty()) {
      ctx.tool_arguments = std::move(answer);
    } else {
      ctx.echo = std::move(answer);
      ctx.content_chunks = 3;
      ctx.finish_by_length = false;
    }
  }
  FinalizeContext(&ctx);
  return ctx;
}

void AddCommonHeaders(const PlanInput& in, ResponsePlan* plan) {
  if (in.fault.retry_after) plan->headers.emplace_back("retry-after", *in.fault.retry_after);
  if (in.fault.retry_after_ms) {
    plan->headers.emplace_back("retry-after-ms", *in.fault.retry_after_ms);
  }
}

void SetReply(HttpReply reply, ResponsePlan* plan) {
  plan->kind = ResponsePlan::Kind::kReply;
  plan->status = reply.status;
  plan->content_type = std::move(reply.content_type);
  plan->body = std::move(reply.body);
  for (auto& h : reply.headers) plan->headers.push_back(std::move(h));
}

// A complete (non-streaming) body, with the faults that make sense without a stream:
// reset / stall part-way through the body, or a truncated (invalid JSON) body.
void SetBodyWithFaults(const PlanInput& in, int content_chunks, std::string body,
                       ResponsePlan* plan) {
  const FaultSpec& f = in.fault;
  auto cut = [&](const std::optional<int>& n) {
    return n.has_value() && *n >= 1 && *n <= content_chunks;
  };
  const bool reset = cut(f.reset_after_chunks);
  const bool stall = !reset && cut(f.stall_after_chunks);
  if (f.truncate.value_or(false) || f.malformed.value_or(false) || reset || stall) {
    body.resize(body.size() / 2);
  }
  plan->status = 200;
  if (reset || stall) {
    plan->kind = ResponsePlan::Kind::kStream;
    plan->segments.push_back(std::move(body));
    plan->ending = reset ? ResponsePlan::Ending::kReset : ResponsePlan::Ending::kStall;
    return;
  }
  plan->kind = ResponsePlan::Kind::kReply;
  plan->body = std::move(body);
}

void PlanStream(const PlanInput& in, const ResponseContext& ctx, ResponsePlan* plan) {
  const WireFormat& wire = WireFor(ctx.provider);
  const FaultSpec& f = in.fault;
  const bool json_array = ctx.provider == Provider::kGemini && !in.gemini_alt_sse;
  Framer framer(json_array, f.line_ending.value_or(wire.DefaultLineEnding()));

  // Where the stream stops early, if a fault says so (the earliest one wins).
  enum class Stop { kNone, kReset, kStall, kError };
  Stop stop = Stop::kNone;
  int stop_at = ctx.content_chunks + 1;
  auto consider = [&](const std::optional<int>& n, Stop kind) {
    if (n.has_value() && *n <= ctx.content_chunks && *n < stop_at) {
      stop = kind;
      stop_at = *n;
    }
  };
  consider(f.reset_after_chunks, Stop::kReset);
  consider(f.stall_after_chunks, Stop::kStall);
  consider(f.stream_error_after, Stop::kError);
  const int sent = stop == Stop::kNone ? ctx.content_chunks : stop_at;
  const bool complete = stop == Stop::kNone && !f.truncate.value_or(false);

  plan->kind = ResponsePlan::Kind::kStream;
  plan->status = 200;
  plan->content_type =
      json_array ? "application/json; charset=UTF-8" : std::string(wire.StreamContentType());
  plan->headers.emplace_back("cache-control", "no-cache");
  plan->segment_delay_ms = f.chunk_delay_ms.value_or(in.default_chunk_delay_ms);

  std::vector<SseEvent> events;
  wire.AppendPrologue(ctx, &events);
  std::string cur;
  framer.AppendAll(&cur, events);
  // Segment boundaries only matter when a delay separates them; without one the whole
  // stream is one write (still one SSE event per chunk).
  const bool split = plan->segment_delay_ms > 0;
  for (int i = 0; i < sent; ++i) {
    if (i > 0 && split) plan->segments.push_back(std::exchange(cur, {}));
    SseEvent ev = wire.ContentEvent(ctx, i, complete && i == ctx.content_chunks - 1);
    framer.Append(&cur, ev);
    if (i == 0 && f.malformed.value_or(false)) {
      ev.data.resize(ev.data.size() / 2);  // a JSON object cut in half
      framer.Append(&cur, ev);
    }
  }
  events.clear();
  if (stop == Stop::kError) {
    wire.AppendStreamError(ctx, f.error_type.value_or(""), &events);
    framer.AppendAll(&cur, events);
    framer.Close(&cur);
  } else if (complete) {
    wire.AppendEpilogue(ctx, &events);
    framer.AppendAll(&cur, events);
    framer.Close(&cur);
  }
  plan->segments.push_back(std::move(cur));
  plan->ending = stop == Stop::kReset   ? ResponsePlan::Ending::kReset
                 : stop == Stop::kStall ? ResponsePlan::Ending::kStall
                                        : ResponsePlan::Ending::kEnd;
}

}  // namespace

std::optional<int64_t> EffectiveTokenLimit(Provider p, const ParsedRequest& r) {
  switch (p) {
    case Provider::kAnthropic:
    case Provider::kOllama:  // Ollama has no max_completion_tokens field (§5.3)
      return r.max_tokens;
    case Provider::kGemini:
      return r.max_output_tokens;
    case Provider::kLlamaCpp:
      if (r.n_predict && *r.n_predict >= 0) return r.n_predict;
      return r.max_completion_tokens ? r.max_completion_tokens : r.max_tokens;
    default:
      return r.max_completion_tokens ? r.max_completion_tokens : r.max_tokens;
  }
}

std::optional<ErrorSpec> ValidateRequest(const Route& route, const ParsedRequest& r) {
  const Provider p = route.provider;
  if (route.endpoint == Endpoint::kEmbeddings) {
    if (!r.has_input || r.inputs.empty()) {
      return InvalidRequest("Missing required parameter: 'input'.", "input");
    }
    if (p == Provider::kOpenAI && r.model.empty()) {
      return InvalidRequest("you must provide a model parameter");
    }
    return std::nullopt;
  }
  switch (p) {
    case Provider::kAnthropic:
      if (r.model.empty()) return InvalidRequest("model: Field required");
      if (r.message_count < 0) return InvalidRequest("messages: Field required");
      if (!r.max_tokens) return InvalidRequest("max_tokens: Field required");
      return std::nullopt;
    case Provider::kGemini:
      if (r.message_count <= 0) {
        return InvalidRequest("* GenerateContentRequest.contents: contents is not specified\n");
      }
      return std::nullopt;
    default:
      break;
  }
  if (r.message_count < 0) {
    return InvalidRequest("Missing required parameter: 'messages'.", "messages");
  }
  if (r.message_count == 0) {
    return InvalidRequest(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead.",
        "messages");
  }
  if (p == Provider::kOpenAI && r.model.empty()) {
    return InvalidRequest("you must provide a model parameter");
  }
  if ((p == Provider::kOpenAI || p == Provider::kVllm) && r.has_stream_options && !r.stream) {
    ErrorSpec e;
    e.status = 400;
    e.kind = ErrorKind::kStreamOptionsWithoutStream;
    return e;
  }
  return std::nullopt;
}

ResponsePlan PlanProviderResponse(const PlanInput& in) {
  const WireFormat& wire = WireFor(in.route.provider);
  const FaultSpec& f = in.fault;
  ResponsePlan plan;

  auto error_reply = [&](ErrorSpec spec) {
    spec.request_id = in.request_id;
    if (spec.model.empty() && in.parsed.ok()) spec.model = ResolveModel(in.route, *in.parsed);
    if (f.retry_after) spec.retry_after = *f.retry_after;
    SetReply(wire.Error(spec), &plan);
  };

  if (!in.fault_error.empty()) {
    error_reply(InvalidRequest(absl::StrCat("turnpike-fake-provider: ", in.fault_error)));
    return plan;
  }

  const bool chat = in.route.endpoint == Endpoint::kChat;
  plan.is_stream =
      chat && (in.route.provider == Provider::kGemini ? in.route.stream_by_path
                                                      : (in.parsed.ok() && in.parsed->stream));
  plan.first_byte_delay_ms = f.first_byte_delay_ms.value_or(0);
  AddCommonHeaders(in, &plan);

  if (f.reset_after_chunks == 0) {
    plan.kind = ResponsePlan::Kind::kReset;
    return plan;
  }
  if (f.stall_after_chunks == 0) {
    plan.kind = ResponsePlan::Kind::kStall;
    return plan;
  }
  if (in.pre_error) {
    error_reply(*in.pre_error);
    return plan;
  }
  if (f.status && *f.status != 200) {
    ErrorSpec spec;
    spec.status = *f.status;
    spec.kind = ErrorKind::kInjected;
    spec.type_override = f.error_type.value_or("");
    if (f.error_echo.value_or(false) && in.parsed.ok()) spec.message = EchoText(*in.parsed);
    error_reply(std::move(spec));
    return plan;
  }
  if (!in.parsed.ok()) {
    ErrorSpec spec = InvalidRequest(
        in.route.provider == Provider::kGemini
            ? (absl::StartsWith(in.parsed.status().message(), "Invalid JSON payload")
                   ? std::string(in.parsed.status().message())
                   : std::string("Invalid JSON payload received. Unexpected token."))
            : std::string(
                  "We could not parse the JSON body of your request. (HINT: This likely means "
                  "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                  "payload, but what was sent was not valid JSON.)"));
    error_reply(std::move(spec));
    return plan;
  }
  const ParsedRequest& r = *in.parsed;
  if (std::optional<ErrorSpec> invalid = ValidateRequest(in.route, r)) {
    error_reply(*std::move(invalid));
    return plan;
  }
  wire.AppendResponseHeaders(in.request_id, &plan.headers);

  if (!chat) {
    EmbeddingsContext ectx;
    ectx.provider = in.route.provider;
    ectx.model = ResolveModel(in.route, r);
    ectx.id = in.response_id;
    ectx.created = in.created;
    ectx.input_tokens = r.input_words;
    ectx.inputs = r.inputs;
    ectx.base64 = r.encoding_format == "base64";
    ectx.dims = r.dimensions && *r.dimensions > 0 && *r.dimensions <= 4096
                    ? static_cast<int>(*r.dimensions)
                    : 8;
    SetBodyWithFaults(in, /*content_chunks=*/1, wire.EmbeddingsBody(ectx), &plan);
    return plan;
  }

  const int chunks = f.chunks.value_or(in.default_chunks);
  const ResponseContext ctx = MakeContext(in, r, chunks);
  if (plan.is_stream) {
    PlanStream(in, ctx, &plan);
  } else {
    SetBodyWithFaults(in, ctx.content_chunks, wire.CompletionBody(ctx), &plan);
  }
  return plan;
}

}  // namespace turnpike::fake_provider
