#include "tools/bench/sse_scanner.h"

#include <string>

#include "gtest/gtest.h"
#include "tools/bench/http_load.h"

namespace turnpike::bench {
namespace {

constexpr char kStream[] =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\": \" world\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n"
    "data: [DONE]\n\n";

TEST(SseScannerTest, CountsContentEventsInOneFeed) {
  SseScanner s;
  const SseScanner::Events e = s.Feed(kStream);
  EXPECT_EQ(e.data, 5);
  EXPECT_EQ(e.content, 2);
  EXPECT_TRUE(s.done());
}

TEST(SseScannerTest, BytesSplitAnywhere) {
  const std::string stream = kStream;
  for (size_t step : {1, 2, 3, 7, 64}) {
    SseScanner s;
    int data = 0;
    int content = 0;
    for (size_t i = 0; i < stream.size(); i += step) {
      const SseScanner::Events e = s.Feed(std::string_view(stream).substr(i, step));
      data += e.data;
      content += e.content;
    }
    EXPECT_EQ(data, 5) << step;
    EXPECT_EQ(content, 2) << step;
    EXPECT_TRUE(s.done()) << step;
  }
}

TEST(SseScannerTest, ResetForgetsTheLastResponse) {
  SseScanner s;
  s.Feed("data: [DONE]\n\ndata: {\"content\":\"x");
  s.Reset();
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.Feed("\"}\n").data, 0);  // the half line from before is gone
}

TEST(SseScannerTest, HasContent) {
  EXPECT_TRUE(SseScanner::HasContent(R"({"delta":{"content":"a"}})"));
  EXPECT_FALSE(SseScanner::HasContent(R"({"delta":{"content":""}})"));
  EXPECT_FALSE(SseScanner::HasContent(R"({"delta":{"content":null}})"));
  EXPECT_FALSE(SseScanner::HasContent(R"({"content_filter_results":{"x":1}})"));
  EXPECT_TRUE(SseScanner::HasContent(R"({"content_filter_results":{},"delta":{"content":"b"}})"));
}

TEST(ChatRequestBodyTest, MatchesWhatTheGatewaySends) {
  HttpTarget t;
  t.prompt = "hi \"there\"";
  EXPECT_EQ(
      ChatRequestBody(t),
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi \"there\""}],)"
      R"("stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":1024})");
  t.unary = true;
  EXPECT_EQ(ChatRequestBody(t).find("stream_options"), std::string::npos);
}

}  // namespace
}  // namespace turnpike::bench
