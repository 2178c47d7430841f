// Everything that reads Gemini JSON: GenerateContentResponse chunks (streamed or whole,
// docs/providers.md §3.3) and google.rpc error bodies (§3.4). Objects are read in one pass over all
// their members (which also makes simdjson On-Demand check their structure), so member order,
// unknown members and whitespace do not matter; null and absent members are the same.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/providers/adapter_util.h"
#include "server/providers/gemini_adapter.h"
#include "simdjson.h"

namespace turnpike {
namespace {

namespace ondemand = simdjson::ondemand;
using adapter_util::ForEachField;
using adapter_util::ReadBool;
using adapter_util::ReadInt;
using adapter_util::ReadString;

constexpr std::string_view kProvider = "gemini";

// The parts of a google.rpc.Status error object the gateway uses.
struct GoogleError {
  int64_t code = 0;
  std::string message;
  std::string status;       // "RESOURCE_EXHAUSTED"
  std::string reason;       // from an ErrorInfo detail: "API_KEY_INVALID"
  std::string retry_delay;  // from a RetryInfo detail: "17s"
};

// Lenient: members of an unexpected type are skipped; what was read before an error is kept.
simdjson::error_code ReadGoogleError(ondemand::value& value, GoogleError& out) {
  return ForEachField(value, [&](std::string_view key, ondemand::value& v) {
    if (key == "code") {
      int64_t code = 0;
      if (v.get_int64().get(code) == simdjson::SUCCESS) out.code = code;
    } else if (key == "message") {
      adapter_util::CopyStringIfString(v, out.message);
    } else if (key == "status") {
      adapter_util::CopyStringIfString(v, out.status);
    } else if (key == "details") {
      ondemand::array details;
      if (v.get_array().get(details) != simdjson::SUCCESS) return simdjson::SUCCESS;
      for (auto detail_result : details) {
        ondemand::value detail;
        if (auto error = std::move(detail_result).get(detail)) return error;
        // Only ErrorInfo has `reason` and only RetryInfo has `retryDelay`: no need for @type.
        ondemand::json_type type;
        if (detail.type().get(type) || type != ondemand::json_type::object) continue;
        auto error = ForEachField(detail, [&](std::string_view detail_key, ondemand::value& d) {
          if (detail_key == "reason" && out.reason.empty()) {
            adapter_util::CopyStringIfString(d, out.reason);
          } else if (detail_key == "retryDelay") {
            adapter_util::CopyStringIfString(d, out.retry_delay);
          }
          return simdjson::SUCCESS;
        });
        if (error) return error;
      }
    }
    return simdjson::SUCCESS;
  });
}

ProviderError ToProviderError(int http_status, GoogleError error, std::string_view api_key) {
  ProviderError provider_error;
  provider_error.http_status = http_status;
  provider_error.type = std::move(error.status);
  provider_error.code = std::move(error.reason);
  provider_error.message = adapter_util::SanitizeMessage(error.message, api_key);
  provider_error.retry_after_ms = GeminiDurationMs(error.retry_delay);
  // Inside a 200 stream the body's own code stands in for the HTTP status.
  const int code = http_status != 0 ? http_status : static_cast<int>(error.code);
  provider_error.error_class = ClassifyGeminiError(code, provider_error.type, provider_error.code);
  return provider_error;
}

// Accumulates what the GenerateContentResponse chunks of one response say: text goes to the
// sink once its chunk has been read whole and found well-formed; usage, finish reason and prompt
// blocking are kept for the end. Single-threaded.
class ChunkReader {
 public:
  explicit ChunkReader(std::string api_key) : api_key_(std::move(api_key)) {}

  // Reads one chunk. ProviderErrorStatus() for an `{"error": ...}` chunk, INTERNAL if malformed.
  absl::Status Read(simdjson::padded_string_view json, std::string_view raw, StreamSink& sink) {
    Chunk chunk;
    if (auto error = ReadChunk(json, chunk)) {
      return adapter_util::MalformedError(kProvider, "response chunk", error, raw);
    }
    if (chunk.has_error) {
      return ProviderErrorStatus(ToProviderError(0, std::move(chunk.error), api_key_));
    }
    for (std::string_view text : chunk.texts) sink.OnText(text);
    // Each functionCall is a whole call; Gemini may leave out its id, so one is made from its
    // position ("call_0", ...), which the tool result then names.
    for (const Call& call : chunk.calls) {
      const int32_t index = calls_++;
      const std::string made_id = absl::StrCat("call_", index);
      sink.OnToolCall(ToolCallFragment{index, call.id.empty() ? made_id : call.id, call.name,
                                       call.args.empty() ? std::string_view("{}") : call.args});
    }
    // Each count present replaces the earlier one (they are cumulative). Early chunks may carry
    // only some of them (Vertex sends just trafficType), which must not reset the others.
    if (chunk.prompt_tokens) prompt_tokens_ = chunk.prompt_tokens;
    if (chunk.candidates_tokens) candidates_tokens_ = chunk.candidates_tokens;
    if (chunk.thoughts_tokens) thoughts_tokens_ = chunk.thoughts_tokens;
    if (chunk.tool_use_prompt_tokens) tool_use_prompt_tokens_ = chunk.tool_use_prompt_tokens;
    if (chunk.cached_content_tokens) cached_content_tokens_ = chunk.cached_content_tokens;
    usage_reported_ = usage_reported_ || chunk.prompt_tokens || chunk.candidates_tokens ||
                      chunk.thoughts_tokens || chunk.total_tokens;
    if (chunk.block_reason.has_value() && !chunk.has_candidates) {
      // A blocked prompt gets promptFeedback.blockReason and no candidates at all.
      blocked_ = true;
      finish_reason_.assign(chunk.block_reason->empty() ? "BLOCKED" : *chunk.block_reason);
    } else if (chunk.finish_reason.has_value() && !chunk.finish_reason->empty() && !blocked_) {
      finish_reason_.assign(*chunk.finish_reason);
    }
    return absl::OkStatus();
  }

  // Whether a chunk carried a finishReason, or the prompt was blocked.
  bool finished() const { return !finish_reason_.empty(); }

  ChatFinish finish() const {
    ChatFinish finish;
    finish.reason =
        blocked_ ? v1::FINISH_REASON_CONTENT_FILTER : GeminiFinishReason(finish_reason_);
    // Gemini ends a reply that calls functions with STOP; it is a tool-call finish.
    if (calls_ > 0 && finish.reason == v1::FINISH_REASON_STOP) {
      finish.reason = v1::FINISH_REASON_TOOL_CALLS;
    }
    finish.provider_reason = finish_reason_;
    finish.usage_reported = usage_reported_;
    // docs/providers.md §3.3. Tool-use prompt tokens are prompt tokens; cachedContentTokenCount
    // is a part of promptTokenCount. Thinking tokens are billed as output but are not in
    // candidatesTokenCount: the normalized output adds them, once, and they are its reasoning part.
    finish.input_tokens = prompt_tokens_.value_or(0) + tool_use_prompt_tokens_.value_or(0);
    finish.cached_input_tokens = cached_content_tokens_.value_or(0);
    finish.output_tokens = candidates_tokens_.value_or(0) + thoughts_tokens_.value_or(0);
    finish.reasoning_output_tokens = thoughts_tokens_.value_or(0);
    return finish;
  }

 private:
  // What one chunk says. Views point into parser_ and live until the next chunk.
  struct Call {
    std::string_view id, name, args;
  };
  struct Chunk {
    std::vector<std::string_view> texts;
    std::vector<Call> calls;  // functionCall parts, each whole (Gemini does not stream args)
    std::optional<std::string_view> finish_reason;
    std::optional<std::string_view> block_reason;
    bool has_candidates = false;
    std::optional<int64_t> prompt_tokens, candidates_tokens, thoughts_tokens,
        tool_use_prompt_tokens, cached_content_tokens, total_tokens;
    bool has_error = false;
    GoogleError error;
  };

  simdjson::error_code ReadChunk(simdjson::padded_string_view json, Chunk& chunk) {
    ondemand::document doc;
    if (auto error = parser_.iterate(json).get(doc)) return error;
    ondemand::object root;
    if (auto error = doc.get_object().get(root)) return error;
    return ForEachField(root, [&](std::string_view key, ondemand::value& value) {
      if (key == "candidates") return ReadCandidates(value, chunk);
      if (key == "usageMetadata") return ReadUsage(value, chunk);
      if (key == "promptFeedback") {
        return ForEachField(value, [&](std::string_view feedback_key, ondemand::value& v) {
          // safetyRatings alone (no blockReason) means the prompt went through.
          return feedback_key == "blockReason" ? ReadString(v, chunk.block_reason)
                                               : simdjson::SUCCESS;
        });
      }
      if (key == "error") {
        chunk.has_error = true;
        return ReadGoogleError(value, chunk.error);
      }
      return simdjson::SUCCESS;
    });
  }

  static simdjson::error_code ReadCandidates(ondemand::value& value, Chunk& chunk) {
    bool is_null = false;
    if (auto error = adapter_util::IsNull(value, is_null); error || is_null) return error;
    ondemand::array candidates;
    if (auto error = value.get_array().get(candidates)) return error;
    for (auto candidate_result : candidates) {
      ondemand::value candidate;
      if (auto error = std::move(candidate_result).get(candidate)) return error;
      // The gateway never asks for more than one candidate; others would not be ours to show
      // (they are still read, so their structure is checked).
      const bool first = !chunk.has_candidates;
      chunk.has_candidates = true;
      auto error = ForEachField(candidate, [&](std::string_view key, ondemand::value& v) {
        if (!first) return simdjson::SUCCESS;
        if (key == "content") return ReadContent(v, chunk);
        if (key == "finishReason") return ReadString(v, chunk.finish_reason);
        return simdjson::SUCCESS;
      });
      if (error) return error;
    }
    return simdjson::SUCCESS;
  }

  static simdjson::error_code ReadContent(ondemand::value& value, Chunk& chunk) {
    // A content may be {"role": "model"} alone, e.g. on a final chunk with only finishReason.
    return ForEachField(value, [&](std::string_view key, ondemand::value& parts_value) {
      if (key != "parts") return simdjson::SUCCESS;
      bool is_null = false;
      if (auto error = adapter_util::IsNull(parts_value, is_null); error || is_null) return error;
      ondemand::array parts;
      if (auto error = parts_value.get_array().get(parts)) return error;
      for (auto part_result : parts) {
        ondemand::value part;
        if (auto error = std::move(part_result).get(part)) return error;
        std::optional<std::string_view> text;
        std::optional<bool> thought;
        std::optional<Call> call;
        auto error = ForEachField(part, [&](std::string_view part_key, ondemand::value& v) {
          if (part_key == "text") return ReadString(v, text);
          if (part_key == "thought") return ReadBool(v, thought);
          if (part_key == "functionCall") {
            call.emplace();
            return ForEachField(v, [&](std::string_view call_key, ondemand::value& c) {
              std::optional<std::string_view> field;
              simdjson::error_code e = simdjson::SUCCESS;
              if (call_key == "name" || call_key == "id") {
                e = ReadString(c, field);
                if (!e) (call_key == "name" ? call->name : call->id) = field.value_or("");
              } else if (call_key == "args") {
                // The arguments object's text as sent (to_json_string keeps trailing whitespace).
                e = simdjson::to_json_string(c).get(call->args);
                while (!call->args.empty() &&
                       (call->args.back() == ' ' || call->args.back() == '\n' ||
                        call->args.back() == '\r' || call->args.back() == '\t')) {
                  call->args.remove_suffix(1);
                }
              }
              return e;
            });
          }
          return simdjson::SUCCESS;
        });
        if (error) return error;
        if (call.has_value()) chunk.calls.push_back(*call);
        // Empty parts (often carrying only a thoughtSignature) and thought summaries are skipped.
        if (text.has_value() && !text->empty() && !thought.value_or(false)) {
          chunk.texts.push_back(*text);
        }
      }
      return simdjson::SUCCESS;
    });
  }

  static simdjson::error_code ReadUsage(ondemand::value& value, Chunk& chunk) {
    return ForEachField(value, [&](std::string_view key, ondemand::value& v) {
      if (key == "promptTokenCount") return ReadInt(v, chunk.prompt_tokens);
      if (key == "candidatesTokenCount") return ReadInt(v, chunk.candidates_tokens);
      if (key == "thoughtsTokenCount") return ReadInt(v, chunk.thoughts_tokens);
      if (key == "toolUsePromptTokenCount") return ReadInt(v, chunk.tool_use_prompt_tokens);
      if (key == "totalTokenCount") return ReadInt(v, chunk.total_tokens);
      if (key == "cachedContentTokenCount") return ReadInt(v, chunk.cached_content_tokens);
      return simdjson::SUCCESS;
    });
  }

  const std::string api_key_;  // to mask it should an error message echo it
  ondemand::parser parser_;    // reused for every chunk
  std::optional<int64_t> prompt_tokens_;
  std::optional<int64_t> candidates_tokens_;
  std::optional<int64_t> thoughts_tokens_;
  std::optional<int64_t> tool_use_prompt_tokens_;
  std::optional<int64_t> cached_content_tokens_;
  bool usage_reported_ = false;
  std::string finish_reason_;  // the last non-empty finishReason, or the blockReason
  bool blocked_ = false;
  int32_t calls_ = 0;  // functionCall parts so far
};

class GeminiStreamDecoder final : public StreamDecoder {
 public:
  explicit GeminiStreamDecoder(std::string api_key) : reader_(std::move(api_key)) {}

  absl::Status OnEvent(std::string_view, std::string_view data, StreamSink& sink) override {
    // Gemini sends no sentinel; an OpenAI-style proxy in front of it might.
    if (data == "[DONE]") return absl::OkStatus();
    return reader_.Read(adapter_util::PaddedEventData(data), data, sink);
  }

  absl::Status OnEnd(StreamSink& sink) override {
    // No terminal event: the body ending after a finishReason is the normal end.
    if (!reader_.finished()) {
      return absl::UnavailableError("gemini: stream ended before finishReason");
    }
    if (!finish_delivered_) {
      finish_delivered_ = true;
      sink.OnFinish(reader_.finish());
    }
    return absl::OkStatus();
  }

 private:
  ChunkReader reader_;
  bool finish_delivered_ = false;
};

// Collects a whole non-streamed reply.
class TextCollector final : public StreamSink {
 public:
  void OnText(std::string_view text) override { text_.append(text); }
  void OnToolCall(const ToolCallFragment& fragment) override { tool_calls_.Add(fragment); }
  void OnFinish(const ChatFinish&) override {}
  std::string& text() { return text_; }
  ToolCallAssembler& tool_calls() { return tool_calls_; }

 private:
  std::string text_;
  ToolCallAssembler tool_calls_;
};

}  // namespace

std::unique_ptr<StreamDecoder> GeminiAdapter::NewStreamDecoder() const {
  return std::make_unique<GeminiStreamDecoder>(api_key_);
}

absl::StatusOr<ChatResult> GeminiAdapter::ParseChatResponse(std::string_view body) const {
  const simdjson::padded_string json(body.data(), body.size());
  ChunkReader reader(api_key_);
  TextCollector collector;
  if (absl::Status status = reader.Read(json, body, collector); !status.ok()) return status;
  ChatResult result;
  result.text = std::move(collector.text());
  result.tool_calls = collector.tool_calls().Release();
  // A whole response without finishReason is unusual but complete: the reason stays unknown.
  result.finish = reader.finish();
  return result;
}

ProviderError GeminiAdapter::ParseError(int http_status, std::string_view body) const {
  GoogleError google_error;
  bool read_json = false;
  if (!body.empty()) {
    const simdjson::padded_string json(body.data(), body.size());
    ondemand::parser parser;
    ondemand::document doc;
    ondemand::json_type type;
    if (parser.iterate(json).get(doc) == simdjson::SUCCESS &&
        doc.type().get(type) == simdjson::SUCCESS) {
      ondemand::value error_value;
      simdjson::error_code error = simdjson::INCORRECT_TYPE;
      if (type == ondemand::json_type::object) {
        error = doc.find_field_unordered("error").get(error_value);
      } else if (type == ondemand::json_type::array) {
        // The JSON-array stream form (no alt=sse) wraps the error in an array.
        error = doc.at(0).find_field_unordered("error").get(error_value);
      }
      ondemand::json_type error_type;
      if (error == simdjson::SUCCESS && error_value.type().get(error_type) == simdjson::SUCCESS &&
          error_type == ondemand::json_type::object) {
        read_json = true;
        (void)ReadGoogleError(error_value, google_error);
      }
    }
  }
  // Not a google.rpc status (a load balancer's HTML, a proxy's text): quote a little of it.
  if (!read_json) google_error.message = adapter_util::QuotePayload(body);
  return ToProviderError(http_status, std::move(google_error), api_key_);
}

}  // namespace turnpike
