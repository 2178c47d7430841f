// The Anthropic SSE stream decoder (docs/providers.md §2.4): named events (and, through a proxy
// that drops the `event:` lines, the data's own `type`), text and tool-use blocks, the usage of
// message_start and message_delta, error events, and the finish at message_stop. Events are read
// in one pass over all their members, so member order and unknown members do not matter.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/providers/adapter_util.h"
#include "server/providers/anthropic_adapter.h"
#include "server/providers/anthropic_internal.h"
#include "simdjson.h"

namespace turnpike {
namespace {

namespace ondemand = simdjson::ondemand;
using adapter_util::ForEachField;
using adapter_util::ReadInt;
using adapter_util::ReadString;
using anthropic_internal::kProvider;
using anthropic_internal::MakeError;
using anthropic_internal::ReadErrorObject;
using anthropic_internal::ReadUsage;
using anthropic_internal::SetCounts;
using anthropic_internal::Usage;

class AnthropicStreamDecoder final : public StreamDecoder {
 public:
  explicit AnthropicStreamDecoder(std::string api_key) : api_key_(std::move(api_key)) {}

  absl::Status OnEvent(std::string_view event, std::string_view data, StreamSink& sink) override;
  absl::Status OnEnd(StreamSink& sink) override;

 private:
  enum class Kind {
    kIgnored,
    kMessageStart,
    kContentBlockStart,
    kContentBlockDelta,
    kMessageDelta,
    kMessageStop,
    kError
  };

  static Kind KindOf(std::string_view type);
  absl::Status Handle(Kind kind, std::string_view event, ondemand::document& doc,
                      std::string_view data, StreamSink& sink);
  void Finish(StreamSink& sink);

  const std::string api_key_;  // to mask it should an error message echo it
  ondemand::parser parser_;    // reused for every event
  Usage start_usage_;          // from message_start.message.usage
  Usage delta_usage_;          // cumulative, from the message_delta events
  std::string stop_reason_;
  bool finished_ = false;
  // The content-block index of each tool_use block so far; a call's index is its position here.
  std::vector<int64_t> tool_blocks_;
};

AnthropicStreamDecoder::Kind AnthropicStreamDecoder::KindOf(std::string_view type) {
  if (type == "content_block_delta") return Kind::kContentBlockDelta;
  if (type == "content_block_start") return Kind::kContentBlockStart;
  if (type == "message_start") return Kind::kMessageStart;
  if (type == "message_delta") return Kind::kMessageDelta;
  if (type == "message_stop") return Kind::kMessageStop;
  if (type == "error") return Kind::kError;
  // ping, content_block_stop and event types added later (which must be ignored).
  return Kind::kIgnored;
}

absl::Status AnthropicStreamDecoder::OnEvent(std::string_view event, std::string_view data,
                                             StreamSink& sink) {
  // Nothing may follow message_stop; a stray event there cannot change the finished reply.
  if (finished_) return absl::OkStatus();
  Kind kind = KindOf(event);
  // The event name is enough for most events, so pings and unknown events are never parsed.
  const bool named = event != "message";
  if (named && kind == Kind::kIgnored) return absl::OkStatus();
  if (named && kind == Kind::kMessageStop) {
    Finish(sink);
    return absl::OkStatus();
  }
  ondemand::document doc;
  if (auto error = parser_.iterate(adapter_util::PaddedEventData(data)).get(doc)) {
    return adapter_util::MalformedError(
        kProvider, absl::StrCat(adapter_util::AsAbsl(event), " event"), error, data);
  }
  if (named) return Handle(kind, event, doc, data, sink);

  // No `event:` line (a proxy that dropped it): the data's own `type` says what it is.
  std::string_view type_view;
  if (auto error = doc.find_field_unordered("type").get_string().get(type_view)) {
    return adapter_util::MalformedError(kProvider, "unnamed event", error, data);
  }
  kind = KindOf(type_view);
  if (kind == Kind::kIgnored) return absl::OkStatus();
  if (kind == Kind::kMessageStop) {
    Finish(sink);
    return absl::OkStatus();
  }
  // Copied: after rewind() the parser reuses the buffer the view points into.
  const std::string type(type_view);
  doc.rewind();
  return Handle(kind, type, doc, data, sink);
}

absl::Status AnthropicStreamDecoder::Handle(Kind kind, std::string_view event,
                                            ondemand::document& doc, std::string_view data,
                                            StreamSink& sink) {
  ondemand::object root;
  simdjson::error_code error = doc.get_object().get(root);
  // Text and error are acted on only once the whole event has been read and found well-formed.
  std::optional<std::string_view> delta_type, text, partial_json, block_type, block_id, block_name;
  std::optional<int64_t> block_index;
  bool has_error = false;
  std::string error_type, error_message;
  Usage usage;
  std::optional<std::string_view> stop_reason;
  if (!error) {
    error = ForEachField(root, [&](std::string_view key, ondemand::value& value) {
      switch (kind) {
        case Kind::kMessageStart:
          if (key != "message") return simdjson::SUCCESS;
          return ForEachField(value, [&](std::string_view message_key, ondemand::value& v) {
            return message_key == "usage" ? ReadUsage(v, usage) : simdjson::SUCCESS;
          });
        case Kind::kContentBlockStart:
          if (key == "index") return ReadInt(value, block_index);
          if (key != "content_block") return simdjson::SUCCESS;
          return ForEachField(value, [&](std::string_view block_key, ondemand::value& v) {
            if (block_key == "type") return ReadString(v, block_type);
            if (block_key == "id") return ReadString(v, block_id);
            if (block_key == "name") return ReadString(v, block_name);
            return simdjson::SUCCESS;
          });
        case Kind::kContentBlockDelta:
          if (key == "index") return ReadInt(value, block_index);
          if (key != "delta") return simdjson::SUCCESS;
          return ForEachField(value, [&](std::string_view delta_key, ondemand::value& v) {
            if (delta_key == "type") return ReadString(v, delta_type);
            if (delta_key == "text") return ReadString(v, text);
            if (delta_key == "partial_json") return ReadString(v, partial_json);
            return simdjson::SUCCESS;
          });
        case Kind::kMessageDelta:
          if (key == "usage") return ReadUsage(value, usage);
          if (key != "delta") return simdjson::SUCCESS;
          return ForEachField(value, [&](std::string_view delta_key, ondemand::value& v) {
            return delta_key == "stop_reason" ? ReadString(v, stop_reason) : simdjson::SUCCESS;
          });
        case Kind::kError:
          if (key != "error") return simdjson::SUCCESS;
          has_error = true;
          return ReadErrorObject(value, error_type, error_message);
        case Kind::kIgnored:
        case Kind::kMessageStop:
          break;
      }
      return simdjson::SUCCESS;
    });
  }
  if (error) {
    return adapter_util::MalformedError(
        kProvider, absl::StrCat(adapter_util::AsAbsl(event), " event"), error, data);
  }
  switch (kind) {
    case Kind::kMessageStart:
      start_usage_ = usage;
      break;
    case Kind::kContentBlockStart:
      // A tool_use block starts a call: its id and name now, its input as input_json_delta
      // fragments (the block's `input` here is an empty placeholder).
      if (block_type == "tool_use") {
        tool_blocks_.push_back(block_index.value_or(-1));
        sink.OnToolCall(ToolCallFragment{static_cast<int32_t>(tool_blocks_.size() - 1),
                                         block_id.value_or(""), block_name.value_or(""), ""});
      }
      break;
    case Kind::kContentBlockDelta:
      // Text and tool arguments reach the caller; thinking_delta, signature_delta and
      // citations_delta are not part of the normalized stream.
      if (delta_type == "text_delta" && text.has_value() && !text->empty()) sink.OnText(*text);
      if (delta_type == "input_json_delta" && partial_json.has_value()) {
        const int64_t block = block_index.value_or(-1);
        for (size_t i = 0; i < tool_blocks_.size(); ++i) {
          if (tool_blocks_[i] != block) continue;
          if (!partial_json->empty()) {
            sink.OnToolCall(ToolCallFragment{static_cast<int32_t>(i), "", "", *partial_json});
          }
          break;
        }
      }
      break;
    case Kind::kMessageDelta:
      delta_usage_.Update(usage);
      if (stop_reason.has_value()) stop_reason_.assign(*stop_reason);
      break;
    case Kind::kError:
      if (!has_error) {
        return adapter_util::MalformedError(kProvider, "error event (no error object)",
                                            simdjson::NO_SUCH_FIELD, data);
      }
      return ProviderErrorStatus(MakeError(0, std::move(error_type), error_message, api_key_));
    case Kind::kIgnored:
    case Kind::kMessageStop:
      break;
  }
  return absl::OkStatus();
}

void AnthropicStreamDecoder::Finish(StreamSink& sink) {
  finished_ = true;
  ChatFinish finish;
  finish.reason = AnthropicFinishReason(stop_reason_);
  finish.provider_reason = stop_reason_;
  // Each count: message_delta's when it has it (newer API versions repeat the input and cache
  // counts there; the cumulative output count is always there), else message_start's, whose
  // output count is only a placeholder.
  Usage usage = start_usage_;
  usage.Update(delta_usage_);
  SetCounts(usage, finish);
  sink.OnFinish(finish);
}

absl::Status AnthropicStreamDecoder::OnEnd(StreamSink&) {
  if (finished_) return absl::OkStatus();
  return absl::UnavailableError("anthropic: stream ended before message_stop");
}

}  // namespace

std::unique_ptr<StreamDecoder> AnthropicAdapter::NewStreamDecoder() const {
  return std::make_unique<AnthropicStreamDecoder>(api_key_);
}

}  // namespace turnpike
