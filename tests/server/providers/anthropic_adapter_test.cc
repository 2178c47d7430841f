// The Anthropic adapter against docs/providers.md §2: request building, the recorded SDK streams
// (including the 2026 capture with trailing spaces inside `data:`) decoded whole and in small
// random reads, the usage rules, in-stream errors, truncation, malformed data and the error table.
#include "server/providers/anthropic_adapter.h"

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_replace.h"
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
using ::turnpike::testing::PaddedData;
using ::turnpike::testing::RandomReads;
using ::turnpike::testing::ReadTestdata;
using ::turnpike::testing::RecordingSink;

constexpr char kKey[] = "sk-ant-api03-test-key-0123456789";

config::v1::Provider MakeProvider(std::string base_url = "https://api.anthropic.com") {
  config::v1::Provider provider;
  provider.set_name("anthropic-test");
  provider.set_kind(config::v1::PROVIDER_KIND_ANTHROPIC);
  provider.set_base_url(std::move(base_url));
  return provider;
}

std::unique_ptr<ProviderAdapter> MakeAdapter(const config::v1::Provider& provider = MakeProvider(),
                                             std::string key = kKey) {
  return NewAnthropicAdapter(provider, std::move(key));
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

// ---------------------------------------------------------------------------------------------
// Request building

TEST(AnthropicRequestTest, StreamingRequestCarriesEveryField) {
  config::v1::Provider provider = MakeProvider();
  (*provider.mutable_headers())["anthropic-beta"] = "prompt-caching-2024-07-31";
  auto adapter = MakeAdapter(provider);
  auto messages = Messages({{v1::ROLE_SYSTEM, "You are terse."},
                            {v1::ROLE_USER, "Hi"},
                            {v1::ROLE_SYSTEM, "Answer in French."},
                            {v1::ROLE_ASSISTANT, "Bonjour"},
                            {v1::ROLE_USER, "Say \"more\"\n"}});
  ChatParams params;
  params.model = "claude-sonnet-4-20250514";
  params.messages = &messages;
  params.max_tokens = 256;
  params.temperature = 0.5;
  params.top_p = 0.9;
  params.stop = {"\n\nHuman:", "END"};
  params.user = "user-42";
  params.stream = true;

  HttpRequest request = adapter->BuildChatRequest(params);
  EXPECT_EQ(request.url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(FindHeader(request, "x-api-key"), std::string("x-api-key: ") + kKey);
  EXPECT_EQ(FindHeader(request, "anthropic-version"), "anthropic-version: 2023-06-01");
  EXPECT_EQ(FindHeader(request, "content-type"), "content-type: application/json");
  EXPECT_EQ(FindHeader(request, "accept"), "accept: text/event-stream");
  EXPECT_EQ(FindHeader(request, "anthropic-beta"), "anthropic-beta: prompt-caching-2024-07-31");

  simdjson::dom::parser parser;
  simdjson::dom::element body = parser.parse(request.body);
  EXPECT_EQ(std::string_view(body["model"]), "claude-sonnet-4-20250514");
  EXPECT_EQ(int64_t(body["max_tokens"]), 256);
  EXPECT_EQ(std::string_view(body["system"]), "You are terse.\n\nAnswer in French.");
  simdjson::dom::array turns = body["messages"];
  ASSERT_EQ(turns.size(), 3u);
  EXPECT_EQ(std::string_view(turns.at(0)["role"]), "user");
  EXPECT_EQ(std::string_view(turns.at(0)["content"]), "Hi");
  EXPECT_EQ(std::string_view(turns.at(1)["role"]), "assistant");
  EXPECT_EQ(std::string_view(turns.at(1)["content"]), "Bonjour");
  EXPECT_EQ(std::string_view(turns.at(2)["role"]), "user");
  EXPECT_EQ(std::string_view(turns.at(2)["content"]), "Say \"more\"\n");
  EXPECT_TRUE(bool(body["stream"]));
  EXPECT_DOUBLE_EQ(double(body["temperature"]), 0.5);
  EXPECT_DOUBLE_EQ(double(body["top_p"]), 0.9);
  simdjson::dom::array stops = body["stop_sequences"];
  ASSERT_EQ(stops.size(), 2u);
  EXPECT_EQ(std::string_view(stops.at(0)), "\n\nHuman:");
  EXPECT_EQ(std::string_view(stops.at(1)), "END");
  EXPECT_EQ(std::string_view(body["metadata"]["user_id"]), "user-42");
}

TEST(AnthropicRequestTest, UnaryRequestOmitsUnsetFields) {
  auto adapter = MakeAdapter();
  auto messages = Messages({{v1::ROLE_USER, "Hi"}, {v1::ROLE_ASSISTANT, ""}});
  ChatParams params;
  params.model = "claude-3-5-haiku-latest";
  params.messages = &messages;
  params.max_tokens = 16;
  params.stream = false;

  HttpRequest request = adapter->BuildChatRequest(params);
  EXPECT_EQ(FindHeader(request, "accept"), "accept: application/json");
  simdjson::dom::parser parser;
  simdjson::dom::element body = parser.parse(request.body);
  EXPECT_FALSE(bool(body["stream"]));
  for (const char* absent : {"system", "temperature", "top_p", "stop_sequences", "metadata"}) {
    EXPECT_EQ(body[absent].error(), simdjson::NO_SUCH_FIELD) << absent;
  }
  // The empty assistant turn is left out: Anthropic rejects empty text.
  EXPECT_EQ(simdjson::dom::array(body["messages"]).size(), 1u);
}

TEST(AnthropicRequestTest, TemperatureIsClampedToAnthropicRange) {
  auto adapter = MakeAdapter();
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  for (auto [ours, sent] : std::vector<std::pair<double, double>>{
           {0.0, 0.0}, {0.7, 0.7}, {1.0, 1.0}, {1.7, 1.0}, {2.0, 1.0}, {-0.5, 0.0}}) {
    ChatParams params;
    params.model = "m";
    params.messages = &messages;
    params.max_tokens = 1;
    params.temperature = ours;
    simdjson::dom::parser parser;
    simdjson::dom::element body = parser.parse(adapter->BuildChatRequest(params).body);
    EXPECT_DOUBLE_EQ(double(body["temperature"]), sent) << "temperature " << ours;
  }
}

TEST(AnthropicRequestTest, BaseUrlVariants) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://api.anthropic.com", "https://api.anthropic.com/v1/messages"},
      {"https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"},
      {"https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"},
      {"https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"},
      {"http://127.0.0.1:8089", "http://127.0.0.1:8089/v1/messages"},
      {"http://proxy.internal/anthropic/v1", "http://proxy.internal/anthropic/v1/messages"},
      {"", "https://api.anthropic.com/v1/messages"},
  };
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  ChatParams params;
  params.model = "m";
  params.messages = &messages;
  params.max_tokens = 1;
  for (const auto& [base, url] : cases) {
    EXPECT_EQ(MakeAdapter(MakeProvider(base))->BuildChatRequest(params).url, url) << base;
  }
}

TEST(AnthropicRequestTest, ProviderHeadersReplaceDefaultsAndUnsafeOnesAreDropped) {
  config::v1::Provider provider = MakeProvider();
  (*provider.mutable_headers())["Anthropic-Version"] = "2024-01-01";
  (*provider.mutable_headers())["x-evil"] = "a\r\nx-injected: 1";
  auto adapter = MakeAdapter(provider, "");
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  ChatParams params;
  params.model = "m";
  params.messages = &messages;
  params.max_tokens = 1;
  HttpRequest request = adapter->BuildChatRequest(params);
  EXPECT_EQ(CountHeaders(request, "anthropic-version"), 1);
  EXPECT_EQ(FindHeader(request, "anthropic-version"), "Anthropic-Version: 2024-01-01");
  EXPECT_EQ(CountHeaders(request, "x-evil"), 0);
  // No key configured (a local Anthropic-compatible server): no empty x-api-key header.
  EXPECT_EQ(CountHeaders(request, "x-api-key"), 0);
}

TEST(AnthropicRequestTest, FactoryPicksAnthropicByKind) {
  absl::StatusOr<std::unique_ptr<ProviderAdapter>> adapter =
      MakeProviderAdapter(MakeProvider(), kKey);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  auto messages = Messages({{v1::ROLE_USER, "Hi"}});
  ChatParams params;
  params.model = "m";
  params.messages = &messages;
  params.max_tokens = 1;
  EXPECT_EQ((*adapter)->BuildChatRequest(params).url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ((*adapter)->BuildEmbedRequest(EmbedParams()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------------
// Recorded streams

struct StreamCase {
  const char* file;
  std::string text_prefix;
  std::string text_suffix;
  size_t text_bytes;
  size_t pieces;
  v1::FinishReason reason;
  const char* provider_reason;
  int64_t input_tokens;
  int64_t output_tokens;
};

// gtest prints parameters; without this it would dump the struct's bytes, padding included.
void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.file; }

class AnthropicRecordedStreamTest : public ::testing::TestWithParam<StreamCase> {
 protected:
  void Check(const Decoded& decoded, const std::string& how) {
    const StreamCase& c = GetParam();
    ASSERT_TRUE(decoded.status.ok()) << how << ": " << decoded.status;
    const RecordingSink& sink = decoded.sink;
    EXPECT_EQ(sink.text.size(), c.text_bytes) << how;
    EXPECT_EQ(sink.text.substr(0, c.text_prefix.size()), c.text_prefix) << how;
    EXPECT_TRUE(sink.text.ends_with(c.text_suffix)) << how;
    EXPECT_EQ(sink.pieces.size(), c.pieces) << how;
    ASSERT_EQ(sink.finish_calls, 1) << how;
    EXPECT_EQ(sink.finish->reason, c.reason) << how;
    EXPECT_EQ(sink.finish->provider_reason, c.provider_reason) << how;
    EXPECT_EQ(sink.finish->input_tokens, c.input_tokens) << how;
    EXPECT_EQ(sink.finish->output_tokens, c.output_tokens) << how;
    EXPECT_TRUE(sink.finish->usage_reported) << how;
  }
};

TEST_P(AnthropicRecordedStreamTest, WholeOneByteAndRandomReads) {
  auto adapter = MakeAdapter();
  const std::string body = ReadTestdata(std::string("anthropic/") + GetParam().file);
  Check(Decode(*adapter, body), "whole");
  Check(DecodeWithReads(*adapter, body, {1}), "1-byte reads");
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    Check(DecodeWithReads(*adapter, body, RandomReads(seed, 64, 29)),
          "random reads, seed " + std::to_string(seed));
  }
}

TEST_P(AnthropicRecordedStreamTest, CrlfFraming) {
  auto adapter = MakeAdapter();
  const std::string body = absl::StrReplaceAll(
      ReadTestdata(std::string("anthropic/") + GetParam().file), {{"\n", "\r\n"}});
  Check(Decode(*adapter, body), "crlf whole");
  Check(DecodeWithReads(*adapter, body, RandomReads(7, 64, 13)), "crlf random reads");
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, AnthropicRecordedStreamTest,
    ::testing::Values(
        StreamCase{"basic_response.txt", "Hello there!", "Hello there!", 12, 3,
                   v1::FINISH_REASON_STOP, "end_turn", 11, 6},
        // 2026 capture: trailing spaces after the JSON, cumulative input_tokens in message_delta.
        StreamCase{"stream_b_fallback.sse", " there! Happy to explain.\n\n**Solar eclip",
                   "let me know what's sparking your interest!", 1312, 15, v1::FINISH_REASON_STOP,
                   "end_turn", 31, 547},
        // Thinking and signature deltas are not text.
        StreamCase{"stream_a_refusal.sse", "Hi", "Hi", 2, 1, v1::FINISH_REASON_CONTENT_FILTER,
                   "refusal", 28, 106},
        // input_json_delta (tool arguments) is not text.
        StreamCase{"tool_use_response.txt", "I'll check", "current weather in Paris for you.", 48,
                   2, v1::FINISH_REASON_TOOL_CALLS, "tool_use", 377, 65}),
    [](const ::testing::TestParamInfo<StreamCase>& info) {
      std::string name = info.param.file;
      return name.substr(0, name.find('.'));
    });

// ---------------------------------------------------------------------------------------------
// Usage rules, hand-made events

// Runs events (name, data) through a decoder directly, then OnEnd.
Decoded RunEvents(const std::vector<std::pair<std::string, std::string>>& events) {
  auto adapter = MakeAdapter();
  auto decoder = adapter->NewStreamDecoder();
  Decoded out;
  for (const auto& [name, data] : events) {
    PaddedData padded(data);
    out.status = decoder->OnEvent(name, padded.view(), out.sink);
    if (!out.status.ok()) return out;
  }
  out.status = decoder->OnEnd(out.sink);
  return out;
}

constexpr char kStop[] = R"({"type":"message_stop"})";

TEST(AnthropicUsageTest, CacheTokensCountAsInput) {
  Decoded d = RunEvents({
      {"message_start",
       R"({"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":7}})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  // Normalized: input_tokens is every input token; the cache reads and writes are parts of it.
  EXPECT_EQ(d.sink.finish->input_tokens, 305);
  EXPECT_EQ(d.sink.finish->cached_input_tokens, 200);
  EXPECT_EQ(d.sink.finish->cache_write_input_tokens, 100);
  EXPECT_EQ(d.sink.finish->output_tokens, 7);
  EXPECT_EQ(d.sink.finish->reasoning_output_tokens, 0);
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_LENGTH);
}

TEST(AnthropicUsageTest, MessageDeltaInputWinsAndMissingCacheFieldsComeFromStart) {
  Decoded d = RunEvents({
      {"message_start",
       R"({"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":null},"usage":{"input_tokens":6,"cache_read_input_tokens":null,"output_tokens":3}})"},
      {"message_delta",
       R"({"usage":{"output_tokens":9},"delta":{"stop_reason":"end_turn"},"type":"message_delta"})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.finish->input_tokens, 306);  // 6 + 100 + 200
  EXPECT_EQ(d.sink.finish->cached_input_tokens, 200);
  EXPECT_EQ(d.sink.finish->cache_write_input_tokens, 100);
  EXPECT_EQ(d.sink.finish->output_tokens, 9);  // the last cumulative count
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(d.sink.finish->provider_reason, "end_turn");
}

TEST(AnthropicUsageTest, MessageDeltaCacheFieldsReplaceStartOnes) {
  Decoded d = RunEvents({
      {"message_start",
       R"({"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"output_tokens":1}}})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":2}})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.finish->input_tokens, 105);
  EXPECT_EQ(d.sink.finish->cached_input_tokens, 100);
  EXPECT_EQ(d.sink.finish->cache_write_input_tokens, 0);
}

TEST(AnthropicUsageTest, NoUsageAtAll) {
  Decoded d = RunEvents({
      {"message_start", R"({"type":"message_start","message":{"id":"msg_1","usage":null}})"},
      {"message_delta", R"({"type":"message_delta","delta":{"stop_reason":"pause_turn"}})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_FALSE(d.sink.finish->usage_reported);
  EXPECT_EQ(d.sink.finish->input_tokens, 0);
  EXPECT_EQ(d.sink.finish->output_tokens, 0);
  EXPECT_EQ(d.sink.finish->reason, v1::FINISH_REASON_OTHER);
  EXPECT_EQ(d.sink.finish->provider_reason, "pause_turn");
}

TEST(AnthropicStreamTest, FinishReasonTable) {
  EXPECT_EQ(AnthropicFinishReason("end_turn"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(AnthropicFinishReason("stop_sequence"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(AnthropicFinishReason("max_tokens"), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(AnthropicFinishReason("model_context_window_exceeded"), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(AnthropicFinishReason("tool_use"), v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(AnthropicFinishReason("refusal"), v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(AnthropicFinishReason("pause_turn"), v1::FINISH_REASON_OTHER);
  EXPECT_EQ(AnthropicFinishReason("something_new"), v1::FINISH_REASON_OTHER);
  EXPECT_EQ(AnthropicFinishReason(""), v1::FINISH_REASON_UNSPECIFIED);
}

// ---------------------------------------------------------------------------------------------
// Stream edge cases

TEST(AnthropicStreamTest, PingsAndUnknownEventsAreNotEvenParsed) {
  Decoded d = RunEvents({
      {"ping", "not json at all"},
      {"content_block_stop", "{garbage"},  // content_block_start is read: it starts tool calls
      {"brand_new_event", "{\"type\":\"brand_new_event\",\"x\":[1,2"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.text, "ok");
}

TEST(AnthropicStreamTest, DeltaMembersInAnyOrderAndEmptyTextSkipped) {
  Decoded d = RunEvents({
      {"content_block_delta",
       R"({"delta":{"text":"a","type":"text_delta"},"index":0,"type":"content_block_delta"})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"cited_text":"x"}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00e9\ud83d\ude00"}})"},
      {"message_stop", kStop},
  });
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.pieces, (std::vector<std::string>{"a", "\xC3\xA9\xF0\x9F\x98\x80"}));
}

TEST(AnthropicStreamTest, EventsWithoutEventLineAreDispatchedByType) {
  // A proxy that drops `event:` lines: every event arrives as "message".
  const std::string body = absl::StrReplaceAll(ReadTestdata("anthropic/basic_response.txt"),
                                               {{"event: message_start\n", ""},
                                                {"event: content_block_start\n", ""},
                                                {"event: ping\n", ""},
                                                {"event: content_block_delta\n", ""},
                                                {"event: content_block_stop\n", ""},
                                                {"event: message_delta\n", ""},
                                                {"event: message_stop\n", ""}});
  ASSERT_EQ(body.find("event:"), std::string::npos);
  Decoded d = Decode(*MakeAdapter(), body);
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.text, "Hello there!");
  EXPECT_EQ(d.sink.finish->output_tokens, 6);
}

TEST(AnthropicStreamTest, FinishIsDeliveredAtMessageStopAndLaterEventsIgnored) {
  auto adapter = MakeAdapter();
  auto decoder = adapter->NewStreamDecoder();
  RecordingSink sink;
  PaddedData stop(kStop);
  ASSERT_TRUE(decoder->OnEvent("message_stop", stop.view(), sink).ok());
  EXPECT_EQ(sink.finish_calls, 1);
  PaddedData late(
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}})");
  EXPECT_TRUE(decoder->OnEvent("content_block_delta", late.view(), sink).ok());
  EXPECT_TRUE(decoder->OnEvent("message_stop", stop.view(), sink).ok());
  EXPECT_TRUE(decoder->OnEnd(sink).ok());
  EXPECT_EQ(sink.finish_calls, 1);
  EXPECT_TRUE(sink.text.empty());
}

TEST(AnthropicStreamTest, ErrorEventBecomesProviderError) {
  const std::string body = ReadTestdata("anthropic/basic_response.txt");
  // Cut after the first text delta, then the error event of the SDK test.
  const size_t cut = body.find("event: content_block_delta", body.find("Hello"));
  const std::string stream =
      body.substr(0, cut) +
      "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", "
      "\"message\": \"Overloaded\"}}\n\n";
  Decoded d = DecodeWithReads(*MakeAdapter(), stream, RandomReads(3, 64, 11));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable) << d.status;
  std::optional<ProviderError> error = ProviderErrorFromStatus(d.status);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->error_class, ProviderErrorClass::kOverloaded);
  EXPECT_EQ(error->http_status, 0);
  EXPECT_EQ(error->type, "overloaded_error");
  EXPECT_EQ(error->message, "Overloaded");
  EXPECT_EQ(d.sink.text, "Hello");
  EXPECT_EQ(d.sink.finish_calls, 0);
}

TEST(AnthropicStreamTest, ErrorEventClasses) {
  const std::vector<std::pair<std::string, ProviderErrorClass>> cases = {
      {"rate_limit_error", ProviderErrorClass::kRateLimited},
      {"api_error", ProviderErrorClass::kServer},
      {"invalid_request_error", ProviderErrorClass::kInvalidRequest},
      {"some_future_error", ProviderErrorClass::kUnknown},
  };
  for (const auto& [type, error_class] : cases) {
    Decoded d = RunEvents(
        {{"error", R"({"type":"error","error":{"type":")" + type + R"(","message":"m"}})"}});
    std::optional<ProviderError> error = ProviderErrorFromStatus(d.status);
    ASSERT_TRUE(error.has_value()) << type;
    EXPECT_EQ(error->error_class, error_class) << type;
  }
  // An unnamed event whose type is "error" is an error too.
  Decoded d = RunEvents(
      {{"message",
        R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})"}});
  EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted) << d.status;
}

TEST(AnthropicStreamTest, TruncatedStreamsAreUnavailable) {
  const std::string body = ReadTestdata("anthropic/basic_response.txt");
  auto adapter = MakeAdapter();
  // Cut before message_stop, inside message_stop's data line, and before any event.
  for (size_t cut : {body.find("event: message_stop"), body.size() - 5, size_t{0}}) {
    Decoded d = DecodeWithReads(*adapter, body.substr(0, cut), RandomReads(cut, 32, 17));
    EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable) << cut;
    EXPECT_EQ(d.status.message(), "anthropic: stream ended before message_stop");
    EXPECT_EQ(d.sink.finish_calls, 0);
    if (cut > 0) {
      EXPECT_EQ(d.sink.text, "Hello there!");
    }
  }
}

TEST(AnthropicStreamTest, MalformedJsonIsInternalAndQuotesLittle) {
  const std::string huge_text(10000, 'x');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel)"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
           huge_text + R"("},)"},
      {"message_start",
       R"({"type":"message_start","message":{"usage":{"input_tokens":"eleven"}}})"},
      {"message_delta", R"([1,2,3])"},
      {"content_block_delta", R"({"type":"content_block_delta","delta":"text"})"},
  };
  for (const auto& [name, data] : cases) {
    Decoded d = RunEvents({{name, data}});
    EXPECT_EQ(d.status.code(), absl::StatusCode::kInternal) << data.substr(0, 80);
    EXPECT_NE(d.status.message().find(name + " event"), std::string::npos) << d.status;
    EXPECT_LT(d.status.message().size(), 400u) << d.status;
    EXPECT_EQ(d.sink.text, "");
  }
}

// ---------------------------------------------------------------------------------------------
// Non-streaming responses

TEST(AnthropicResponseTest, ParsesMessage) {
  absl::StatusOr<ChatResult> result =
      MakeAdapter()->ParseChatResponse(ReadTestdata("anthropic/message.json"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->text, "Hi, I'm Claude.");
  EXPECT_EQ(result->finish.reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(result->finish.provider_reason, "end_turn");
  EXPECT_EQ(result->finish.input_tokens, 11);
  EXPECT_EQ(result->finish.output_tokens, 6);
  EXPECT_TRUE(result->finish.usage_reported);
}

TEST(AnthropicResponseTest, OnlyTextBlocksAndCacheTokens) {
  absl::StatusOr<ChatResult> result = MakeAdapter()->ParseChatResponse(
      R"({"content":[{"type":"thinking","thinking":"hmm","signature":"s"},)"
      R"({"text":"Let me check. ","type":"text"},)"
      R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"text":"no"}},)"
      R"({"type":"text","text":"Done."}],)"
      R"("usage":{"input_tokens":3,"cache_read_input_tokens":40,"cache_creation_input_tokens":null,"output_tokens":9},)"
      R"("stop_reason":"tool_use","future_field":{"a":[1]}}   )");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->text, "Let me check. Done.");
  EXPECT_EQ(result->finish.reason, v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(result->finish.input_tokens, 43);
  EXPECT_EQ(result->finish.cached_input_tokens, 40);
  EXPECT_EQ(result->finish.cache_write_input_tokens, 0);
  EXPECT_EQ(result->finish.output_tokens, 9);  // thinking is inside output_tokens
  EXPECT_EQ(result->finish.reasoning_output_tokens, 0);
  ASSERT_EQ(result->tool_calls.size(), 1u);
  EXPECT_EQ(result->tool_calls[0].id(), "toolu_1");
  EXPECT_EQ(result->tool_calls[0].name(), "get_weather");
  EXPECT_EQ(result->tool_calls[0].arguments_json(), R"({"text":"no"})");
}

// The recorded tool_use stream (docs/providers.md §2.4): content_block_start names the call,
// input_json_delta fragments are its arguments, byte for byte, wherever the reads split.
TEST(AnthropicStreamTest, ToolUseAtEverySplit) {
  auto adapter = MakeAdapter();
  const std::string body = ReadTestdata("anthropic/tool_use_response.txt");
  auto check = [](const Decoded& d, const std::string& how) {
    ASSERT_TRUE(d.status.ok()) << how << ": " << d.status;
    ASSERT_EQ(d.sink.tool_calls.calls().size(), 1u) << how;
    const v1::ToolCall& call = d.sink.tool_calls.calls()[0];
    EXPECT_EQ(call.id(), "toolu_01NRLabsLyVHZPKxbKvkfSMn") << how;
    EXPECT_EQ(call.name(), "get_weather") << how;
    EXPECT_EQ(call.arguments_json(), R"({"location": "Paris"})") << how;
    ASSERT_FALSE(d.sink.fragments.empty()) << how;
    EXPECT_EQ(d.sink.fragments[0].id, "toolu_01NRLabsLyVHZPKxbKvkfSMn") << how;
    EXPECT_EQ(d.sink.fragments[0].arguments, "") << how;
  };
  check(Decode(*adapter, body), "whole");
  check(DecodeWithReads(*adapter, body, {1}), "1-byte reads");
  for (size_t split = 1; split < body.size(); ++split) {
    Decoded d = DecodeWithReads(*adapter, body, {split, body.size()});
    check(d, "split at " + std::to_string(split));
    if (::testing::Test::HasFailure()) break;
  }
}

// A tool-calling conversation as Anthropic blocks (docs/providers.md §2.2).
TEST(AnthropicRequestTest, ToolsImagesToolUseAndToolResult) {
  google::protobuf::RepeatedPtrField<v1::Message> messages;
  v1::Message* user = messages.Add();
  user->set_role(v1::ROLE_USER);
  user->add_parts()->set_text("Weather here?");
  v1::ImagePart* image = user->add_parts()->mutable_image();
  image->set_data("\x89PNG");
  image->set_media_type("image/png");
  user->add_parts()->mutable_image()->set_url("https://example.com/a.jpg");
  v1::Message* assistant = messages.Add();
  assistant->set_role(v1::ROLE_ASSISTANT);
  assistant->set_content("Checking.");
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("toolu_1");
  call->set_name("get_weather");
  call->set_arguments_json(R"({"city": "Paris"})");
  v1::Message* result = messages.Add();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id("toolu_1");
  result->set_content("sunny");
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  v1::Tool* tool = tools.Add();
  tool->set_name("get_weather");
  tool->set_description("Weather");
  tool->set_parameters_json(R"({"type":"object"})");
  ChatParams params;
  params.model = "claude";
  params.messages = &messages;
  params.max_tokens = 10;
  params.tools = &tools;
  params.tool_choice.set_mode(v1::TOOL_CHOICE_MODE_REQUIRED);
  HttpRequest request = MakeAdapter()->BuildChatRequest(params);
  simdjson::dom::parser parser;
  simdjson::dom::element body;
  ASSERT_EQ(parser.parse(request.body).get(body), simdjson::SUCCESS) << request.body;
  simdjson::dom::array sent = body["messages"];
  ASSERT_EQ(sent.size(), 3u);
  simdjson::dom::array blocks = sent.at(0)["content"];
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(std::string_view(blocks.at(0)["type"]), "text");
  EXPECT_EQ(std::string_view(blocks.at(1)["source"]["type"]), "base64");
  EXPECT_EQ(std::string_view(blocks.at(1)["source"]["media_type"]), "image/png");
  EXPECT_EQ(std::string_view(blocks.at(1)["source"]["data"]), "iVBORw==");
  EXPECT_EQ(std::string_view(blocks.at(2)["source"]["type"]), "url");
  simdjson::dom::array turn = sent.at(1)["content"];
  ASSERT_EQ(turn.size(), 2u);
  EXPECT_EQ(std::string_view(turn.at(0)["text"]), "Checking.");
  EXPECT_EQ(std::string_view(turn.at(1)["type"]), "tool_use");
  EXPECT_EQ(std::string_view(turn.at(1)["id"]), "toolu_1");
  EXPECT_EQ(std::string_view(turn.at(1)["input"]["city"]), "Paris");
  EXPECT_EQ(std::string_view(sent.at(2)["role"]), "user");
  EXPECT_EQ(std::string_view(sent.at(2)["content"].at(0)["type"]), "tool_result");
  EXPECT_EQ(std::string_view(sent.at(2)["content"].at(0)["tool_use_id"]), "toolu_1");
  EXPECT_EQ(std::string_view(sent.at(2)["content"].at(0)["content"]), "sunny");
  EXPECT_EQ(std::string_view(body["tools"].at(0)["name"]), "get_weather");
  EXPECT_EQ(std::string_view(body["tools"].at(0)["input_schema"]["type"]), "object");
  EXPECT_EQ(std::string_view(body["tool_choice"]["type"]), "any");
}

TEST(AnthropicResponseTest, MalformedAndErrorBodies) {
  auto adapter = MakeAdapter();
  absl::StatusOr<ChatResult> result = adapter->ParseChatResponse(R"({"content":[{"type":"text")");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  result = adapter->ParseChatResponse("");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  result = adapter->ParseChatResponse(ReadTestdata("anthropic/error_overloaded.json"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(ProviderErrorFromStatus(result.status()).has_value());
  EXPECT_EQ(ProviderErrorFromStatus(result.status())->error_class, ProviderErrorClass::kOverloaded);
}

// ---------------------------------------------------------------------------------------------
// Error classification

struct ErrorCase {
  int status;
  std::string body;  // "@file" reads tests/testdata/anthropic/file
  ProviderErrorClass error_class;
  std::string type;
};

TEST(AnthropicErrorTest, ClassificationTable) {
  const std::vector<ErrorCase> cases = {
      {400,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}})",
       ProviderErrorClass::kInvalidRequest, "invalid_request_error"},
      {401, "@error_authentication.json", ProviderErrorClass::kAuth, "authentication_error"},
      {402, R"({"type":"error","error":{"type":"billing_error","message":"Payment required"}})",
       ProviderErrorClass::kQuotaExhausted, "billing_error"},
      {403, R"({"type":"error","error":{"type":"permission_error","message":"no access"}})",
       ProviderErrorClass::kAuth, "permission_error"},
      {404, "@error_not_found.json", ProviderErrorClass::kNotFound, "not_found_error"},
      {413,
       R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}})",
       ProviderErrorClass::kInvalidRequest, "request_too_large"},
      {413, "@error_413_cloudflare.html", ProviderErrorClass::kInvalidRequest, ""},
      {429, "@error_rate_limit.json", ProviderErrorClass::kRateLimited, "rate_limit_error"},
      {500, R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})",
       ProviderErrorClass::kServer, "api_error"},
      {504, R"({"type":"error","error":{"type":"timeout_error","message":"Request timeout"}})",
       ProviderErrorClass::kServer, "timeout_error"},
      {529, "@error_overloaded.json", ProviderErrorClass::kOverloaded, "overloaded_error"},
      // Spend limits and empty credit balances arrive as 400 invalid_request_error.
      {400, "@error_credit_balance.json", ProviderErrorClass::kQuotaExhausted,
       "invalid_request_error"},
      {400, "@error_usage_limits.json", ProviderErrorClass::kQuotaExhausted,
       "invalid_request_error"},
      {429,
       R"({"type":"error","error":{"type":"rate_limit_error","message":"Your workspace has reached its monthly spend limit."}})",
       ProviderErrorClass::kQuotaExhausted, "rate_limit_error"},
      // No usable body: the status decides.
      {502, "", ProviderErrorClass::kServer, ""},
      {503, "Service Unavailable", ProviderErrorClass::kOverloaded, ""},
      {529, "", ProviderErrorClass::kOverloaded, ""},
      {408, "", ProviderErrorClass::kServer, ""},
      {422, "not json", ProviderErrorClass::kInvalidRequest, ""},
      // Unknown types fall back to the status; another provider's shape still yields its text.
      {429, R"({"type":"error","error":{"type":"brand_new_error","message":"m"}})",
       ProviderErrorClass::kRateLimited, "brand_new_error"},
      {500, R"({"error":{"message":"upstream failed","type":"server_error","code":null}})",
       ProviderErrorClass::kServer, "server_error"},
      {404, R"({"error":"model not found"})", ProviderErrorClass::kNotFound, ""},
  };
  auto adapter = MakeAdapter();
  for (const ErrorCase& c : cases) {
    const std::string body =
        c.body.starts_with("@") ? ReadTestdata("anthropic/" + c.body.substr(1)) : c.body;
    ProviderError error = adapter->ParseError(c.status, body);
    EXPECT_EQ(error.error_class, c.error_class) << c.status << " " << c.body;
    EXPECT_EQ(error.http_status, c.status);
    EXPECT_EQ(error.type, c.type) << c.body;
    EXPECT_LE(error.message.size(), 512u);
  }
}

TEST(AnthropicErrorTest, MessagesAreKeptRedactedAndBounded) {
  auto adapter = MakeAdapter();
  ProviderError error = adapter->ParseError(404, ReadTestdata("anthropic/error_not_found.json"));
  EXPECT_EQ(error.message, "The requested resource could not be found.");

  error = adapter->ParseError(
      401,
      std::string(R"({"type":"error","error":{"type":"authentication_error","message":"bad key )") +
          kKey + R"("}})");
  EXPECT_EQ(error.message.find(kKey), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("[REDACTED]"), std::string::npos);

  error = adapter->ParseError(413, ReadTestdata("anthropic/error_413_cloudflare.html"));
  EXPECT_NE(error.message.find("413 Request Entity Too Large"), std::string::npos);
  EXPECT_LE(error.message.size(), 512u);

  const std::string long_message(5000, 'm');
  error = adapter->ParseError(
      400, R"({"type":"error","error":{"type":"invalid_request_error","message":")" + long_message +
               R"("}})");
  EXPECT_EQ(error.message.size(), 512u);

  // The status the router sees.
  absl::Status status = ProviderErrorStatus(
      adapter->ParseError(400, ReadTestdata("anthropic/error_credit_balance.json")));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace turnpike
