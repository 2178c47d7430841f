// The streaming call's outbound queue: text coalescing while a write is in flight, and the
// high/low-water backpressure that pauses and resumes the upstream.
#include "server/grpc/outbound_queue.h"

#include <string>

#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(OutboundQueueTest, TextWaitingBehindAWriteJoinsOneDelta) {
  OutboundQueue q;
  v1::CompletionStart start;
  start.set_provider("p");
  q.PushStart(start);
  q.PushText("a");
  q.PushText("bc");
  q.PushText("def");
  EXPECT_EQ(q.queued_bytes(), 6u);
  ASSERT_TRUE(q.Pop().has_start());
  v1::StreamCompletionResponse delta = q.Pop();
  ASSERT_TRUE(delta.has_delta());
  EXPECT_EQ(delta.delta().text(), "abcdef");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
  // After the delta left, new text starts a new delta, and the finish comes after it.
  q.PushText("g");
  q.PushFinish(v1::CompletionFinish());
  EXPECT_EQ(q.Pop().delta().text(), "g");
  EXPECT_TRUE(q.Pop().has_finish());
  EXPECT_TRUE(q.empty());
}

TEST(OutboundQueueTest, PausesAboveTheHighWaterMarkAndResumesAtTheLowWaterMark) {
  OutboundQueue q(/*high_water=*/10, /*low_water=*/4);
  q.PushText("0123456789");
  EXPECT_FALSE(q.Congested());  // at the mark, not above it
  q.PushText("x");
  EXPECT_TRUE(q.Congested());
  EXPECT_FALSE(q.ResumeDue());  // 11 bytes still wait
  q.Pop();                      // the write of those 11 bytes completed
  EXPECT_TRUE(q.ResumeDue());
  EXPECT_FALSE(q.Congested());
  EXPECT_FALSE(q.ResumeDue());  // once only
}

TEST(OutboundQueueTest, StaysPausedUntilResumedEvenWhenTheQueueDrains) {
  OutboundQueue q(/*high_water=*/3, /*low_water=*/1);
  q.PushText("abcd");
  EXPECT_TRUE(q.Congested());
  q.Pop();
  // The upstream was told to pause: it stays paused until the call resumes it.
  EXPECT_TRUE(q.Congested());
  EXPECT_TRUE(q.ResumeDue());
  EXPECT_FALSE(q.Congested());
}

TEST(OutboundQueueTest, ClearDropsEverything) {
  OutboundQueue q(/*high_water=*/3, /*low_water=*/1);
  q.PushText("abcdef");
  q.PushFinish(v1::CompletionFinish());
  q.Clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
}

// Argument fragments of the pending call join it; a new call (or text) starts a new message.
TEST(OutboundQueueTest, ToolCallFragmentsJoinThePendingCall) {
  OutboundQueue q;
  q.PushToolCall(0, "call_1", "f", "");
  q.PushToolCall(0, "", "", "{\"a\"");
  q.PushToolCall(0, "", "", ":1}");
  q.PushToolCall(1, "call_2", "g", "{}");
  q.PushText("done");
  EXPECT_EQ(q.queued_bytes(), 13u);
  v1::StreamCompletionResponse first = q.Pop();
  ASSERT_TRUE(first.has_tool_call());
  EXPECT_EQ(first.tool_call().id(), "call_1");
  EXPECT_EQ(first.tool_call().name(), "f");
  EXPECT_EQ(first.tool_call().arguments(), "{\"a\":1}");
  v1::StreamCompletionResponse second = q.Pop();
  EXPECT_EQ(second.tool_call().index(), 1);
  EXPECT_EQ(second.tool_call().arguments(), "{}");
  EXPECT_TRUE(q.Pop().has_delta());
  EXPECT_EQ(q.queued_bytes(), 0u);
}

}  // namespace
}  // namespace turnpike
