#include "server/grpc/outbound_queue.h"

#include <string>
#include <utility>

namespace turnpike {

void OutboundQueue::PushStart(const v1::CompletionStart& start) {
  queue_.emplace_back();
  *queue_.back().mutable_start() = start;
}

void OutboundQueue::PushText(std::string_view text) {
  if (!queue_.empty() && queue_.back().has_delta()) {
    queue_.back().mutable_delta()->mutable_text()->append(text);
  } else {
    queue_.emplace_back();
    queue_.back().mutable_delta()->set_text(std::string(text));
  }
  queued_bytes_ += text.size();
}

void OutboundQueue::PushToolCall(int32_t index, std::string_view id, std::string_view name,
                                 std::string_view arguments) {
  if (id.empty() && name.empty() && !queue_.empty() && queue_.back().has_tool_call() &&
      queue_.back().tool_call().index() == index) {
    queue_.back().mutable_tool_call()->mutable_arguments()->append(arguments);
  } else {
    queue_.emplace_back();
    v1::ToolCallDelta* delta = queue_.back().mutable_tool_call();
    delta->set_index(index);
    delta->set_id(std::string(id));
    delta->set_name(std::string(name));
    delta->set_arguments(std::string(arguments));
  }
  queued_bytes_ += arguments.size();
}

void OutboundQueue::PushFinish(const v1::CompletionFinish& finish) {
  queue_.emplace_back();
  *queue_.back().mutable_finish() = finish;
}

bool OutboundQueue::Congested() {
  if (queued_bytes_ > high_water_) paused_ = true;
  return paused_;
}

bool OutboundQueue::ResumeDue() {
  if (!paused_ || queued_bytes_ > low_water_) return false;
  paused_ = false;
  return true;
}

v1::StreamCompletionResponse OutboundQueue::Pop() {
  v1::StreamCompletionResponse message = std::move(queue_.front());
  queue_.pop_front();
  if (message.has_delta()) queued_bytes_ -= message.delta().text().size();
  if (message.has_tool_call()) queued_bytes_ -= message.tool_call().arguments().size();
  return message;
}

void OutboundQueue::Clear() {
  queue_.clear();
  queued_bytes_ = 0;
}

}  // namespace turnpike
