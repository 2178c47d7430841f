// Fault injection: x-fake-* headers, [[fake ...]] directives, the /_fake/faults queue, and
// every fault key, observed from a real HTTP client.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fake_provider/test_support.h"

namespace turnpike::fake_provider::testing {
namespace {

using simdjson::dom::element;

constexpr char kChat[] = "/v1/chat/completions";

std::string Body(bool stream, const std::string& text = "hello there") {
  return std::string("{\"model\":\"gpt-4o\",\"stream\":") + (stream ? "true" : "false") +
         ",\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
}

int CountContentChunks(const std::string& body) {
  int n = 0;
  for (const SseEvent& ev : ParseSse(body).events) {
    n += ev.data.find("\"delta\":{\"content\"") != std::string::npos;
  }
  return n;
}

class FaultsTest : public FakeProviderTest {};

TEST_F(FaultsTest, StatusAndRetryHeadersViaRequestHeaders) {
  HttpResponse r = fp().Post(
      kChat, Body(false),
      {kOpenAIAuth, "x-fake-status: 429", "x-fake-retry-after: 2", "x-fake-retry-after-ms: 1500"});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("retry-after"), "2");
  EXPECT_EQ(r.Header("retry-after-ms"), "1500");
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["code"].get_string().value(), "rate_limit_exceeded");
}

TEST_F(FaultsTest, StatusViaDirectiveInMessageText) {
  HttpResponse r = fp().Post(kChat, Body(false, "please [[fake status=503]] now"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 503);
  simdjson::dom::parser parser;
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["type"].get_string().value(), "server_error");
  // The same text without the directive is a normal answer.
  r = fp().Post(kChat, Body(false, "please now"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 200);
}

TEST_F(FaultsTest, ErrorTypeOverridesTypeAndCode) {
  HttpResponse r = fp().Post(
      kChat, Body(false, "[[fake status=429 error_type=insufficient_quota]]"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 429);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["type"].get_string().value(), "insufficient_quota");
  EXPECT_EQ(err["code"].get_string().value(), "insufficient_quota");
}

TEST_F(FaultsTest, QueuePopsOnePerProviderRequest) {
  HttpResponse q = fp().Post("/_fake/faults", "[{\"status\":503},{\"status\":503},{}]");
  ASSERT_EQ(q.status, 200);
  EXPECT_EQ(Stat(fp(), "queued_faults"), 3);
  EXPECT_EQ(fp().Post(kChat, Body(false), {kOpenAIAuth}).status, 503);
  EXPECT_EQ(fp().Get("/_fake/stats").status, 200);  // control calls do not pop
  EXPECT_EQ(fp().Post(kChat, Body(false), {kOpenAIAuth}).status, 503);
  EXPECT_EQ(fp().Post(kChat, Body(false), {kOpenAIAuth}).status, 200);
  EXPECT_EQ(fp().Post(kChat, Body(false), {kOpenAIAuth}).status, 200);
  EXPECT_EQ(Stat(fp(), "queued_faults"), 0);
}

TEST_F(FaultsTest, HeaderAndDirectiveOverrideQueueFieldByField) {
  ASSERT_EQ(fp().Post("/_fake/faults", "[{\"status\":503,\"retry_after\":3}]").status, 200);
  HttpResponse r = fp().Post(kChat, Body(false), {kOpenAIAuth, "x-fake-status: 429"});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("retry-after"), "3");
  ASSERT_EQ(fp().Post("/_fake/faults", "[{\"status\":503}]").status, 200);
  r = fp().Post(kChat, Body(false, "[[fake status=500]]"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 500);
}

TEST_F(FaultsTest, DeleteClearsTheQueueAndBadQueueIsRejected) {
  ASSERT_EQ(fp().Post("/_fake/faults", "[{\"status\":503}]").status, 200);
  EXPECT_EQ(fp().Delete("/_fake/faults").status, 200);
  EXPECT_EQ(fp().Post(kChat, Body(false), {kOpenAIAuth}).status, 200);
  EXPECT_EQ(fp().Post("/_fake/faults", "[{\"stauts\":503}]").status, 400);
  EXPECT_EQ(fp().Post("/_fake/faults", "not json").status, 400);
  EXPECT_EQ(Stat(fp(), "queued_faults"), 0);
}

TEST_F(FaultsTest, BadFaultSpecIs400) {
  HttpResponse r = fp().Post(kChat, Body(false), {kOpenAIAuth, "x-fake-status: banana"});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("status"), std::string::npos);
  r = fp().Post(kChat, Body(false, "[[fake nosuchkey=1]]"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nosuchkey"), std::string::npos);
}

TEST_F(FaultsTest, FirstByteDelay) {
  HttpResponse r = fp().Post(kChat, Body(false), {kOpenAIAuth, "x-fake-first-byte-delay-ms: 300"});
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.seconds, 0.29);
}

TEST_F(FaultsTest, ChunkDelaySpacesTheStream) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-chunk-delay-ms: 80"});
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.seconds, 4 * 0.08 - 0.01);  // 5 content chunks => 4 gaps
  EXPECT_EQ(CountContentChunks(r.body), 5);
  EXPECT_EQ(ParseSse(r.body).events.back().data, "[DONE]");
}

TEST_F(FaultsTest, ResetBeforeAnyByte) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-reset-after-chunks: 0"});
  EXPECT_NE(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(WaitForStat(fp(), "reset_streams", 1));
}

TEST_F(FaultsTest, ResetAfterTwoChunks) {
  for (const char* delay : {"0", "30"}) {
    HttpResponse r = fp().Post(kChat, Body(true),
                               {kOpenAIAuth, "x-fake-reset-after-chunks: 2",
                                std::string("x-fake-chunk-delay-ms: ") + delay});
    EXPECT_EQ(r.curl_code, CURLE_RECV_ERROR) << curl_easy_strerror(r.curl_code);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(CountContentChunks(r.body), 2) << r.body;
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  }
  EXPECT_TRUE(WaitForStat(fp(), "reset_streams", 2));
  EXPECT_EQ(Stat(fp(), "active_streams"), 0);
}

TEST_F(FaultsTest, StreamErrorAfterChunks) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-stream-error-after: 2"});
  ASSERT_EQ(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  SseParse parse = ParseSse(r.body);
  EXPECT_EQ(CountContentChunks(r.body), 2);
  ASSERT_FALSE(parse.events.empty());
  simdjson::dom::parser parser;
  element err = ParseJson(parser, parse.events.back().data)["error"];
  EXPECT_EQ(err["type"].get_string().value(), "server_error");
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
}

TEST_F(FaultsTest, MalformedEventAfterFirstChunkThenNormal) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-malformed: 1"});
  SseParse parse = ParseSse(r.body);
  ASSERT_EQ(parse.events.size(), 9u);  // role, c0, broken, c1..c4, finish, [DONE]
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(parse.events[1].data).get(doc), simdjson::SUCCESS);
  EXPECT_NE(parser.parse(parse.events[2].data).get(doc), simdjson::SUCCESS) << parse.events[2].data;
  EXPECT_EQ(parse.events.back().data, "[DONE]");
  EXPECT_EQ(CountContentChunks(r.body), 5);
}

TEST_F(FaultsTest, LineEndings) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-line-ending: crlf"});
  EXPECT_NE(r.body.find("\r\n\r\n"), std::string::npos);
  for (size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] == '\n') {
      ASSERT_EQ(r.body[i - 1], '\r');
    }
  }
  r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-line-ending: cr"});
  EXPECT_EQ(r.body.find('\n'), std::string::npos);
  EXPECT_NE(r.body.find("\r\r"), std::string::npos);
  EXPECT_EQ(ParseSse(r.body).events.size(), 8u);
  // Gemini defaults to CRLF; lf overrides it.
  r = fp().Post("/v1beta/models/g:streamGenerateContent?alt=sse&key=fake-key",
                "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}", {"x-fake-line-ending: lf"});
  EXPECT_EQ(r.body.find('\r'), std::string::npos);
  EXPECT_EQ(ParseSse(r.body).events.size(), 5u);
}

TEST_F(FaultsTest, TruncateDropsTheTerminalEvents) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-truncate: 1"});
  ASSERT_EQ(r.curl_code, CURLE_OK);
  EXPECT_EQ(CountContentChunks(r.body), 5);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_EQ(r.body.find("finish_reason\":\"stop"), std::string::npos);
  r = fp().Post(
      "/v1/messages",
      "{\"model\":\"c\",\"max_tokens\":9,\"stream\":true,\"messages\":[{\"role\":\"user\","
      "\"content\":\"hi\"}]}",
      {"x-api-key: fake-key", "anthropic-version: 2023-06-01", "x-fake-truncate: true"});
  EXPECT_EQ(r.body.find("message_stop"), std::string::npos);
  EXPECT_EQ(r.body.find("message_delta"), std::string::npos);
  // A truncated non-streaming body is not valid JSON.
  r = fp().Post(kChat, Body(false), {kOpenAIAuth, "x-fake-truncate: 1"});
  EXPECT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_NE(parser.parse(r.body).get(doc), simdjson::SUCCESS);
}

TEST_F(FaultsTest, StallKeepsConnectionOpenUntilClientLeaves) {
  HttpRequest req;
  req.path = kChat;
  req.body = Body(true);
  req.headers = {kOpenAIAuth, "x-fake-stall-after-chunks: 2"};
  req.timeout_ms = 500;
  HttpResponse r = fp().Send(req);
  EXPECT_EQ(r.curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_EQ(CountContentChunks(r.body), 2);
  EXPECT_TRUE(WaitForStat(fp(), "aborted_streams", 1));
  EXPECT_EQ(Stat(fp(), "active_streams"), 0);
}

TEST_F(FaultsTest, ClientLeavingDuringFirstByteDelayIsAnAbortedReply) {
  HttpRequest req;
  req.path = kChat;
  req.body = Body(false);
  req.headers = {kOpenAIAuth, "x-fake-first-byte-delay-ms: 5000"};
  req.timeout_ms = 200;
  HttpResponse r = fp().Send(req, /*fresh_connection=*/true);
  EXPECT_EQ(r.curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(WaitForStat(fp(), "aborted_replies", 1));
}

TEST_F(FaultsTest, StallAtZeroSendsNoHeaders) {
  HttpRequest req;
  req.path = kChat;
  req.body = Body(true);
  req.headers = {kOpenAIAuth, "x-fake-stall-after-chunks: 0"};
  req.timeout_ms = 300;
  HttpResponse r = fp().Send(req);
  EXPECT_EQ(r.curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(WaitForStat(fp(), "aborted_streams", 1));
}

TEST_F(FaultsTest, ClientAbortMidStreamIsCountedAsAborted) {
  HttpRequest req;
  req.path = kChat;
  req.body = Body(true);
  req.headers = {kOpenAIAuth, "x-fake-chunk-delay-ms: 100", "x-fake-chunks: 50"};
  req.abort_after_bytes = 1;  // the write callback returns 0 on the first body bytes
  HttpResponse r = fp().Send(req, /*fresh_connection=*/true);
  EXPECT_EQ(r.curl_code, CURLE_WRITE_ERROR);
  EXPECT_TRUE(WaitForStat(fp(), "aborted_streams", 1));
  EXPECT_TRUE(WaitForStat(fp(), "active_streams", 0));
  EXPECT_EQ(Stat(fp(), "completed_streams"), 0);
}

class StallTimeoutTest : public FakeProviderTest {
 protected:
  std::vector<std::string> ExtraArgs() override { return {"--stall_timeout_ms=200"}; }
};

TEST_F(StallTimeoutTest, ServerGivesUpOnAStalledStream) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-stall-after-chunks: 1"});
  EXPECT_NE(r.curl_code, CURLE_OK);
  EXPECT_EQ(CountContentChunks(r.body), 1);
  EXPECT_TRUE(WaitForStat(fp(), "reset_streams", 1));
}

class DefaultShapeTest : public FakeProviderTest {
 protected:
  std::vector<std::string> ExtraArgs() override { return {"--chunks=3", "--chunk_delay_ms=20"}; }
};

TEST_F(DefaultShapeTest, CommandLineSetsTheDefaultStreamShape) {
  HttpResponse r = fp().Post(kChat, Body(true), {kOpenAIAuth});
  EXPECT_EQ(CountContentChunks(r.body), 3);
  EXPECT_GE(r.seconds, 2 * 0.02 - 0.005);
  r = fp().Post(kChat, Body(true), {kOpenAIAuth, "x-fake-chunks: 1"});
  EXPECT_EQ(CountContentChunks(r.body), 1);
}

}  // namespace
}  // namespace turnpike::fake_provider::testing
