// Wire-format tests for the Anthropic Messages API and Gemini generateContent.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fake_provider/test_support.h"

namespace turnpike::fake_provider::testing {
namespace {

using simdjson::dom::element;

constexpr char kAnthropicKey[] = "x-api-key: fake-key";
constexpr char kAnthropicVersion[] = "anthropic-version: 2023-06-01";

// System prompt (2 words, as a block array) + 3 user words = 5 input tokens.
std::string MessagesBody(bool stream, const std::string& extra = ",\"max_tokens\":100") {
  return std::string("{\"model\":\"claude-sonnet-4-5\",\"stream\":") + (stream ? "true" : "false") +
         ",\"system\":[{\"type\":\"text\",\"text\":\"Be terse.\"}],"
         "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Say hello "
         "please\"}]}]" +
         extra + "}";
}

// System instruction (2 words) + 2 user words = 4 input tokens.
std::string GeminiBody(const std::string& extra = "") {
  return "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be terse.\"}]},"
         "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Say hello\"}]}]" +
         extra + "}";
}

constexpr char kGeminiStream[] = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
constexpr char kGeminiUnary[] = "/v1beta/models/gemini-2.5-flash:generateContent";
constexpr char kGeminiKey[] = "x-goog-api-key: fake-key";

class AnthropicTest : public FakeProviderTest {};

TEST_F(AnthropicTest, StreamEventSequence) {
  HttpResponse r =
      fp().Post("/v1/messages", MessagesBody(true), {kAnthropicKey, kAnthropicVersion});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_TRUE(r.HasHeader("request-id"));
  SseParse parse = ParseSse(r.body);
  std::vector<std::string> names;
  for (const SseEvent& ev : parse.events) names.push_back(ev.event);
  const std::vector<std::string> want = {
      "message_start",       "content_block_start", "ping",
      "content_block_delta", "content_block_delta", "content_block_delta",
      "content_block_delta", "content_block_delta", "content_block_stop",
      "message_delta",       "message_stop"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_FALSE(parse.trailing_partial);

  simdjson::dom::parser parser;
  std::string text;
  for (const SseEvent& ev : parse.events) {
    element doc = ParseJson(parser, ev.data);
    EXPECT_EQ(doc["type"].get_string().value(), ev.event) << "data.type matches event name";
    if (ev.event == "content_block_delta") {
      EXPECT_EQ(doc["delta"]["type"].get_string().value(), "text_delta");
      text.append(doc["delta"]["text"].get_string().value());
    }
  }
  EXPECT_EQ(text, "Hello from the fake provider");
  element start = ParseJson(parser, parse.events[0].data);
  EXPECT_EQ(start["message"]["usage"]["input_tokens"].get_int64().value(), 5);
  EXPECT_TRUE(start["message"]["stop_reason"].is_null());
  EXPECT_EQ(start["message"]["model"].get_string().value(), "claude-sonnet-4-5");
  element delta = ParseJson(parser, parse.events[9].data);
  EXPECT_EQ(delta["delta"]["stop_reason"].get_string().value(), "end_turn");
  EXPECT_EQ(delta["usage"]["output_tokens"].get_int64().value(), 5);
}

TEST_F(AnthropicTest, NonStreamingMessage) {
  HttpResponse r =
      fp().Post("/v1/messages", MessagesBody(false), {kAnthropicKey, kAnthropicVersion});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["type"].get_string().value(), "message");
  EXPECT_EQ(doc["role"].get_string().value(), "assistant");
  EXPECT_EQ(doc["id"].get_string().value().substr(0, 4), "msg_");
  EXPECT_EQ(doc["content"].at(0)["type"].get_string().value(), "text");
  EXPECT_EQ(doc["content"].at(0)["text"].get_string().value(), "Hello from the fake provider");
  EXPECT_EQ(doc["stop_reason"].get_string().value(), "end_turn");
  EXPECT_EQ(doc["usage"]["input_tokens"].get_int64().value(), 5);
  EXPECT_EQ(doc["usage"]["output_tokens"].get_int64().value(), 5);
}

TEST_F(AnthropicTest, MaxTokensStopsWithMaxTokensReason) {
  HttpResponse r = fp().Post("/v1/messages", MessagesBody(true, ",\"max_tokens\":2"),
                             {kAnthropicKey, kAnthropicVersion});
  SseParse parse = ParseSse(r.body);
  int deltas = 0;
  for (const SseEvent& ev : parse.events) deltas += ev.event == "content_block_delta";
  EXPECT_EQ(deltas, 2);
  simdjson::dom::parser parser;
  element delta = ParseJson(parser, parse.events[parse.events.size() - 2].data);
  EXPECT_EQ(delta["delta"]["stop_reason"].get_string().value(), "max_tokens");
  EXPECT_EQ(delta["usage"]["output_tokens"].get_int64().value(), 2);
}

TEST_F(AnthropicTest, RequiresVersionHeaderAndMaxTokens) {
  simdjson::dom::parser parser;
  HttpResponse r = fp().Post("/v1/messages", MessagesBody(false), {kAnthropicKey});
  EXPECT_EQ(r.status, 400);
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["type"].get_string().value(), "error");
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "invalid_request_error");
  EXPECT_NE(std::string(doc["error"]["message"].get_string().value()).find("anthropic-version"),
            std::string::npos);

  r = fp().Post("/v1/messages", MessagesBody(false, ""), {kAnthropicKey, kAnthropicVersion});
  EXPECT_EQ(r.status, 400);
  doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "invalid_request_error");
  EXPECT_NE(std::string(doc["error"]["message"].get_string().value()).find("max_tokens"),
            std::string::npos);
}

TEST_F(AnthropicTest, BadKeyIsAuthenticationErrorWithRequestId) {
  simdjson::dom::parser parser;
  for (const char* key : {"x-api-key: wrong", "x-ignored: 1"}) {
    HttpResponse r = fp().Post("/v1/messages", MessagesBody(false), {key, kAnthropicVersion});
    EXPECT_EQ(r.status, 401) << key;
    element doc = ParseJson(parser, r.body);
    EXPECT_EQ(doc["type"].get_string().value(), "error");
    EXPECT_EQ(doc["error"]["type"].get_string().value(), "authentication_error");
    std::string_view request_id = doc["request_id"].get_string().value();
    EXPECT_EQ(request_id.substr(0, 4), "req_");
    EXPECT_EQ(r.Header("request-id"), request_id);
  }
}

TEST_F(AnthropicTest, Injected529IsOverloadedError) {
  HttpResponse r = fp().Post("/v1/messages", MessagesBody(false),
                             {kAnthropicKey, kAnthropicVersion, "x-fake-status: 529"});
  EXPECT_EQ(r.status, 529);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "overloaded_error");
  r = fp().Post("/v1/messages", MessagesBody(false),
                {kAnthropicKey, kAnthropicVersion, "x-fake-status: 429"});
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["type"].get_string().value(), "rate_limit_error");
}

TEST_F(AnthropicTest, InStreamErrorEvent) {
  HttpResponse r = fp().Post("/v1/messages", MessagesBody(true),
                             {kAnthropicKey, kAnthropicVersion, "x-fake-stream-error-after: 2"});
  ASSERT_EQ(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  SseParse parse = ParseSse(r.body);
  ASSERT_FALSE(parse.events.empty());
  EXPECT_EQ(parse.events.back().event, "error");
  int deltas = 0;
  for (const SseEvent& ev : parse.events) {
    deltas += ev.event == "content_block_delta";
    EXPECT_NE(ev.event, "message_stop");
  }
  EXPECT_EQ(deltas, 2);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, parse.events.back().data);
  EXPECT_EQ(doc["type"].get_string().value(), "error");
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "overloaded_error");
}

// docs/providers.md §2.3: Anthropic's input_tokens excludes the cache reads and writes, which are
// reported beside it; thinking is inside output_tokens.
TEST_F(AnthropicTest, CacheFaultsSplitTheInputAndReasoningIsOutput) {
  const std::vector<std::string> headers = {
      kAnthropicKey, kAnthropicVersion, "x-fake-cached-tokens: 2", "x-fake-cache-write-tokens: 1",
      "x-fake-reasoning-tokens: 3"};
  HttpResponse r = fp().Post("/v1/messages", MessagesBody(false), headers);
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  element usage = ParseJson(parser, r.body)["usage"];
  EXPECT_EQ(usage["input_tokens"].get_int64().value(), 2);  // 5 prompt words - 2 read - 1 written
  EXPECT_EQ(usage["cache_read_input_tokens"].get_int64().value(), 2);
  EXPECT_EQ(usage["cache_creation_input_tokens"].get_int64().value(), 1);
  EXPECT_EQ(usage["output_tokens"].get_int64().value(), 8);
}

class GeminiTest : public FakeProviderTest {};

// docs/providers.md §3.3: cachedContentTokenCount is a part of promptTokenCount; thoughts are
// outside candidatesTokenCount but inside totalTokenCount.
TEST_F(GeminiTest, CacheAndReasoningFaultsFillUsageMetadata) {
  HttpResponse r = fp().Post(kGeminiUnary, GeminiBody(),
                             {kGeminiKey, "x-fake-cached-tokens: 3", "x-fake-reasoning-tokens: 6"});
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  element usage = ParseJson(parser, r.body)["usageMetadata"];
  EXPECT_EQ(usage["promptTokenCount"].get_int64().value(), 4);
  EXPECT_EQ(usage["cachedContentTokenCount"].get_int64().value(), 3);
  EXPECT_EQ(usage["candidatesTokenCount"].get_int64().value(), 5);
  EXPECT_EQ(usage["thoughtsTokenCount"].get_int64().value(), 6);
  EXPECT_EQ(usage["totalTokenCount"].get_int64().value(), 15);
}

TEST_F(GeminiTest, GenerateContentBody) {
  HttpResponse r = fp().Post(kGeminiUnary, GeminiBody(), {kGeminiKey});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  element cand = doc["candidates"].at(0);
  EXPECT_EQ(cand["content"]["role"].get_string().value(), "model");
  EXPECT_EQ(cand["content"]["parts"].at(0)["text"].get_string().value(),
            "Hello from the fake provider");
  EXPECT_EQ(cand["finishReason"].get_string().value(), "STOP");
  EXPECT_EQ(doc["usageMetadata"]["promptTokenCount"].get_int64().value(), 4);
  EXPECT_EQ(doc["usageMetadata"]["candidatesTokenCount"].get_int64().value(), 5);
  EXPECT_EQ(doc["usageMetadata"]["totalTokenCount"].get_int64().value(), 9);
  EXPECT_EQ(doc["modelVersion"].get_string().value(), "gemini-2.5-flash");
}

TEST_F(GeminiTest, StreamUsesCrlfAndCumulativeUsage) {
  HttpResponse r = fp().Post(kGeminiStream, GeminiBody(), {kGeminiKey});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  // CRLF framing: every LF is preceded by CR, events end with CRLFCRLF.
  for (size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] == '\n') {
      ASSERT_TRUE(i > 0 && r.body[i - 1] == '\r') << "bare LF at " << i;
    }
  }
  EXPECT_EQ(r.body.substr(r.body.size() - 4), "\r\n\r\n");
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  SseParse parse = ParseSse(r.body);
  ASSERT_EQ(parse.events.size(), 5u);
  simdjson::dom::parser parser;
  std::string text;
  for (size_t i = 0; i < parse.events.size(); ++i) {
    element doc = ParseJson(parser, parse.events[i].data);
    element cand = doc["candidates"].at(0);
    text.append(cand["content"]["parts"].at(0)["text"].get_string().value());
    EXPECT_EQ(doc["usageMetadata"]["candidatesTokenCount"].get_int64().value(),
              static_cast<int64_t>(i + 1));
    EXPECT_EQ(doc["usageMetadata"]["promptTokenCount"].get_int64().value(), 4);
    element finish;
    const bool has_finish = cand["finishReason"].get(finish) == simdjson::SUCCESS;
    EXPECT_EQ(has_finish, i + 1 == parse.events.size()) << i;
    if (has_finish) {
      EXPECT_EQ(finish.get_string().value(), "STOP");
    }
  }
  EXPECT_EQ(text, "Hello from the fake provider");
}

// Gemini's OpenAPI-subset schema fields refuse JSON Schema's additionalProperties with a 400;
// the JSON Schema fields take it (docs/providers.md, 3.6).
TEST_F(GeminiTest, AdditionalPropertiesIsRefusedInResponseSchemaAndTakenInResponseJsonSchema) {
  const std::string schema =
      R"({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false})";
  HttpResponse r = fp().Post(
      kGeminiUnary,
      GeminiBody(R"(,"generationConfig":{"responseMimeType":"application/json","responseSchema":)" +
                 schema + "}"),
      {kGeminiKey});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find(R"(Unknown name \"additionalProperties\")"), std::string::npos) << r.body;
  r = fp().Post(kGeminiUnary,
                GeminiBody(R"(,"tools":[{"functionDeclarations":[{"name":"f","parameters":)" +
                           schema + "}]}]"),
                {kGeminiKey});
  EXPECT_EQ(r.status, 400) << r.body;
  r = fp().Post(
      kGeminiUnary,
      GeminiBody(
          R"(,"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":)" +
          schema + R"(},"tools":[{"functionDeclarations":[{"name":"f","parametersJsonSchema":)" +
          schema + "}]}]"),
      {kGeminiKey});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(GeminiTest, KeyInQueryOrHeader) {
  HttpResponse r = fp().Post(std::string(kGeminiUnary) + "?key=fake-key", GeminiBody());
  EXPECT_EQ(r.status, 200);
  r = fp().Post(std::string(kGeminiStream) + "&key=fake-key", GeminiBody());
  EXPECT_EQ(r.status, 200);
}

TEST_F(GeminiTest, InvalidKeyIs400ApiKeyInvalid) {
  for (const std::string& path :
       {std::string(kGeminiUnary) + "?key=bad", std::string(kGeminiUnary)}) {
    HttpResponse r = fp().Post(path, GeminiBody());
    EXPECT_EQ(r.status, 400) << path;
    simdjson::dom::parser parser;
    element err = ParseJson(parser, r.body)["error"];
    EXPECT_EQ(err["code"].get_int64().value(), 400);
    EXPECT_EQ(err["status"].get_string().value(), "INVALID_ARGUMENT");
    EXPECT_EQ(err["message"].get_string().value(),
              "API key not valid. Please pass a valid API key.");
    element info = err["details"].at(0);
    EXPECT_EQ(info["@type"].get_string().value(), "type.googleapis.com/google.rpc.ErrorInfo");
    EXPECT_EQ(info["reason"].get_string().value(), "API_KEY_INVALID");
    EXPECT_EQ(info["domain"].get_string().value(), "googleapis.com");
    EXPECT_EQ(info["metadata"]["service"].get_string().value(),
              "generativelanguage.googleapis.com");
  }
}

TEST_F(GeminiTest, MaxOutputTokensFinishesWithMaxTokens) {
  HttpResponse r = fp().Post(
      kGeminiStream, GeminiBody(",\"generationConfig\":{\"maxOutputTokens\":2}"), {kGeminiKey});
  SseParse parse = ParseSse(r.body);
  ASSERT_EQ(parse.events.size(), 2u);
  simdjson::dom::parser parser;
  element last = ParseJson(parser, parse.events[1].data);
  EXPECT_EQ(last["candidates"].at(0)["finishReason"].get_string().value(), "MAX_TOKENS");
}

TEST_F(GeminiTest, InStreamErrorIsUnavailable) {
  HttpResponse r =
      fp().Post(kGeminiStream, GeminiBody(), {kGeminiKey, "x-fake-stream-error-after: 1"});
  SseParse parse = ParseSse(r.body);
  ASSERT_EQ(parse.events.size(), 2u);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, parse.events[1].data)["error"];
  EXPECT_EQ(err["code"].get_int64().value(), 503);
  EXPECT_EQ(err["status"].get_string().value(), "UNAVAILABLE");
}

TEST_F(GeminiTest, InjectedErrorsUseGoogleStatus) {
  HttpResponse r = fp().Post(kGeminiUnary, GeminiBody(),
                             {kGeminiKey, "x-fake-status: 429", "x-fake-retry-after: 17"});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("retry-after"), "17");
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["status"].get_string().value(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(err["details"].at(0)["retryDelay"].get_string().value(), "17s");
}

TEST_F(GeminiTest, WithoutAltSseStreamsAJsonArray) {
  HttpResponse r = fp().Post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", GeminiBody(),
                             {kGeminiKey});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  ASSERT_TRUE(doc.is_array());
  EXPECT_EQ(doc.get_array().value().size(), 5u);
}

TEST_F(GeminiTest, MissingContentsIs400) {
  HttpResponse r = fp().Post(kGeminiUnary, "{}", {kGeminiKey});
  EXPECT_EQ(r.status, 400);
  simdjson::dom::parser parser;
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["status"].get_string().value(), "INVALID_ARGUMENT");
}

}  // namespace
}  // namespace turnpike::fake_provider::testing
