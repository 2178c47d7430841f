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
  return message;
}

void OutboundQueue::Clear() {
  queue_.clear();
  queued_bytes_ = 0;
}

}  // namespace turnpike
