// The Chat Completions stream decoder (docs/providers.md §1.4, §4.3, §5). One instance per
// response, single-threaded. It keeps one simdjson parser for the whole stream (its buffers are
// reused by every chunk) and accepts every variant the providers send:
//   - the first chunk with role + empty content (no empty OnText), content deltas, finish chunk;
//   - usage on a separate `choices: []` chunk, on the finish chunk (old llama.cpp), inside the
//     choice (Moonshot) or on every chunk (vLLM continuous_usage_stats): the last non-null wins;
//   - `usage` absent or null, `choices` empty, null or absent (Azure's first chunk carries only
//     prompt_filter_results), `obfuscation` and any other unknown member;
//   - `data: {"error":{...}}` (and vLLM's flat `{"object":"error",...}`) → ProviderErrorStatus;
//   - `delta.tool_calls` pieces by index (id and name on a call's first piece, then argument
//     fragments), passed on as they come;
//   - the `[DONE]` sentinel; the finish is delivered there, or at OnEnd if [DONE] never came.
#include <memory>
#include <string>
#include <utility>

#include "server/providers/openai_internal.h"
#include "server/providers/sse_parser.h"

namespace turnpike::openai_internal {
namespace {

using simdjson::ondemand::json_type;

constexpr std::string_view kWhat = "OpenAI stream chunk";

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// SseParser guarantees kPadding readable bytes after every data view: enough for simdjson.
static_assert(SseParser::kPadding >= simdjson::SIMDJSON_PADDING);
simdjson::padded_string_view PaddedView(std::string_view data) {
  return simdjson::padded_string_view(data.data(), data.size(), data.size() + SseParser::kPadding);
}

class OpenAiStreamDecoder final : public StreamDecoder {
 public:
  explicit OpenAiStreamDecoder(bool done_requires_finish)
      : done_requires_finish_(done_requires_finish) {}

  absl::Status OnEvent(std::string_view event, std::string_view data, StreamSink& sink) override;
  absl::Status OnEnd(StreamSink& sink) override;

 private:
  absl::Status ParseChunk(std::string_view data, StreamSink& sink);
  // The status for an error event; `data` is its whole payload.
  absl::Status ErrorEvent(std::string_view data);
  void Deliver(StreamSink& sink);

  const bool done_requires_finish_;
  simdjson::ondemand::parser parser_;
  ChatFinish finish_;
  bool finish_seen_ = false;  // a non-null finish_reason arrived
  bool delivered_ = false;    // sink.OnFinish() was called (at [DONE] or OnEnd)
};

absl::Status OpenAiStreamDecoder::OnEvent(std::string_view event, std::string_view data,
                                          StreamSink& sink) {
  if (delivered_) return absl::OkStatus();  // nothing is expected after [DONE]
  std::string_view trimmed = data;
  while (!trimmed.empty() && IsJsonSpace(trimmed.front())) trimmed.remove_prefix(1);
  if (trimmed.empty()) return absl::OkStatus();  // an empty `data:` keep-alive
  if (trimmed.starts_with("[DONE]")) {           // the SDK's test: startswith("[DONE]")
    if (!finish_seen_ && done_requires_finish_) {
      return absl::UnavailableError(
          "stream ended with [DONE] but no finish_reason (llama.cpp reports errors in a "
          "non-standard SSE field)");
    }
    Deliver(sink);
    return absl::OkStatus();
  }
  if (event == "error") return ErrorEvent(data);  // some proxies name their error events
  return ParseChunk(data, sink);
}

absl::Status OpenAiStreamDecoder::ParseChunk(std::string_view data, StreamSink& sink) {
  simdjson::ondemand::document doc;
  if (auto error = parser_.iterate(PaddedView(data)).get(doc)) {
    return MalformedError(kWhat, error, "", data);
  }
  simdjson::ondemand::object chunk;
  if (auto error = doc.get_object().get(chunk)) return MalformedError(kWhat, error, "", data);
  for (auto member : chunk) {
    std::string_view key;
    if (auto error = member.unescaped_key().get(key)) {
      return MalformedError(kWhat, error, "", data);
    }
    simdjson::ondemand::value value;
    if (auto error = member.value().get(value)) return MalformedError(kWhat, error, key, data);
    json_type type;
    if (auto error = value.type().get(type)) return MalformedError(kWhat, error, key, data);

    if (key == "choices") {
      if (type == json_type::null) continue;  // some backends send "choices": null
      simdjson::ondemand::array choices;
      if (auto error = value.get_array().get(choices)) {
        return MalformedError(kWhat, error, "choices", data);
      }
      for (auto element : choices) {
        simdjson::ondemand::value choice;
        if (auto error = std::move(element).get(choice)) {
          return MalformedError(kWhat, error, "choices", data);
        }
        ChoiceFields fields;
        if (absl::Status status = ReadChoice(choice, "delta", fields, kWhat, data); !status.ok()) {
          return status;
        }
        // The gateway never asks for n > 1; a stray other index is not part of the reply.
        if (fields.index != 0) continue;
        if (!fields.content.empty()) sink.OnText(fields.content);
        for (const ToolCallFragment& fragment : fields.tool_calls) sink.OnToolCall(fragment);
        if (fields.has_finish_reason && !finish_seen_) {
          finish_seen_ = true;
          finish_.provider_reason = std::string(fields.finish_reason);
          finish_.reason = MapFinishReason(fields.finish_reason);
        }
        if (fields.has_usage) ApplyUsage(fields.usage, finish_);
      }
    } else if (key == "usage") {
      bool reported = false;
      UsageFields usage;
      if (absl::Status status = ReadUsage(value, reported, usage, kWhat, data); !status.ok()) {
        return status;
      }
      // A null usage on ordinary chunks must not erase an earlier report.
      if (reported) ApplyUsage(usage, finish_);
    } else if (key == "error") {
      // The SDK's rule: a truthy top-level `error` makes the event an error.
      if (type == json_type::null || type == json_type::boolean) continue;
      return ErrorEvent(data);
    } else if (key == "object" && type == json_type::string) {
      std::string_view object_type;
      if (auto error = value.get_string().get(object_type)) {
        return MalformedError(kWhat, error, key, data);
      }
      if (object_type == "error") return ErrorEvent(data);  // vLLM's old flat error
    }
  }
  return CheckFullyRead(doc, kWhat, data);
}

absl::Status OpenAiStreamDecoder::ErrorEvent(std::string_view data) {
  // Parsed again from the top (rare path): the error members may precede what gave it away.
  ErrorFields fields;
  if (!ReadErrorBody(parser_, PaddedView(data), fields)) {
    fields.message = std::string(TruncateUtf8(data, kMaxMessageBytes));
  }
  return ProviderErrorStatus(MakeProviderError(0, fields, {}));
}

void OpenAiStreamDecoder::Deliver(StreamSink& sink) {
  if (delivered_) return;
  delivered_ = true;
  sink.OnFinish(finish_);
}

absl::Status OpenAiStreamDecoder::OnEnd(StreamSink& sink) {
  if (delivered_) return absl::OkStatus();
  if (!finish_seen_) {
    return absl::UnavailableError("stream ended before finish (no finish_reason and no [DONE])");
  }
  // A finish_reason but no [DONE]: the reply is complete; only the trailing usage chunk may be
  // missing, which usage_reported says.
  Deliver(sink);
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<StreamDecoder> NewStreamDecoder(bool done_requires_finish) {
  return std::make_unique<OpenAiStreamDecoder>(done_requires_finish);
}

}  // namespace turnpike::openai_internal
