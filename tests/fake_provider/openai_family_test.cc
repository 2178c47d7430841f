// Wire-format tests for the OpenAI dialects: OpenAI, Azure OpenAI, vLLM, llama.cpp, Ollama.
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/fake_provider/test_support.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider::testing {
namespace {

using simdjson::dom::element;

constexpr char kAzurePath[] =
    "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21";
constexpr char kAzureKey[] = "api-key: fake-key";

// 3 system words + 3 user words = 6 input tokens.
std::string ChatBody(bool stream, const std::string& extra = "") {
  return std::string("{\"model\":\"gpt-4o\",\"stream\":") + (stream ? "true" : "false") +
         ",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
         "{\"role\":\"user\",\"content\":\"Say hello please\"}]" +
         extra + "}";
}

// The JSON payloads of a stream, in order (parsed by a WHATWG SSE parser).
std::vector<std::string> DataEvents(const std::string& body) {
  std::vector<std::string> out;
  for (const SseEvent& ev : ParseSse(body).events) out.push_back(ev.data);
  return out;
}

std::string ContentOf(simdjson::dom::parser& parser, const std::vector<std::string>& events) {
  std::string text;
  for (const std::string& data : events) {
    if (data == "[DONE]") continue;
    element doc = ParseJson(parser, data);
    simdjson::dom::array choices;
    if (doc["choices"].get_array().get(choices) != simdjson::SUCCESS) continue;
    for (element c : choices) {
      std::string_view s;
      if (c["delta"]["content"].get(s) == simdjson::SUCCESS) text.append(s);
    }
  }
  return text;
}

std::vector<double> Floats(element arr) {
  std::vector<double> out;
  simdjson::dom::array a;
  EXPECT_EQ(arr.get_array().get(a), simdjson::SUCCESS);
  for (element e : a) out.push_back(e.get_double().value());
  return out;
}

class OpenAITest : public FakeProviderTest {};

TEST_F(OpenAITest, NonStreamingBody) {
  HttpResponse r = fp().Post("/v1/chat/completions", ChatBody(false), {kOpenAIAuth});
  ASSERT_EQ(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_TRUE(r.HasHeader("x-request-id"));
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["object"].get_string().value(), "chat.completion");
  EXPECT_EQ(doc["id"].get_string().value().substr(0, 9), "chatcmpl-");
  EXPECT_EQ(doc["model"].get_string().value(), "gpt-4o");
  element choice = doc["choices"].at(0);
  EXPECT_EQ(choice["message"]["role"].get_string().value(), "assistant");
  EXPECT_EQ(choice["message"]["content"].get_string().value(), "Hello from the fake provider");
  EXPECT_EQ(choice["finish_reason"].get_string().value(), "stop");
  EXPECT_EQ(doc["usage"]["prompt_tokens"].get_int64().value(), 6);
  EXPECT_EQ(doc["usage"]["completion_tokens"].get_int64().value(), 5);
  EXPECT_EQ(doc["usage"]["total_tokens"].get_int64().value(), 11);
}

// README "Tool calls": tools offered and no tool result last → a call of the first tool, its
// arguments in fragments; with a tool result last → the usual text.
TEST_F(OpenAITest, ToolsGetAToolCallInFragmentsUntilAToolResultComesBack) {
  const std::string tools =
      ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
      "\"parameters\":{\"type\":\"object\"}}}]";
  for (const char* path : {"/v1/chat/completions", "/ollama/v1/chat/completions"}) {
    SCOPED_TRACE(path);
    HttpResponse r = fp().Post(path, ChatBody(true, tools), {kOpenAIAuth});
    ASSERT_EQ(r.status, 200) << r.body;
    simdjson::dom::parser parser;
    std::string id, name, arguments, finish;
    int fragments = 0;
    for (const std::string& data : DataEvents(r.body)) {
      if (data == "[DONE]") continue;
      element doc = ParseJson(parser, data);
      simdjson::dom::array choices;
      if (doc["choices"].get_array().get(choices) != simdjson::SUCCESS) continue;
      for (element c : choices) {
        std::string_view s;
        if (c["finish_reason"].get(s) == simdjson::SUCCESS) finish = s;
        simdjson::dom::array calls;
        if (c["delta"]["tool_calls"].get_array().get(calls) != simdjson::SUCCESS) continue;
        for (element call : calls) {
          EXPECT_EQ(call["index"].get_int64().value(), 0);
          if (call["id"].get(s) == simdjson::SUCCESS) id = s;
          if (call["function"]["name"].get(s) == simdjson::SUCCESS) name = s;
          if (call["function"]["arguments"].get(s) == simdjson::SUCCESS) {
            arguments.append(s);
            ++fragments;
          }
        }
      }
    }
    EXPECT_EQ(id, kToolCallId);
    EXPECT_EQ(name, "get_weather");
    EXPECT_EQ(arguments, kToolArguments);
    EXPECT_EQ(fragments, kToolArgumentFragments + 1);  // the head's "" and the fragments
    EXPECT_EQ(finish, "tool_calls");
  }
  HttpResponse unary = fp().Post("/v1/chat/completions", ChatBody(false, tools), {kOpenAIAuth});
  simdjson::dom::parser parser;
  element message = ParseJson(parser, unary.body)["choices"].at(0)["message"];
  EXPECT_TRUE(message["content"].is_null());
  EXPECT_EQ(message["tool_calls"].at(0)["function"]["arguments"].get_string().value(),
            kToolArguments);

  const std::string answered =
      "{\"model\":\"gpt-4o\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":"
      "\"hi\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_fake_0\","
      "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
      "{\"role\":\"tool\",\"tool_call_id\":\"call_fake_0\",\"content\":\"sunny\"}]" +
      tools + "}";
  HttpResponse text = fp().Post("/v1/chat/completions", answered, {kOpenAIAuth});
  element answer = ParseJson(parser, text.body)["choices"].at(0);
  EXPECT_EQ(answer["message"]["content"].get_string().value(), "Hello from the fake provider");
  EXPECT_EQ(answer["finish_reason"].get_string().value(), "stop");
}

TEST_F(OpenAITest, StreamFramingFollowsTheCapturedSequence) {
  HttpResponse r = fp().Post("/v1/chat/completions", ChatBody(true), {kOpenAIAuth});
  ASSERT_EQ(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.body.find('\r'), std::string::npos);
  // Every event is exactly "data: <json>\n\n".
  size_t pos = 0;
  int blocks = 0;
  while (pos < r.body.size()) {
    const size_t end = r.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string block = r.body.substr(pos, end - pos);
    EXPECT_EQ(block.rfind("data: ", 0), 0u) << block;
    EXPECT_EQ(block.find('\n'), std::string::npos) << block;
    pos = end + 2;
    ++blocks;
  }
  std::vector<std::string> events = DataEvents(r.body);
  ASSERT_EQ(static_cast<int>(events.size()), blocks);
  ASSERT_EQ(events.size(), 8u);  // role, 5 content, finish, [DONE]
  EXPECT_EQ(events.back(), "[DONE]");

  simdjson::dom::parser parser;
  std::string id;
  int64_t created = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    element doc = ParseJson(parser, events[i]);
    EXPECT_EQ(doc["object"].get_string().value(), "chat.completion.chunk");
    if (i == 0) {
      id = std::string(doc["id"].get_string().value());
      created = doc["created"].get_int64().value();
    }
    EXPECT_EQ(doc["id"].get_string().value(), id);
    EXPECT_EQ(doc["created"].get_int64().value(), created);
    element usage;
    EXPECT_NE(doc["usage"].get(usage), simdjson::SUCCESS) << "no usage without include_usage";
  }
  element first = ParseJson(parser, events[0]);
  element delta = first["choices"].at(0)["delta"];
  EXPECT_EQ(delta["role"].get_string().value(), "assistant");
  EXPECT_EQ(delta["content"].get_string().value(), "");
  EXPECT_TRUE(first["choices"].at(0)["finish_reason"].is_null());

  EXPECT_EQ(ContentOf(parser, events), "Hello from the fake provider");
  element finish = ParseJson(parser, events[6]);
  EXPECT_EQ(finish["choices"].at(0)["delta"].get_object().value().size(), 0u);
  EXPECT_EQ(finish["choices"].at(0)["finish_reason"].get_string().value(), "stop");
}

TEST_F(OpenAITest, IncludeUsageAddsUsageChunkBeforeDone) {
  HttpResponse r =
      fp().Post("/v1/chat/completions",
                ChatBody(true, ",\"stream_options\":{\"include_usage\":true}"), {kOpenAIAuth});
  std::vector<std::string> events = DataEvents(r.body);
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(events.back(), "[DONE]");
  simdjson::dom::parser parser;
  element usage_chunk = ParseJson(parser, events[7]);
  EXPECT_EQ(usage_chunk["choices"].get_array().value().size(), 0u);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"].get_int64().value(), 6);
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"].get_int64().value(), 5);
  EXPECT_EQ(usage_chunk["usage"]["total_tokens"].get_int64().value(), 11);
  for (size_t i = 0; i < 7; ++i) {
    element doc = ParseJson(parser, events[i]);
    EXPECT_TRUE(doc["usage"].is_null()) << events[i];
  }
}

// docs/providers.md §1.3: cached_tokens is a part of prompt_tokens, reasoning_tokens a part of
// completion_tokens; the usage chunk of a stream and the unary body both carry them.
TEST_F(OpenAITest, CacheAndReasoningFaultsFillTheUsageDetails) {
  const std::vector<std::string> headers = {kOpenAIAuth, "x-fake-cached-tokens: 4",
                                            "x-fake-reasoning-tokens: 7"};
  simdjson::dom::parser parser;
  HttpResponse unary = fp().Post("/v1/chat/completions", ChatBody(false), headers);
  ASSERT_EQ(unary.status, 200) << unary.body;
  element usage = ParseJson(parser, unary.body)["usage"];
  EXPECT_EQ(usage["prompt_tokens"].get_int64().value(), 6);
  EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"].get_int64().value(), 4);
  EXPECT_EQ(usage["completion_tokens"].get_int64().value(), 12);
  EXPECT_EQ(usage["completion_tokens_details"]["reasoning_tokens"].get_int64().value(), 7);
  EXPECT_EQ(usage["total_tokens"].get_int64().value(), 18);
  HttpResponse stream =
      fp().Post("/v1/chat/completions",
                ChatBody(true, ",\"stream_options\":{\"include_usage\":true}"), headers);
  std::vector<std::string> events = DataEvents(stream.body);
  ASSERT_GE(events.size(), 2u);
  element chunk = ParseJson(parser, events[events.size() - 2]);
  EXPECT_EQ(chunk["usage"]["prompt_tokens_details"]["cached_tokens"].get_int64().value(), 4);
  EXPECT_EQ(chunk["usage"]["completion_tokens"].get_int64().value(), 12);
  EXPECT_EQ(chunk["usage"]["completion_tokens_details"]["reasoning_tokens"].get_int64().value(), 7);
  // More cached tokens than the prompt has are clamped to the prompt.
  HttpResponse clamped = fp().Post("/v1/chat/completions", ChatBody(false),
                                   {kOpenAIAuth, "x-fake-cached-tokens: 100"});
  EXPECT_EQ(ParseJson(parser, clamped.body)["usage"]["prompt_tokens_details"]["cached_tokens"]
                .get_int64()
                .value(),
            6);
}

TEST_F(OpenAITest, MaxCompletionTokensCutsTheAnswer) {
  HttpResponse r = fp().Post("/v1/chat/completions", ChatBody(true, ",\"max_completion_tokens\":2"),
                             {kOpenAIAuth});
  simdjson::dom::parser parser;
  std::vector<std::string> events = DataEvents(r.body);
  EXPECT_EQ(ContentOf(parser, events), "Hello from");
  ASSERT_EQ(events.size(), 5u);
  element finish = ParseJson(parser, events[3]);
  EXPECT_EQ(finish["choices"].at(0)["finish_reason"].get_string().value(), "length");

  r = fp().Post("/v1/chat/completions", ChatBody(false, ",\"max_tokens\":3"), {kOpenAIAuth});
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["choices"].at(0)["message"]["content"].get_string().value(), "Hello from the");
  EXPECT_EQ(doc["choices"].at(0)["finish_reason"].get_string().value(), "length");
  EXPECT_EQ(doc["usage"]["completion_tokens"].get_int64().value(), 3);
}

TEST_F(OpenAITest, ChunkCountCanBeSetPerRequest) {
  HttpResponse r =
      fp().Post("/v1/chat/completions", ChatBody(true), {kOpenAIAuth, "x-fake-chunks: 7"});
  simdjson::dom::parser parser;
  EXPECT_EQ(ContentOf(parser, DataEvents(r.body)), "Hello from the fake provider Hello from");
}

TEST_F(OpenAITest, StreamOptionsWithoutStreamIsRejectedExactly) {
  HttpResponse r =
      fp().Post("/v1/chat/completions",
                ChatBody(false, ",\"stream_options\":{\"include_usage\":true}"), {kOpenAIAuth});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(
      r.body,
      "{\"error\":{\"message\":\"The 'stream_options' parameter is only allowed when "
      "'stream' is enabled.\",\"type\":\"invalid_request_error\",\"param\":\"stream_options\","
      "\"code\":null}}");
}

TEST_F(OpenAITest, MissingAndWrongKeysAre401InvalidApiKey) {
  simdjson::dom::parser parser;
  HttpResponse r = fp().Post("/v1/chat/completions", ChatBody(false));
  EXPECT_EQ(r.status, 401);
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["error"]["code"].get_string().value(), "invalid_api_key");
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "invalid_request_error");
  EXPECT_TRUE(doc["error"]["param"].is_null());

  r = fp().Post("/v1/chat/completions", ChatBody(false),
                {"Authorization: Bearer sk-wrong-key-12345"});
  EXPECT_EQ(r.status, 401);
  doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["error"]["code"].get_string().value(), "invalid_api_key");
  const std::string message(doc["error"]["message"].get_string().value());
  EXPECT_NE(message.find("Incorrect API key provided: sk-***2345"), std::string::npos) << message;
}

TEST_F(OpenAITest, EmbeddingsAreDeterministicFloats) {
  const std::string body =
      "{\"model\":\"text-embedding-3-small\",\"input\":[\"the quick brown fox\",\"jumps\"]}";
  HttpResponse a = fp().Post("/v1/embeddings", body, {kOpenAIAuth});
  HttpResponse b = fp().Post("/v1/embeddings", body, {kOpenAIAuth});
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body, b.body);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, a.body);
  EXPECT_EQ(doc["object"].get_string().value(), "list");
  EXPECT_EQ(doc["model"].get_string().value(), "text-embedding-3-small");
  EXPECT_EQ(doc["usage"]["prompt_tokens"].get_int64().value(), 5);
  EXPECT_EQ(doc["usage"]["total_tokens"].get_int64().value(), 5);
  simdjson::dom::array data = doc["data"].get_array().value();
  ASSERT_EQ(data.size(), 2u);
  std::vector<double> first = Floats(data.at(0)["embedding"]);
  std::vector<double> second = Floats(data.at(1)["embedding"]);
  EXPECT_EQ(first.size(), 8u);
  EXPECT_EQ(second.size(), 8u);
  EXPECT_NE(first, second);
  EXPECT_EQ(data.at(1)["index"].get_int64().value(), 1);
  EXPECT_EQ(data.at(0)["object"].get_string().value(), "embedding");
}

TEST_F(OpenAITest, EmbeddingsBase64IsLittleEndianFloat32) {
  HttpResponse f =
      fp().Post("/v1/embeddings", "{\"model\":\"e\",\"input\":\"hello world\"}", {kOpenAIAuth});
  HttpResponse b = fp().Post(
      "/v1/embeddings",
      "{\"model\":\"e\",\"input\":\"hello world\",\"encoding_format\":\"base64\"}", {kOpenAIAuth});
  simdjson::dom::parser p1;
  simdjson::dom::parser p2;
  element floats = ParseJson(p1, f.body)["data"].at(0)["embedding"];
  std::string b64(ParseJson(p2, b.body)["data"].at(0)["embedding"].get_string().value());
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(b64, &raw));
  ASSERT_EQ(raw.size(), 32u);
  size_t i = 0;
  for (double want : Floats(floats)) {
    uint32_t bits = 0;
    for (int k = 0; k < 4; ++k)
      bits |= static_cast<uint32_t>(static_cast<uint8_t>(raw[i * 4 + k])) << (8 * k);
    float v;
    std::memcpy(&v, &bits, 4);
    EXPECT_EQ(static_cast<double>(v), want) << i;
    ++i;
  }
}

TEST_F(OpenAITest, BadRequestsGetOpenAIErrors) {
  simdjson::dom::parser parser;
  HttpResponse r = fp().Post("/v1/chat/completions", "{\"model\":\"gpt-4o\"}", {kOpenAIAuth});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["param"].get_string().value(), "messages");
  r = fp().Post("/v1/chat/completions", "{not json", {kOpenAIAuth});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["type"].get_string().value(),
            "invalid_request_error");
}

TEST_F(OpenAITest, UnknownPathIs404WithOpenAIErrorBody) {
  HttpResponse r = fp().Post("/v1/nope", "{}", {kOpenAIAuth});
  EXPECT_EQ(r.status, 404);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["error"]["message"].get_string().value(), "Invalid URL (POST /v1/nope)");
  EXPECT_EQ(doc["error"]["type"].get_string().value(), "invalid_request_error");
  EXPECT_TRUE(doc["error"]["code"].is_null());
}

class AzureTest : public FakeProviderTest {};

TEST_F(AzureTest, StreamStartsWithEmptyChoicesFilterChunk) {
  HttpResponse r = fp().Post(kAzurePath, ChatBody(true), {kAzureKey});
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> events = DataEvents(r.body);
  ASSERT_EQ(events.size(), 9u);  // filter, role, 5 content, finish, [DONE]
  simdjson::dom::parser parser;
  element first = ParseJson(parser, events[0]);
  EXPECT_EQ(first["choices"].get_array().value().size(), 0u);
  EXPECT_EQ(first["id"].get_string().value(), "");
  element filter = first["prompt_filter_results"].at(0)["content_filter_results"];
  EXPECT_FALSE(filter["hate"]["filtered"].get_bool().value());
  element role = ParseJson(parser, events[1]);
  EXPECT_EQ(role["choices"].at(0)["delta"]["role"].get_string().value(), "assistant");
  EXPECT_EQ(ContentOf(parser, events), "Hello from the fake provider");
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(AzureTest, NonStreamingUsesDeploymentAndFilterResults) {
  HttpResponse r = fp().Post(
      kAzurePath, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}", {kAzureKey});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["model"].get_string().value(), "my-gpt4o");
  EXPECT_EQ(doc["choices"].at(0)["message"]["content"].get_string().value(),
            "Hello from the fake provider");
  element cfr;
  EXPECT_EQ(doc["choices"].at(0)["content_filter_results"].get(cfr), simdjson::SUCCESS);
  EXPECT_EQ(doc["prompt_filter_results"].get_array().value().size(), 1u);
  EXPECT_EQ(doc["usage"]["prompt_tokens"].get_int64().value(), 2);
}

TEST_F(AzureTest, MissingApiVersionIs400InAzureShape) {
  HttpResponse r =
      fp().Post("/openai/deployments/my-gpt4o/chat/completions", ChatBody(false), {kAzureKey});
  EXPECT_EQ(r.status, 400);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_TRUE(err["code"].is_string());
  element type;
  EXPECT_NE(err["type"].get(type), simdjson::SUCCESS);
  EXPECT_NE(std::string(err["message"].get_string().value()).find("api-version"),
            std::string::npos);
}

TEST_F(AzureTest, WrongKeyIsAzure401) {
  HttpResponse r = fp().Post(kAzurePath, ChatBody(false), {"api-key: nope"});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body,
            "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid subscription "
            "key or wrong API endpoint. Make sure to provide a valid key for an active "
            "subscription and use a correct regional API endpoint for your resource.\"}}");
  r = fp().Post(kAzurePath, ChatBody(false), {kOpenAIAuth});  // a Bearer token also works
  EXPECT_EQ(r.status, 200);
}

TEST_F(AzureTest, InjectedRateLimitHasStringCode) {
  HttpResponse r = fp().Post(kAzurePath, ChatBody(false), {kAzureKey, "x-fake-status: 429"});
  EXPECT_EQ(r.status, 429);
  simdjson::dom::parser parser;
  EXPECT_EQ(ParseJson(parser, r.body)["error"]["code"].get_string().value(), "429");
}

TEST_F(AzureTest, Embeddings) {
  HttpResponse r = fp().Post("/openai/deployments/emb/embeddings?api-version=2024-10-21",
                             "{\"input\":\"a b c\"}", {kAzureKey});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  EXPECT_EQ(doc["data"].at(0)["embedding"].get_array().value().size(), 8u);
  EXPECT_EQ(doc["usage"]["prompt_tokens"].get_int64().value(), 3);
}

class LocalServersTest : public FakeProviderTest {};

TEST_F(LocalServersTest, VllmEmptyStreamOptionsMeansUsage) {
  HttpResponse r = fp().Post("/vllm/v1/chat/completions", ChatBody(true, ",\"stream_options\":{}"));
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> events = DataEvents(r.body);
  ASSERT_GE(events.size(), 3u);
  simdjson::dom::parser parser;
  element usage_chunk = ParseJson(parser, events[events.size() - 2]);
  EXPECT_EQ(usage_chunk["choices"].get_array().value().size(), 0u);
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"].get_int64().value(), 5);
  EXPECT_TRUE(ParseJson(parser, events[1])["usage"].is_null());

  r = fp().Post("/vllm/v1/chat/completions", ChatBody(true));  // no stream_options: no usage
  for (const std::string& data : DataEvents(r.body)) {
    EXPECT_EQ(data.find("\"usage\""), std::string::npos) << data;
  }
}

TEST_F(LocalServersTest, VllmRejectsStreamOptionsWithoutStream) {
  HttpResponse r =
      fp().Post("/vllm/v1/chat/completions", ChatBody(false, ",\"stream_options\":{}"));
  EXPECT_EQ(r.status, 400);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["code"].get_int64().value(), 400);
  EXPECT_EQ(err["message"].get_string().value(),
            "Stream options can only be defined when `stream=True`.");
}

TEST_F(LocalServersTest, LlamaCppSendsKeepAlivesAndTimings) {
  HttpResponse r = fp().Post("/llamacpp/v1/chat/completions", ChatBody(true));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body[0], ':') << "keep-alive comments come before the first chunk";
  SseParse parse = ParseSse(r.body);
  EXPECT_GE(parse.comment_lines, 1);
  ASSERT_GE(parse.events.size(), 3u);
  EXPECT_EQ(parse.events.back().data, "[DONE]");
  simdjson::dom::parser parser;
  element last = ParseJson(parser, parse.events[parse.events.size() - 2].data);
  element timings;
  EXPECT_EQ(last["timings"].get(timings), simdjson::SUCCESS);
  EXPECT_EQ(last["choices"].at(0)["finish_reason"].get_string().value(), "stop");
  element first = ParseJson(parser, parse.events[0].data);
  EXPECT_NE(first["timings"].get(timings), simdjson::SUCCESS);

  // With include_usage the timings move to the usage chunk.
  r = fp().Post("/llamacpp/v1/chat/completions",
                ChatBody(true, ",\"stream_options\":{\"include_usage\":true}"));
  parse = ParseSse(r.body);
  element usage_chunk = ParseJson(parser, parse.events[parse.events.size() - 2].data);
  EXPECT_EQ(usage_chunk["timings"].get(timings), simdjson::SUCCESS);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"].get_int64().value(), 6);
  element finish = ParseJson(parser, parse.events[parse.events.size() - 3].data);
  EXPECT_NE(finish["timings"].get(timings), simdjson::SUCCESS);
}

TEST_F(LocalServersTest, LlamaCppErrorShapeHasIntCode) {
  HttpResponse r =
      fp().Post("/llamacpp/v1/chat/completions", ChatBody(false), {"x-fake-status: 503"});
  EXPECT_EQ(r.status, 503);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["code"].get_int64().value(), 503);
  EXPECT_EQ(err["type"].get_string().value(), "unavailable_error");
}

TEST_F(LocalServersTest, OllamaIgnoresMaxCompletionTokens) {
  simdjson::dom::parser parser;
  HttpResponse r =
      fp().Post("/ollama/v1/chat/completions", ChatBody(true, ",\"max_completion_tokens\":2"));
  EXPECT_EQ(ContentOf(parser, DataEvents(r.body)), "Hello from the fake provider");
  r = fp().Post("/ollama/v1/chat/completions", ChatBody(true, ",\"max_tokens\":2"));
  EXPECT_EQ(ContentOf(parser, DataEvents(r.body)), "Hello from");
}

TEST_F(LocalServersTest, OllamaOmitsUsageUnlessAsked) {
  HttpResponse r = fp().Post("/ollama/v1/chat/completions", ChatBody(true));
  std::vector<std::string> events = DataEvents(r.body);
  for (const std::string& data : events) {
    EXPECT_EQ(data.find("\"usage\""), std::string::npos) << data;
  }
  r = fp().Post("/ollama/v1/chat/completions",
                ChatBody(true, ",\"stream_options\":{\"include_usage\":true}"));
  events = DataEvents(r.body);
  simdjson::dom::parser parser;
  element usage_chunk = ParseJson(parser, events[events.size() - 2]);
  EXPECT_EQ(usage_chunk["choices"].get_array().value().size(), 0u);
  EXPECT_EQ(usage_chunk["usage"]["total_tokens"].get_int64().value(), 11);
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    EXPECT_EQ(events[i].find("\"usage\""), std::string::npos) << events[i];
  }
}

TEST_F(LocalServersTest, OllamaErrorShape) {
  HttpResponse r =
      fp().Post("/ollama/v1/chat/completions", ChatBody(false), {"x-fake-status: 500"});
  EXPECT_EQ(r.status, 500);
  simdjson::dom::parser parser;
  element err = ParseJson(parser, r.body)["error"];
  EXPECT_EQ(err["type"].get_string().value(), "api_error");
  EXPECT_TRUE(err["code"].is_null());
  EXPECT_TRUE(err["param"].is_null());
}

TEST_F(LocalServersTest, LocalServersNeedNoKeyAndServeEmbeddings) {
  for (const char* prefix : {"/vllm", "/llamacpp", "/ollama"}) {
    HttpResponse r = fp().Post(std::string(prefix) + "/v1/chat/completions", ChatBody(false));
    EXPECT_EQ(r.status, 200) << prefix;
    r = fp().Post(std::string(prefix) + "/v1/embeddings", "{\"model\":\"e\",\"input\":\"x y\"}");
    EXPECT_EQ(r.status, 200) << prefix;
    simdjson::dom::parser parser;
    EXPECT_EQ(ParseJson(parser, r.body)["usage"]["prompt_tokens"].get_int64().value(), 2) << prefix;
  }
}

}  // namespace
}  // namespace turnpike::fake_provider::testing
