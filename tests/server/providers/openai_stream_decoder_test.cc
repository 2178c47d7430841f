// The OpenAI-format stream decoder, fed through SseParser from the fixtures in
// tests/testdata/openai/*.sse: each fixture whole and in random small reads must decode the same.
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/providers/adapters.h"
#include "server/providers/sse_parser.h"

namespace turnpike {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TESTDATA_DIR) + "/openai/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RecordingSink : public StreamSink {
 public:
  void OnText(std::string_view text) override {
    EXPECT_FALSE(text.empty()) << "OnText must never be empty";
    EXPECT_EQ(finishes, 0) << "OnText after OnFinish";
    pieces.emplace_back(text);
    this->text += text;
  }
  void OnToolCall(const ToolCallFragment& fragment) override {
    EXPECT_EQ(finishes, 0) << "OnToolCall after OnFinish";
    if (!fragment.id.empty()) {
      EXPECT_FALSE(fragment.name.empty()) << "a call's first piece names the tool";
    }
    tool_calls.Add(fragment);
    ++tool_fragments;
  }
  void OnFinish(const ChatFinish& f) override {
    ++finishes;
    finish = f;
  }

  ToolCallAssembler tool_calls;
  int tool_fragments = 0;
  std::string text;
  std::vector<std::string> pieces;
  int finishes = 0;
  ChatFinish finish;
};

struct Decoded {
  absl::Status status;
  RecordingSink sink;
  bool dropped = false;  // SseParser::Finish(): the body ended mid-event
};

// The assembled calls as one comparable string.
std::string CallsText(const ToolCallAssembler& calls) {
  std::string out;
  for (const v1::ToolCall& c : calls.calls()) {
    out += c.id() + "|" + c.name() + "|" + c.arguments_json() + "\n";
  }
  return out;
}

Decoded Decode(const ProviderAdapter& adapter, const std::vector<std::string_view>& reads) {
  SseParser parser;
  std::unique_ptr<StreamDecoder> decoder = adapter.NewStreamDecoder();
  Decoded d;
  for (std::string_view read : reads) {
    d.status = parser.Feed(read, [&](std::string_view event, std::string_view data) {
      return decoder->OnEvent(event, data, d.sink);
    });
    if (!d.status.ok()) return d;
  }
  d.dropped = parser.Finish();
  d.status = decoder->OnEnd(d.sink);
  return d;
}

// Decodes `input` whole, then in random reads of 1..max_read bytes under several seeds, and
// expects the same result every time. Returns the whole-buffer result.
Decoded DecodeEveryWay(const ProviderAdapter& adapter, std::string_view input) {
  Decoded whole = Decode(adapter, {input});
  for (unsigned seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    const size_t max_read = seed <= 2 ? 3 : 40;
    std::uniform_int_distribution<size_t> size(1, max_read);
    std::vector<std::string_view> reads;
    for (size_t pos = 0; pos < input.size();) {
      const size_t n = std::min(size(rng), input.size() - pos);
      reads.push_back(input.substr(pos, n));
      pos += n;
    }
    Decoded split = Decode(adapter, reads);
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    EXPECT_EQ(split.status, whole.status);
    EXPECT_EQ(split.sink.text, whole.sink.text);
    EXPECT_EQ(split.sink.finishes, whole.sink.finishes);
    EXPECT_EQ(split.sink.finish.reason, whole.sink.finish.reason);
    EXPECT_EQ(split.sink.finish.provider_reason, whole.sink.finish.provider_reason);
    EXPECT_EQ(split.sink.finish.input_tokens, whole.sink.finish.input_tokens);
    EXPECT_EQ(split.sink.finish.output_tokens, whole.sink.finish.output_tokens);
    EXPECT_EQ(split.sink.finish.cached_input_tokens, whole.sink.finish.cached_input_tokens);
    EXPECT_EQ(split.sink.finish.reasoning_output_tokens, whole.sink.finish.reasoning_output_tokens);
    EXPECT_EQ(split.sink.finish.usage_reported, whole.sink.finish.usage_reported);
    EXPECT_EQ(split.dropped, whole.dropped);
    EXPECT_EQ(CallsText(split.sink.tool_calls), CallsText(whole.sink.tool_calls));
  }
  return whole;
}

config::v1::Provider Provider(
    config::v1::ProviderKind kind,
    config::v1::CompatFlavor flavor = config::v1::COMPAT_FLAVOR_UNSPECIFIED) {
  config::v1::Provider p;
  p.set_kind(kind);
  p.set_base_url("http://upstream/v1");
  p.set_api_version("2024-10-21");
  p.set_compat_flavor(flavor);
  return p;
}

std::unique_ptr<ProviderAdapter> OpenAi() {
  return NewOpenAiAdapter(Provider(config::v1::PROVIDER_KIND_OPENAI), "sk-test");
}
std::unique_ptr<ProviderAdapter> Compat(config::v1::CompatFlavor flavor) {
  return NewOpenAiAdapter(Provider(config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE, flavor), "");
}

// Expects a completed stream.
void ExpectFinished(const Decoded& d, std::string_view text, v1::FinishReason reason,
                    std::string_view provider_reason) {
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.sink.text, text);
  EXPECT_EQ(d.sink.finishes, 1);
  EXPECT_EQ(d.sink.finish.reason, reason);
  EXPECT_EQ(d.sink.finish.provider_reason, provider_reason);
  EXPECT_FALSE(d.dropped);
}

void ExpectUsage(const Decoded& d, int64_t input, int64_t output) {
  EXPECT_TRUE(d.sink.finish.usage_reported);
  EXPECT_EQ(d.sink.finish.input_tokens, input);
  EXPECT_EQ(d.sink.finish.output_tokens, output);
}

TEST(OpenAiStreamTest, OpenAiWithUsageChunk) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_usage.sse"));
  ExpectFinished(d, "I'm unable to provide real-time weather \"updates\".", v1::FINISH_REASON_STOP,
                 "stop");
  EXPECT_THAT(d.sink.pieces, SizeIs(3));  // the role chunk's "" is not a piece
  ExpectUsage(d, 14, 30);
}

TEST(OpenAiStreamTest, OpenAiObfuscationAndNullUsage) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_obfuscation.sse"));
  ExpectFinished(d, "Привет, мир 👋", v1::FINISH_REASON_LENGTH, "length");
  ExpectUsage(d, 9, 4);
}

TEST(OpenAiStreamTest, OpenAiWithoutUsage) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_no_usage.sse"));
  ExpectFinished(d, "Hi", v1::FINISH_REASON_STOP, "stop");
  EXPECT_FALSE(d.sink.finish.usage_reported);
  EXPECT_EQ(d.sink.finish.input_tokens, 0);
}

TEST(OpenAiStreamTest, ToolCallsProduceNoText) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_tool_calls.sse"));
  ExpectFinished(d, "", v1::FINISH_REASON_TOOL_CALLS, "tool_calls");
  EXPECT_THAT(d.sink.pieces, SizeIs(0));
  EXPECT_EQ(CallsText(d.sink.tool_calls),
            "call_4XzlGBLtUe9dy3GVNV4jhq7h|get_weather|{\"city\":\"New York\"}\n");
  EXPECT_EQ(d.sink.tool_fragments, 3);
}

// Two calls streamed in many fragments after some text (a synthetic fixture in OpenAI's chunk
// format, docs/providers.md §1.4): fragments split escapes (`\` then `"`) and a 4-byte emoji's
// JSON text; the assembled arguments must be the provider's bytes whatever the read boundaries.
// Fed whole, split in two at every byte, and in random small reads.
TEST(OpenAiStreamTest, ParallelToolCallsAtEverySplit) {
  const std::string body = ReadTestdata("openai_stream_parallel_tool_calls.sse");
  const std::string expected =
      "call_A1|get_weather|{\"city\": \"São Paulo\", \"note\": \"say \\\"hi\\\"\\n👋\"}\n"
      "call_B2|get_time|{\"tz\":\"UTC\"}\n";
  Decoded d = DecodeEveryWay(*OpenAi(), body);
  ExpectFinished(d, "Checking both.", v1::FINISH_REASON_TOOL_CALLS, "tool_calls");
  ExpectUsage(d, 80, 40);
  EXPECT_EQ(CallsText(d.sink.tool_calls), expected);
  for (size_t split = 1; split < body.size(); ++split) {
    Decoded s = Decode(
        *OpenAi(), {std::string_view(body).substr(0, split), std::string_view(body).substr(split)});
    ASSERT_TRUE(s.status.ok()) << "split at " << split << ": " << s.status;
    ASSERT_EQ(CallsText(s.sink.tool_calls), expected) << "split at " << split;
    ASSERT_EQ(s.sink.text, "Checking both.") << "split at " << split;
  }
}

TEST(OpenAiStreamTest, AzureFirstChunkWithEmptyChoicesIsNotUsage) {
  std::unique_ptr<ProviderAdapter> azure =
      NewOpenAiAdapter(Provider(config::v1::PROVIDER_KIND_AZURE_OPENAI), "k");
  Decoded d = DecodeEveryWay(*azure, ReadTestdata("azure_stream.sse"));
  ExpectFinished(d, "Hello from Azure.", v1::FINISH_REASON_STOP, "stop");
  ExpectUsage(d, 21, 4);
}

TEST(OpenAiStreamTest, AzureContentFilterFinish) {
  std::unique_ptr<ProviderAdapter> azure =
      NewOpenAiAdapter(Provider(config::v1::PROVIDER_KIND_AZURE_OPENAI), "k");
  Decoded d = DecodeEveryWay(*azure, ReadTestdata("azure_stream_content_filter.sse"));
  ExpectFinished(d, "Once upon", v1::FINISH_REASON_CONTENT_FILTER, "content_filter");
  EXPECT_FALSE(d.sink.finish.usage_reported);
}

TEST(OpenAiStreamTest, VllmNullUsageThenUsageChunk) {
  Decoded d =
      DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_VLLM), ReadTestdata("vllm_stream.sse"));
  ExpectFinished(d, "The answer is 42.", v1::FINISH_REASON_STOP, "stop");
  ExpectUsage(d, 20, 6);
}

TEST(OpenAiStreamTest, VllmUsageOnEveryChunkLastWins) {
  Decoded d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_VLLM),
                             ReadTestdata("vllm_stream_continuous_usage.sse"));
  ExpectFinished(d, "One two", v1::FINISH_REASON_LENGTH, "length");
  ExpectUsage(d, 12, 2);
}

TEST(OpenAiStreamTest, VllmInStreamError) {
  Decoded d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_VLLM),
                             ReadTestdata("vllm_stream_error.sse"));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kInvalidArgument) << d.status;
  std::optional<ProviderError> e = ProviderErrorFromStatus(d.status);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error_class, ProviderErrorClass::kInvalidRequest);  // from "code":400
  EXPECT_EQ(e->http_status, 0);
  EXPECT_EQ(e->type, "BadRequestError");
  EXPECT_EQ(e->code, "400");
  EXPECT_THAT(e->message, HasSubstr("maximum context length"));
  EXPECT_EQ(d.sink.finishes, 0);
}

TEST(OpenAiStreamTest, OpenAiInStreamError) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_error.sse"));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable) << d.status;
  std::optional<ProviderError> e = ProviderErrorFromStatus(d.status);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error_class, ProviderErrorClass::kServer);
  EXPECT_EQ(e->type, "server_error");
  EXPECT_THAT(e->message, HasSubstr("server had an error"));
  EXPECT_EQ(d.sink.text, "Half an ans");  // what came before the error was delivered
  EXPECT_EQ(d.sink.finishes, 0);
}

TEST(OpenAiStreamTest, LlamaCppUsageOnFinishChunkAndKeepAlives) {
  Decoded d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_LLAMA_CPP),
                             ReadTestdata("llamacpp_stream_usage_on_finish.sse"));
  ExpectFinished(d, "Bonjour !", v1::FINISH_REASON_STOP, "stop");
  ExpectUsage(d, 11, 3);
}

TEST(OpenAiStreamTest, LlamaCppErrorFieldThenDoneIsAFailure) {
  const std::string input = ReadTestdata("llamacpp_stream_error_field.sse");
  Decoded d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_LLAMA_CPP), input);
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable) << d.status;
  EXPECT_THAT(d.status.message(), HasSubstr("no finish_reason"));
  EXPECT_EQ(d.sink.text, "Partial");
  EXPECT_EQ(d.sink.finishes, 0);
  // A generic server gets the benefit of the doubt: [DONE] completes the stream.
  d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_UNSPECIFIED), input);
  ExpectFinished(d, "Partial", v1::FINISH_REASON_UNSPECIFIED, "");
}

TEST(OpenAiStreamTest, OllamaOmittedUsageThenUsageChunk) {
  Decoded d =
      DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_OLLAMA), ReadTestdata("ollama_stream.sse"));
  ExpectFinished(d, "Why not?", v1::FINISH_REASON_STOP, "stop");
  ExpectUsage(d, 26, 3);
}

TEST(OpenAiStreamTest, ProxyQuirks) {
  Decoded d = DecodeEveryWay(*Compat(config::v1::COMPAT_FLAVOR_UNSPECIFIED),
                             ReadTestdata("proxy_quirks_stream.sse"));
  // The event after [DONE] ("after done") is ignored.
  ExpectFinished(d, "A\u00e9\n\"q\"", v1::FINISH_REASON_STOP, "stop");
  ExpectUsage(d, 5, 3);  // the usage in the choice (Moonshot) is replaced by the later one
}

// With stream_options.include_usage the last chunk's usage carries the details objects
// (docs/providers.md §1.3-1.4); Azure and the compatible servers share the decoder.
TEST(OpenAiStreamTest, UsageChunkDetailsGiveCachedAndReasoningTokens) {
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
      "\"finish_reason\":null}],\"usage\":null}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":null}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1500,\"completion_tokens\":90,"
      "\"total_tokens\":1590,\"prompt_tokens_details\":{\"cached_tokens\":1280},"
      "\"completion_tokens_details\":{\"reasoning_tokens\":64}}}\n\n"
      "data: [DONE]\n\n";
  std::vector<std::unique_ptr<ProviderAdapter>> adapters;
  adapters.push_back(OpenAi());
  adapters.push_back(Compat(config::v1::COMPAT_FLAVOR_VLLM));
  for (const auto& adapter : adapters) {
    Decoded d = DecodeEveryWay(*adapter, stream);
    ExpectFinished(d, "Hi", v1::FINISH_REASON_STOP, "stop");
    ExpectUsage(d, 1500, 90);
    EXPECT_EQ(d.sink.finish.cached_input_tokens, 1280);
    EXPECT_EQ(d.sink.finish.cache_write_input_tokens, 0);
    EXPECT_EQ(d.sink.finish.reasoning_output_tokens, 64);
  }
}

TEST(OpenAiStreamTest, TruncatedStreamIsUnavailable) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_truncated.sse"));
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(d.status.message(), HasSubstr("stream ended before finish"));
  EXPECT_EQ(d.sink.text, "The first");
  EXPECT_EQ(d.sink.finishes, 0);
  EXPECT_TRUE(d.dropped);
}

TEST(OpenAiStreamTest, FinishWithoutDoneCompletes) {
  Decoded d = DecodeEveryWay(*OpenAi(), ReadTestdata("openai_stream_no_done.sse"));
  ExpectFinished(d, "Done", v1::FINISH_REASON_STOP, "stop");
  EXPECT_FALSE(d.sink.finish.usage_reported);
}

TEST(OpenAiStreamTest, FinishIsDeliveredAtDone) {
  std::unique_ptr<ProviderAdapter> adapter = OpenAi();
  std::unique_ptr<StreamDecoder> decoder = adapter->NewStreamDecoder();
  RecordingSink sink;
  SseParser parser;
  auto feed = [&](std::string_view bytes) {
    return parser.Feed(bytes, [&](std::string_view event, std::string_view data) {
      return decoder->OnEvent(event, data, sink);
    });
  };
  ASSERT_TRUE(feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},"
                   "\"finish_reason\":\"stop\"}]}\n\n")
                  .ok());
  EXPECT_EQ(sink.finishes, 0);  // a usage chunk may still come
  ASSERT_TRUE(feed("data: [DONE]\n\n").ok());
  EXPECT_EQ(sink.finishes, 1);
  EXPECT_TRUE(decoder->OnEnd(sink).ok());
  EXPECT_EQ(sink.finishes, 1);
}

TEST(OpenAiStreamTest, ErrorShapes) {
  struct Case {
    std::string input;
    ProviderErrorClass expected;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"event: error\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
       ProviderErrorClass::kServer, "boom"},
      {"event: error\ndata: upstream exploded\n\n", ProviderErrorClass::kServer,
       "upstream exploded"},
      {"data: {\"error\":\"plain string\"}\n\n", ProviderErrorClass::kServer, "plain string"},
      {"data: {\"object\":\"error\",\"message\":\"flat\",\"type\":\"BadRequestError\","
       "\"code\":400}\n\n",
       ProviderErrorClass::kInvalidRequest, "flat"},
      {"data: {\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":"
       "\"rate_limit_exceeded\"}}\n\n",
       ProviderErrorClass::kRateLimited, "slow down"},
      {"data: {\"error\":{\"message\":\"Incorrect API key provided: sk-abcdef123\",\"code\":"
       "\"invalid_api_key\"}}\n\n",
       ProviderErrorClass::kAuth, "Incorrect API key provided: sk-***"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    Decoded d = DecodeEveryWay(*OpenAi(), c.input);
    std::optional<ProviderError> e = ProviderErrorFromStatus(d.status);
    ASSERT_TRUE(e.has_value()) << d.status;
    EXPECT_EQ(e->error_class, c.expected);
    EXPECT_EQ(e->message, c.message);
  }
}

TEST(OpenAiStreamTest, FalsyErrorMembersAreNotErrors) {
  Decoded d = DecodeEveryWay(
      *OpenAi(),
      "data: {\"error\":false,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},"
      "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
  ExpectFinished(d, "ok", v1::FINISH_REASON_STOP, "stop");
}

TEST(OpenAiStreamTest, MalformedChunksAreInternal) {
  const std::string long_value(1000, 'a');
  const std::vector<std::string> cases = {
      "data: not json\n\n",
      "data: [1,2]\n\n",
      "data: {\"choices\":{\"a\":1}}\n\n",
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":7}}]}\n\n",
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}\n\n",
      "data: {\"choices\":[{\"index\":0,\"finish_reason\":3}]}\n\n",
      "data: {\"usage\":[1]}\n\n",
      "data: {\"choices\":[]} x\n\n",
      "data: {\"choices\":[]}}\n\n",
      "data: {\"x\":\"" + long_value + "\n\n",
  };
  for (const std::string& input : cases) {
    SCOPED_TRACE(input.substr(0, 80));
    Decoded d = DecodeEveryWay(*OpenAi(), input);
    EXPECT_EQ(d.status.code(), absl::StatusCode::kInternal) << d.status;
    EXPECT_THAT(d.status.message(), HasSubstr("malformed OpenAI stream chunk"));
    // Never more than ~200 bytes of the payload in the message.
    EXPECT_LT(d.status.message().size(), 320u) << d.status;
    EXPECT_EQ(d.sink.finishes, 0);
  }
}

TEST(OpenAiStreamTest, EmptyBodyIsUnavailable) {
  Decoded d = DecodeEveryWay(*OpenAi(), "");
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
  d = DecodeEveryWay(*OpenAi(), ": keep-alive\n\n");
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnpike
