// OutboundQueue holds the messages of one streaming completion that wait for gRPC to send them,
// and decides the call's backpressure: text that arrives while a write is in flight joins the
// pending delta (a slow reader gets fewer, larger deltas, never an unbounded queue); above the
// high-water mark of queued text the upstream must pause, and it may resume once a write leaves
// no more than the low-water mark (docs/architecture.md, "Backpressure").
// Not thread-safe: the owning call guards it with its mutex.
#ifndef TURNPIKE_SERVER_GRPC_OUTBOUND_QUEUE_H_
#define TURNPIKE_SERVER_GRPC_OUTBOUND_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

#include "turnpike/v1/completion.pb.h"

namespace turnpike {

class OutboundQueue {
 public:
  static constexpr size_t kHighWaterBytes = 64 << 10;
  static constexpr size_t kLowWaterBytes = 16 << 10;

  OutboundQueue(size_t high_water = kHighWaterBytes, size_t low_water = kLowWaterBytes)
      : high_water_(high_water), low_water_(low_water) {}

  void PushStart(const v1::CompletionStart& start);
  // Appends to the last pending delta if there is one, else queues a new delta.
  void PushText(std::string_view text);
  // Queues a piece of a tool call; argument fragments of the call whose delta is still pending
  // join it (the concatenation is unchanged, so the client's arguments stay byte-identical).
  void PushToolCall(int32_t index, std::string_view id, std::string_view name,
                    std::string_view arguments);
  void PushFinish(const v1::CompletionFinish& finish);

  // True while the upstream must stay paused: set when more than the high-water mark of text
  // waits, cleared only by ResumeDue().
  bool Congested();
  // Whether a paused upstream should resume now (no more than the low-water mark waits); clears
  // the pause when it says yes.
  bool ResumeDue();

  bool empty() const { return queue_.empty(); }
  // Takes the oldest message. Requires !empty().
  v1::StreamCompletionResponse Pop();
  // Drops everything (the client went away).
  void Clear();
  // Text and tool-call argument bytes waiting to be sent.
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  const size_t high_water_;
  const size_t low_water_;
  std::deque<v1::StreamCompletionResponse> queue_;
  size_t queued_bytes_ = 0;
  bool paused_ = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_OUTBOUND_QUEUE_H_
