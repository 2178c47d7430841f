// The Gemini adapter against docs/providers.md §3: request building, the recorded gemini-2.5-flash
// stream with LF and CRLF framing decoded whole and in small random reads, usage and finish
// rules, blocked prompts, in-stream errors, truncation, malformed data and the error table.
#include "server/providers/gemini_adapter.h"

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "server/providers/adapters.h"
#include "simdjson.h"
#include "tests/server/providers/adapter_test_util.h"

namespace turnpike {
namespace {

using ::turnpike::testing::CountHeaders;
using ::turnpike::testing::Decode;
using ::turnpike::testing::Decoded;
using ::turnpike::testing::DecodeWithReads;
using ::turnpike::testing::FindHeader;
using ::turnpike::testing::RandomReads;
using ::turnpike::testing::ReadTestdata;

constexpr char kKey[] = "AIzaSyTestKey-0123456789abcdefghijklmn";

config::v1::Provider MakeProvider(
    std::string base_url = "https://generativelanguage.googleapis.com") {
  config::v1::Provider provider;
  provider.set_name("gemini-test");
  provider.set_kind(config::v1::PROVIDER_KIND_GEMINI);
  provider.set_base_url(std::move(base_url));
  return provider;
}

std::unique_ptr<ProviderAdapter> MakeAdapter(
    const config::v1::Provider& provider = MakeProvider()) {
  return NewGeminiAdapter(provider, kKey);
}

google::protobuf::RepeatedPtrField<v1::Message> Messages(
    std::vector<std::pair<v1::Role, std::string>> turns) {
  google::protobuf::RepeatedPtrField<v1::Message> messages;
  for (auto& [role, content] : turns) {
    v1::Message* m = messages.Add();
    m->set_role(role);
    m->set_content(content);
  }
  return messages;
}

ChatParams Params(const google::protobuf::RepeatedPtrField<v1::Message>& messages,
                  std::string_view model = "gemini-2.5-flash", bool stream = true) {
  ChatParams params;
  params.model = model;
  params.messages = &messages;
  params.max_tokens = 128;
  params.stream = stream;
  return params;
}

// ---------------------------------------------------------------------------------------------
// Request building

TEST(GeminiRequestTest, StreamingRequestCarriesEveryField) {
  auto messages = Messages({{v1::ROLE_SYSTEM, "You are terse."},
                            {v1::ROLE_USER, "Explain how AI works"},
                            {v1::ROLE_ASSISTANT, "It predicts."},
                            {v1::ROLE_SYSTEM, "Use one sentence."},
                            {v1::ROLE_USER, "More?"}});
  ChatParams params = Params(messages);
  params.temperature = 1.5;  // Gemini's range is 0–2 like ours: not clamped
  params.top_p = 0.95;
  params.stop = {"\n\n"};
  params.user = "user-42";
  HttpRequest request = MakeAdapter()->BuildChatRequest(params);

  EXPECT_EQ(request.url,
            "https://generativelanguage.googleapis.com/v1beta/models/"
            "gemini-2.5-flash:streamGenerateContent?alt=sse");
  EXPECT_EQ(request.url.find("key="), std::string::npos);
  EXPECT_EQ(FindHeader(request, "x-goog-api-key"), std::string("x-goog-api-key: ") + kKey);
  EXPECT_EQ(FindHeader(request, "content-type"), "content-type: application/json");
  EXPECT_EQ(FindHeader(request, "accept"), "accept: text/event-stream");

  simdjson::dom::parser parser;
  simdjson::dom::element body = parser.parse(request.body);
  simdjson::dom::array contents = body["contents"];
  ASSERT_EQ(contents.size(), 3u);
  EXPECT_EQ(std::string_view(contents.at(0)["role"]), "user");
  EXPECT_EQ(std::string_view(contents.at(0)["parts"].at(0)["text"]), "Explain how AI works");
  EXPECT_EQ(std::string_view(contents.at(1)["role"]), "model");
  EXPECT_EQ(std::string_view(contents.at(1)["parts"].at(0)["text"]), "It predicts.");
  EXPECT_EQ(std::string_view(contents.at(2)["role"]), "user");
  simdjson::dom::array system_parts = body["systemInstruction"]["parts"];
  ASSERT_EQ(system_parts.size(), 2u);
  EXPECT_EQ(std::string_view(system_parts.at(0)["text"]), "You are terse.");
  EXPECT_EQ(std::string_view(system_parts.at(1)["text"]), "Use one sentence.");
  simdjson::dom::element config = body["generationConfig"];
  EXPECT_EQ(int64_t(config["maxOutputTokens"]), 128);
  EXPECT_DOUBLE_EQ(double(config["temperature"]), 1.5);
  EXPECT_DOUBLE_EQ(double(config["topP"]), 0.95);
  EXPECT_EQ(std::string_view(config["stopSequences"].at(0)), "\n\n");
  // No end-user field exists in the API; the user id must not leak into the body.
  EXPECT_EQ(request.body.find("user-42"), std::string::npos);
}

TEST(GeminiRequestTest, UnaryRequestAndOmittedFields) {
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  HttpRequest request = MakeAdapter()->BuildChatRequest(Params(messages, "gemini-2.5-pro", false));
  EXPECT_EQ(
      request.url,
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent");
  EXPECT_EQ(FindHeader(request, "accept"), "accept: application/json");
  simdjson::dom::parser parser;
  simdjson::dom::element body = parser.parse(request.body);
  EXPECT_EQ(body["systemInstruction"].error(), simdjson::NO_SUCH_FIELD);
  for (const char* absent : {"temperature", "topP", "stopSequences"}) {
    EXPECT_EQ(body["generationConfig"][absent].error(), simdjson::NO_SUCH_FIELD) << absent;
  }
}

TEST(GeminiRequestTest, ConsecutiveSameRoleTurnsShareOneContentAndEmptyOnesAreDropped) {
  auto messages = Messages({{v1::ROLE_USER, "a"},
                            {v1::ROLE_USER, ""},
                            {v1::ROLE_USER, "b"},
                            {v1::ROLE_ASSISTANT, ""},
                            {v1::ROLE_USER, "c"},
                            {v1::ROLE_ASSISTANT, "d"}});
  simdjson::dom::parser parser;
  simdjson::dom::element body =
      parser.parse(MakeAdapter()->BuildChatRequest(Params(messages)).body);
  simdjson::dom::array contents = body["contents"];
  ASSERT_EQ(contents.size(), 2u);
  simdjson::dom::array user_parts = contents.at(0)["parts"];
  ASSERT_EQ(user_parts.size(), 3u);
  EXPECT_EQ(std::string_view(user_parts.at(2)["text"]), "c");
  EXPECT_EQ(std::string_view(contents.at(1)["role"]), "model");
}

TEST(GeminiRequestTest, UrlVariants) {
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  const std::string kSuffix = ":generateContent";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"https://generativelanguage.googleapis.com/", "gemini-2.5-flash",
       "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"},
      {"https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash",
       "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"},
      {"https://generativelanguage.googleapis.com/v1/", "gemini-2.5-flash",
       "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash"},
      {"http://127.0.0.1:9000", "models/gemini-2.0-flash-001",
       "http://127.0.0.1:9000/v1beta/models/gemini-2.0-flash-001"},
      {"", "tunedModels/my-model-42",
       "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-model-42"},
      // A stray character cannot change the URL's shape.
      {"", "bad model?x=1#",
       "https://generativelanguage.googleapis.com/v1beta/models/bad%20model%3Fx%3D1%23"},
  };
  for (const auto& [base, model, prefix] : cases) {
    EXPECT_EQ(MakeAdapter(MakeProvider(base))->BuildChatRequest(Params(messages, model, false)).url,
              prefix + kSuffix)
        << base << " " << model;
  }
}

TEST(GeminiRequestTest, ProviderHeaders) {
  config::v1::Provider provider = MakeProvider();
  (*provider.mutable_headers())["X-Goog-User-Project"] = "my-project";
  (*provider.mutable_headers())["bad"] = "x\ny";
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  HttpRequest request = MakeAdapter(provider)->BuildChatRequest(Params(messages));
  EXPECT_EQ(FindHeader(request, "x-goog-user-project"), "X-Goog-User-Project: my-project");
  EXPECT_EQ(CountHeaders(request, "bad"), 0);
  EXPECT_EQ(CountHeaders(request, "x-goog-api-key"), 1);
}

TEST(GeminiRequestTest, FactoryPicksGeminiByKind) {
  absl::StatusOr<std::unique_ptr<ProviderAdapter>> adapter =
      MakeProviderAdapter(MakeProvider(), kKey);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  EXPECT_TRUE((*adapter)
                  ->BuildChatRequest(Params(messages))
                  .url.ends_with("models/gemini-2.5-flash:streamGenerateContent?alt=sse"));
  EXPECT_FALSE((*adapter)->BuildEmbedRequest(EmbedParams()).ok());
}

// ---------------------------------------------------------------------------------------------
// The recorded stream

void ExpectCaptureDecoded(const Decoded& d, const std::string& how) {
  ASSERT_TRUE(d.status.ok()) << how << ": " << d.status;
  EXPECT_EQ(d.sink.pieces, (std::vector<std::string>{"Hello", ", World!"})) << how;
  ASSERT_EQ(d.sink.finish_calls, 1) << how;
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_STOP) << how;
  EXPECT_EQ(d.sink.finish->provider_reason, "STOP") << how;
  EXPECT_EQ(d.sink.finish->input_tokens, 11) << how;
  EXPECT_EQ(d.sink.finish->output_tokens, 4 + 18) << how;  // candidates + thoughts
  EXPECT_EQ(d.sink.finish->reasoning_output_tokens, 18) << how;
  EXPECT_EQ(d.sink.finish->cached_input_tokens, 0) << how;
  EXPECT_TRUE(d.sink.finish->usage_reported) << how;
}

class GeminiCaptureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GeminiCaptureTest, WholeOneByteAndRandomReads) {
  auto adapter = MakeAdapter();
  const std::string body = ReadTestdata(std::string("gemini/") + GetParam());
  ExpectCaptureDecoded(Decode(*adapter, body), "whole");
  ExpectCaptureDecoded(DecodeWithReads(*adapter, body, {1}), "1-byte reads");
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    ExpectCaptureDecoded(DecodeWithReads(*adapter, body, RandomReads(seed, 64, 9)),
                         "seed " + std::to_string(seed));
  }
  // Every two-read split, so CR|LF is also split across reads for the CRLF copy.
  for (size_t cut = 1; cut < body.size(); ++cut) {
    ExpectCaptureDecoded(DecodeWithReads(*adapter, body, {cut, body.size()}),
                         "split at " + std::to_string(cut));
  }
}

INSTANTIATE_TEST_SUITE_P(Framing, GeminiCaptureTest,
                         ::testing::Values("native_stream_lf.sse", "native_stream_crlf.sse"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param).find("crlf") != std::string::npos ? "Crlf"
                                                                                            : "Lf";
                         });

TEST(GeminiStreamTest, CaptureAsStoredLosesItsUnterminatedFinalEvent) {
  // The stored capture ends one LF after the last data line. WHATWG SSE drops an event that no
  // blank line terminates, so the chunk carrying finishReason is lost and the stream counts as
  // cut off. Documents the current contract (see docs/providers.md §7.1 rule 6).
  Decoded d = Decode(*MakeAdapter(), ReadTestdata("gemini/native_stream_as_stored.txt"));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(d.status.message(), "gemini: stream ended before finishReason");
  EXPECT_EQ(d.sink.text, "Hello");
}

// Builds an SSE body from chunks, LF-framed.
std::string Sse(const std::vector<std::string>& chunks) {
  std::string body;
  for (const std::string& chunk : chunks) body += "data: " + chunk + "\n\n";
  return body;
}

// functionCall parts (docs/providers.md §3.3): each call whole, its args object's text as sent;
// a missing id is made from the call's position; STOP after calls is a tool-call finish. Fed
// whole and split in two at every byte.
TEST(GeminiStreamTest, FunctionCallsAtEverySplit) {
  auto adapter = MakeAdapter();
  const std::string body = ReadTestdata("gemini/function_call_stream.sse");
  auto check = [](const Decoded& d, const std::string& how) {
    ASSERT_TRUE(d.status.ok()) << how << ": " << d.status;
    EXPECT_EQ(d.sink.text, "Let me look.") << how;
    const std::vector<v1::ToolCall>& calls = d.sink.tool_calls.calls();
    ASSERT_EQ(calls.size(), 2u) << how;
    EXPECT_EQ(calls[0].id(), "call_0") << how;
    EXPECT_EQ(calls[0].name(), "get_weather") << how;
    EXPECT_EQ(calls[0].arguments_json(),
              R"({"city": "São Paulo","note": "say \"hi\" 👋","days": [1, 2]})")
        << how;
    EXPECT_EQ(calls[1].id(), "fc_b") << how;
    EXPECT_EQ(calls[1].arguments_json(), "{}") << how;
    ASSERT_EQ(d.sink.finish_calls, 1) << how;
    EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_TOOL_CALLS) << how;
    EXPECT_EQ(d.sink.finish->provider_reason, "STOP") << how;
  };
  check(Decode(*adapter, body), "whole");
  for (size_t split = 1; split < body.size(); ++split) {
    check(DecodeWithReads(*adapter, body, {split, body.size()}), "split " + std::to_string(split));
    if (::testing::Test::HasFailure()) break;
  }
  // The unary body is one such response.
  const std::string unary =
      body.substr(body.find("data: {\"candidates\": [{\"content\": {\"parts\": "
                            "[{\"functionCall\"") +
                  6);
  absl::StatusOr<ChatResult> result = adapter->ParseChatResponse(unary);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->tool_calls.size(), 2u);
  EXPECT_EQ(result->tool_calls[0].name(), "get_weather");
  EXPECT_EQ(result->finish.reason, v1::FINISH_REASON_TOOL_CALLS);
}

// Tools, a call, its result and an image as Gemini parts (docs/providers.md §3.2).
TEST(GeminiRequestTest, ToolsCallsResultsImagesAndSchema) {
  google::protobuf::RepeatedPtrField<v1::Message> messages =
      Messages({{v1::ROLE_USER, "weather?"}});
  v1::ImagePart* image = messages.Mutable(0)->add_parts()->mutable_image();
  image->set_data("\x89PNG");
  image->set_media_type("image/png");
  v1::Message* assistant = messages.Add();
  assistant->set_role(v1::ROLE_ASSISTANT);
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("call_0");
  call->set_name("get_weather");
  call->set_arguments_json(R"({"city":"Paris"})");
  v1::Message* result = messages.Add();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id("call_0");
  result->set_content("sunny");
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  tools.Add()->set_name("get_weather");
  ChatParams params = Params(messages);
  params.tools = &tools;
  params.tool_choice.set_mode(v1::TOOL_CHOICE_MODE_TOOL);
  params.tool_choice.set_tool_name("get_weather");
  params.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  params.response_format.set_json_schema(R"({"type":"object"})");
  const std::string body = MakeAdapter()->BuildChatRequest(params).body;
  simdjson::dom::parser parser;
  simdjson::dom::element json;
  ASSERT_EQ(parser.parse(body).get(json), simdjson::SUCCESS) << body;
  simdjson::dom::array contents = json["contents"];
  ASSERT_EQ(contents.size(), 3u) << body;
  EXPECT_EQ(std::string_view(contents.at(0)["parts"].at(1)["inlineData"]["mimeType"]), "image/png");
  EXPECT_EQ(std::string_view(contents.at(0)["parts"].at(1)["inlineData"]["data"]), "iVBORw==");
  EXPECT_EQ(std::string_view(contents.at(1)["role"]), "model");
  EXPECT_EQ(std::string_view(contents.at(1)["parts"].at(0)["functionCall"]["name"]), "get_weather");
  EXPECT_EQ(std::string_view(contents.at(1)["parts"].at(0)["functionCall"]["args"]["city"]),
            "Paris");
  EXPECT_EQ(std::string_view(contents.at(2)["role"]), "user");
  simdjson::dom::element response = contents.at(2)["parts"].at(0)["functionResponse"];
  EXPECT_EQ(std::string_view(response["name"]), "get_weather");
  EXPECT_EQ(std::string_view(response["response"]["result"]), "sunny");
  EXPECT_EQ(std::string_view(json["tools"].at(0)["functionDeclarations"].at(0)["name"]),
            "get_weather");
  EXPECT_EQ(std::string_view(json["toolConfig"]["functionCallingConfig"]["mode"]), "ANY");
  EXPECT_EQ(
      std::string_view(json["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"].at(0)),
      "get_weather");
  EXPECT_EQ(std::string_view(json["generationConfig"]["responseMimeType"]), "application/json");
  // JSON Schema goes where Gemini takes it whole: responseJsonSchema and parametersJsonSchema,
  // never the OpenAPI-subset fields that refuse additionalProperties.
  EXPECT_EQ(std::string_view(json["generationConfig"]["responseJsonSchema"]["type"]), "object");
  EXPECT_TRUE(json["generationConfig"]["responseSchema"].error());
  EXPECT_FALSE(json["tools"].at(0)["functionDeclarations"].at(0)["parametersJsonSchema"].error());
  EXPECT_TRUE(json["tools"].at(0)["functionDeclarations"].at(0)["parameters"].error());
}

// The ids made for Gemini's calls repeat from one reply to the next: a result names the latest
// call with its id before it.
TEST(GeminiRequestTest, FunctionResponseNamesTheLatestCallWithItsId) {
  google::protobuf::RepeatedPtrField<v1::Message> messages = Messages({{v1::ROLE_USER, "go"}});
  for (const char* name : {"first_tool", "second_tool"}) {
    v1::Message* assistant = messages.Add();
    assistant->set_role(v1::ROLE_ASSISTANT);
    v1::ToolCall* call = assistant->add_tool_calls();
    call->set_id("call_0");
    call->set_name(name);
    v1::Message* result = messages.Add();
    result->set_role(v1::ROLE_TOOL);
    result->set_tool_call_id("call_0");
    result->set_content("done");
  }
  const std::string body = MakeAdapter()->BuildChatRequest(Params(messages)).body;
  EXPECT_NE(body.find(R"("functionResponse":{"name":"first_tool")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("functionResponse":{"name":"second_tool")"), std::string::npos) << body;
}

TEST(GeminiStreamTest, ThoughtsAndEmptyPartsAreNotText) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"candidates":[{"content":{"parts":[{"text":"Let me think","thought":true}],"role":"model"}}],"usageMetadata":{"promptTokenCount":7,"thoughtsTokenCount":30}})",
          R"({"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"c2ln"},{"thought":false,"text":"Answer"},{"text":" here"}],"role":"model"}}]})",
          R"({"candidates":[{"content":{"parts":[{"text":"."}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"thoughtsTokenCount":30,"totalTokenCount":40}})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.pieces, (std::vector<std::string>{"Answer", " here", "."}));
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(d.sink.finish->input_tokens, 7);
  EXPECT_EQ(d.sink.finish->output_tokens, 33);
  EXPECT_EQ(d.sink.finish->reasoning_output_tokens, 30);
}

// docs/providers.md §3.3: cachedContentTokenCount is a part of promptTokenCount (so input stays
// the prompt count); thoughtsTokenCount is outside candidatesTokenCount (so output adds it once,
// and it is the reasoning part). Counts are cumulative: the last of each wins.
TEST(GeminiStreamTest, CachedContentAndThoughtsMapOntoTheNormalizedKinds) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":1200,"cachedContentTokenCount":1000,"candidatesTokenCount":1,"thoughtsTokenCount":40}})",
          R"({"candidates":[{"content":{"parts":[{"text":"b"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1200,"cachedContentTokenCount":1000,"candidatesTokenCount":2,"thoughtsTokenCount":64,"totalTokenCount":1266}})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.finish->input_tokens, 1200);
  EXPECT_EQ(d.sink.finish->cached_input_tokens, 1000);
  EXPECT_EQ(d.sink.finish->cache_write_input_tokens, 0);
  EXPECT_EQ(d.sink.finish->output_tokens, 66);
  EXPECT_EQ(d.sink.finish->reasoning_output_tokens, 64);
}

TEST(GeminiStreamTest, UsageIsCumulativeAndPartialUsageDoesNotReset) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"}}],"usageMetadata":{"trafficType":"ON_DEMAND"}})",
          R"({"candidates":[{"content":{"parts":[{"text":"b"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":1,"toolUsePromptTokenCount":5}})",
          // Final chunk: finishReason with no parts (seen in the wild), then a usage-only chunk.
          R"({"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":2}})",
          R"({"usageMetadata":{"trafficType":"ON_DEMAND","candidatesTokenCount":3},"modelVersion":"gemini-2.5-flash"})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.text, "ab");
  EXPECT_EQ(d.sink.finish->input_tokens, 25);
  EXPECT_EQ(d.sink.finish->output_tokens, 3);
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_STOP);
}

TEST(GeminiStreamTest, NullMembersAreAbsentMembers) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"candidates":null,"usageMetadata":null,"promptFeedback":null})",
          R"({"candidates":[{"content":null,"finishReason":null}]})",
          R"({"candidates":[{"content":{"parts":null}},{"content":{"parts":[{"text":"second candidate"}]}}]})",
          R"({"candidates":[{"content":{"parts":[{"text":null},{"text":"x"}]},"finishReason":"STOP"}]})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.text, "x");
  EXPECT_FALSE(d.sink.finish->usage_reported);
}

TEST(GeminiStreamTest, NoUsageMetadataAtAll) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]})"}));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_FALSE(d.sink.finish->usage_reported);
  EXPECT_EQ(d.sink.finish->input_tokens, 0);
}

TEST(GeminiStreamTest, FinishReasonTable) {
  EXPECT_EQ(GeminiFinishReason("STOP"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(GeminiFinishReason("MAX_TOKENS"), v1::FINISH_REASON_LENGTH);
  for (const char* filtered : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                               "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "MODEL_ARMOR"}) {
    EXPECT_EQ(GeminiFinishReason(filtered), v1::FINISH_REASON_CONTENT_FILTER) << filtered;
  }
  for (const char* other : {"OTHER", "LANGUAGE", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL",
                            "FINISH_REASON_UNSPECIFIED", "SOMETHING_NEW"}) {
    EXPECT_EQ(GeminiFinishReason(other), v1::FINISH_REASON_OTHER) << other;
  }
}

TEST(GeminiStreamTest, SafetyFinishIsContentFilter) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"candidates":[{"content":{"parts":[{"text":"partial"}]}}]})",
          R"({"candidates":[{"finishReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}]})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(d.sink.finish->provider_reason, "SAFETY");
}

TEST(GeminiStreamTest, BlockedPromptFinishesAsContentFilter) {
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({
          R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT","safetyRatings":[]},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-flash"})",
      }));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_TRUE(d.sink.text.empty());
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(d.sink.finish->provider_reason, "PROHIBITED_CONTENT");
  EXPECT_EQ(d.sink.finish->input_tokens, 9);

  // promptFeedback without a blockReason is not a block.
  d = Decode(*MakeAdapter(), Sse({R"({"promptFeedback":{"safetyRatings":[]}})"}));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
}

TEST(GeminiStreamTest, ErrorChunkBecomesProviderError) {
  const std::string error_chunk =
      R"({"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}})";
  const std::string body =
      Sse({R"({"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]})", error_chunk});
  // CRLF framing and small reads too.
  std::string crlf;
  for (char c : body) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  for (const std::string& stream : {body, crlf}) {
    Decoded d = DecodeWithReads(*MakeAdapter(), stream, RandomReads(5, 64, 7));
    EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted) << d.status;
    std::optional<ProviderError> error = ProviderErrorFromStatus(d.status);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->error_class, ProviderErrorClass::kRateLimited);
    EXPECT_EQ(error->http_status, 0);
    EXPECT_EQ(error->type, "RESOURCE_EXHAUSTED");
    EXPECT_EQ(error->retry_after_ms, 17000);
    EXPECT_EQ(d.sink.text, "Hi");
    EXPECT_EQ(d.sink.finish_calls, 0);
  }
  // The body's code classifies the in-stream error.
  Decoded d = Decode(
      *MakeAdapter(),
      Sse({R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})"}));
  EXPECT_EQ(ProviderErrorFromStatus(d.status)->error_class, ProviderErrorClass::kOverloaded);
  d = Decode(
      *MakeAdapter(),
      Sse({R"({"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}})"}));
  EXPECT_EQ(ProviderErrorFromStatus(d.status)->error_class, ProviderErrorClass::kServer);
}

TEST(GeminiStreamTest, TruncatedStreamsAreUnavailable) {
  const std::string body = ReadTestdata("gemini/native_stream_lf.sse");
  auto adapter = MakeAdapter();
  // Cut after the first event, inside the second event, and before anything.
  for (size_t cut : {body.find("data:", 10), body.size() - 2, size_t{0}}) {
    Decoded d = DecodeWithReads(*adapter, body.substr(0, cut), RandomReads(cut, 32, 19));
    EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable) << cut;
    EXPECT_EQ(d.status.message(), "gemini: stream ended before finishReason");
    EXPECT_EQ(d.sink.finish_calls, 0);
  }
}

TEST(GeminiStreamTest, SentinelFromAProxyIsIgnored) {
  Decoded d =
      Decode(*MakeAdapter(), ReadTestdata("gemini/native_stream_lf.sse") + "data: [DONE]\n\n");
  ExpectCaptureDecoded(d, "with [DONE]");
}

TEST(GeminiStreamTest, MalformedJsonIsInternalAndQuotesLittle) {
  const std::string huge(20000, 'y');
  const std::vector<std::string> cases = {
      R"({"candidates":[{"content":{"parts":[{"text":"Hel)",
      R"({"candidates":[{"content":{"parts":[{"text":")" + huge + R"("}]}}],)",
      R"({"candidates":{"content":1}})",
      R"({"usageMetadata":{"promptTokenCount":"11"}})",
      R"({"candidates":[{"content":{"parts":[{"text":"a","thought":"yes"}]}}]})",
      R"(["not","an","object"])",
      R"(plain text)",
  };
  for (const std::string& chunk : cases) {
    Decoded d = Decode(*MakeAdapter(), Sse({chunk}));
    EXPECT_EQ(d.status.code(), absl::StatusCode::kInternal) << chunk.substr(0, 80);
    EXPECT_NE(d.status.message().find("gemini: malformed response chunk"), std::string::npos)
        << d.status;
    EXPECT_LT(d.status.message().size(), 400u);
    EXPECT_TRUE(d.sink.text.empty()) << chunk.substr(0, 80);
  }
}

// ---------------------------------------------------------------------------------------------
// Non-streaming responses

TEST(GeminiResponseTest, ParsesWholeResponse) {
  absl::StatusOr<ChatResult> result = MakeAdapter()->ParseChatResponse(R"({
    "candidates": [{"content": {"parts": [{"text": "Hello"}, {"text": "thinking...", "thought": true},
                                          {"text": ", World!"}], "role": "model"},
                    "finishReason": "STOP", "index": 0, "safetyRatings": []}],
    "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 4, "totalTokenCount": 33,
                      "thoughtsTokenCount": 18},
    "modelVersion": "gemini-2.5-flash", "responseId": "cWmNaqOEH9CRkdUP1bWcsQU"})");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->text, "Hello, World!");
  EXPECT_EQ(result->finish.reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(result->finish.input_tokens, 11);
  EXPECT_EQ(result->finish.output_tokens, 22);
  EXPECT_EQ(result->finish.reasoning_output_tokens, 18);
}

TEST(GeminiResponseTest, CachedContentTokensArePartOfThePrompt) {
  absl::StatusOr<ChatResult> result = MakeAdapter()->ParseChatResponse(R"({
    "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 5000, "cachedContentTokenCount": 4096,
                      "candidatesTokenCount": 2, "totalTokenCount": 5002}})");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish.input_tokens, 5000);
  EXPECT_EQ(result->finish.cached_input_tokens, 4096);
  EXPECT_EQ(result->finish.output_tokens, 2);
  EXPECT_EQ(result->finish.reasoning_output_tokens, 0);
}

TEST(GeminiResponseTest, MalformedAndErrorBodies) {
  auto adapter = MakeAdapter();
  EXPECT_EQ(adapter->ParseChatResponse(R"({"candidates":[)").status().code(),
            absl::StatusCode::kInternal);
  absl::StatusOr<ChatResult> result =
      adapter->ParseChatResponse(ReadTestdata("gemini/error_unavailable.json"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  // A response with no finishReason is complete, its reason unknown.
  result = adapter->ParseChatResponse(R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}]})");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->finish.reason, v1::FINISH_REASON_UNSPECIFIED);
}

// ---------------------------------------------------------------------------------------------
// Error classification

struct ErrorCase {
  int status;
  std::string body;  // "@file" reads tests/testdata/gemini/file
  ProviderErrorClass error_class;
  std::string type;
  std::string code;
  int64_t retry_after_ms;
};

TEST(GeminiErrorTest, ClassificationTable) {
  const std::vector<ErrorCase> cases = {
      // An invalid key is a 400.
      {400, "@error_api_key_invalid.json", ProviderErrorClass::kAuth, "INVALID_ARGUMENT",
       "API_KEY_INVALID", 0},
      {400, "@error_invalid_argument.json", ProviderErrorClass::kInvalidRequest, "INVALID_ARGUMENT",
       "", 0},
      {400,
       R"({"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}})",
       ProviderErrorClass::kInvalidRequest, "FAILED_PRECONDITION", "", 0},
      {403,
       R"({"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}})",
       ProviderErrorClass::kAuth, "PERMISSION_DENIED", "", 0},
      {404, "@error_not_found.json", ProviderErrorClass::kNotFound, "NOT_FOUND", "", 0},
      {429, "@error_resource_exhausted.json", ProviderErrorClass::kRateLimited,
       "RESOURCE_EXHAUSTED", "", 17000},
      {500,
       R"({"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}})",
       ProviderErrorClass::kServer, "INTERNAL", "", 0},
      {503, "@error_unavailable.json", ProviderErrorClass::kOverloaded, "UNAVAILABLE", "", 0},
      {504, R"({"error":{"code":504,"message":"Deadline expired.","status":"DEADLINE_EXCEEDED"}})",
       ProviderErrorClass::kServer, "DEADLINE_EXCEEDED", "", 0},
      // The array form and non-JSON bodies.
      {429,
       R"([{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}])",
       ProviderErrorClass::kRateLimited, "RESOURCE_EXHAUSTED", "", 1500},
      {502, "<html><body>502 Bad Gateway</body></html>", ProviderErrorClass::kServer, "", "", 0},
      {503, "", ProviderErrorClass::kOverloaded, "", "", 0},
      {401, "", ProviderErrorClass::kAuth, "", "", 0},
      {413, "Request Entity Too Large", ProviderErrorClass::kInvalidRequest, "", "", 0},
      {418, R"({"error":{"code":418,"message":"?"}})", ProviderErrorClass::kInvalidRequest, "", "",
       0},
  };
  auto adapter = MakeAdapter();
  for (const ErrorCase& c : cases) {
    const std::string body =
        c.body.starts_with("@") ? ReadTestdata("gemini/" + c.body.substr(1)) : c.body;
    ProviderError error = adapter->ParseError(c.status, body);
    EXPECT_EQ(error.error_class, c.error_class) << c.status << " " << c.body;
    EXPECT_EQ(error.http_status, c.status);
    EXPECT_EQ(error.type, c.type) << c.body;
    EXPECT_EQ(error.code, c.code) << c.body;
    EXPECT_EQ(error.retry_after_ms, c.retry_after_ms) << c.body;
    EXPECT_LE(error.message.size(), 512u);
  }
}

TEST(GeminiErrorTest, MessagesAreKeptAndRedacted) {
  auto adapter = MakeAdapter();
  ProviderError error = adapter->ParseError(400, ReadTestdata("gemini/error_api_key_invalid.json"));
  EXPECT_EQ(error.message, "API key not valid. Please pass a valid API key.");
  EXPECT_EQ(ProviderErrorStatus(error).code(), absl::StatusCode::kFailedPrecondition);

  error = adapter->ParseError(400, std::string(R"({"error":{"code":400,"message":"bad key )") +
                                       kKey + R"(","status":"INVALID_ARGUMENT"}})");
  EXPECT_EQ(error.message.find(kKey), std::string::npos) << error.message;

  error = adapter->ParseError(502, "<html><body>502 Bad Gateway</body></html>");
  EXPECT_NE(error.message.find("502 Bad Gateway"), std::string::npos);
}

TEST(GeminiErrorTest, ClassifyByStatusStringWhenCodeIsUnknown) {
  EXPECT_EQ(ClassifyGeminiError(0, "RESOURCE_EXHAUSTED", ""), ProviderErrorClass::kRateLimited);
  EXPECT_EQ(ClassifyGeminiError(0, "UNAVAILABLE", ""), ProviderErrorClass::kOverloaded);
  EXPECT_EQ(ClassifyGeminiError(0, "PERMISSION_DENIED", ""), ProviderErrorClass::kAuth);
  EXPECT_EQ(ClassifyGeminiError(0, "INVALID_ARGUMENT", "API_KEY_INVALID"),
            ProviderErrorClass::kAuth);
  EXPECT_EQ(ClassifyGeminiError(0, "", ""), ProviderErrorClass::kUnknown);
}

TEST(GeminiErrorTest, DurationParsing) {
  EXPECT_EQ(GeminiDurationMs("17s"), 17000);
  EXPECT_EQ(GeminiDurationMs("0.5s"), 500);
  EXPECT_EQ(GeminiDurationMs("1.0001s"), 1001);
  EXPECT_EQ(GeminiDurationMs("0s"), 0);
  EXPECT_EQ(GeminiDurationMs("17"), 0);
  EXPECT_EQ(GeminiDurationMs("s"), 0);
  EXPECT_EQ(GeminiDurationMs("abcs"), 0);
  EXPECT_EQ(GeminiDurationMs("-3s"), 0);
  EXPECT_EQ(GeminiDurationMs("1e9s"), 86400000);
}

}  // namespace
}  // namespace turnpike
