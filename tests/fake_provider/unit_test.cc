// In-process unit tests of the fake provider's pure parts: fault parsing, routing, JSON
// writing, embeddings and response planning.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tools/fake_provider/embedding.h"
#include "tools/fake_provider/fault_spec.h"
#include "tools/fake_provider/json_writer.h"
#include "tools/fake_provider/provider.h"
#include "tools/fake_provider/request_parser.h"
#include "tools/fake_provider/response_plan.h"
#include "tools/fake_provider/wire_format.h"

namespace turnpike::fake_provider {
namespace {

TEST(FaultSpecTest, SetParsesEveryKey) {
  FaultSpec f;
  EXPECT_TRUE(f.Set("status", "429").ok());
  EXPECT_TRUE(f.Set("error_type", "insufficient_quota").ok());
  EXPECT_TRUE(f.Set("retry-after", "1.5").ok());
  EXPECT_TRUE(f.Set("RETRY_AFTER_MS", "250").ok());
  EXPECT_TRUE(f.Set("first_byte_delay_ms", "10").ok());
  EXPECT_TRUE(f.Set("chunks", "3").ok());
  EXPECT_TRUE(f.Set("chunk_delay_ms", "7").ok());
  EXPECT_TRUE(f.Set("reset_after_chunks", "0").ok());
  EXPECT_TRUE(f.Set("stream_error_after", "2").ok());
  EXPECT_TRUE(f.Set("malformed", "1").ok());
  EXPECT_TRUE(f.Set("line_ending", "CRLF").ok());
  EXPECT_TRUE(f.Set("truncate", "true").ok());
  EXPECT_TRUE(f.Set("stall_after_chunks", "4").ok());
  EXPECT_EQ(f.status, 429);
  EXPECT_EQ(f.retry_after, "1.5");
  EXPECT_EQ(f.retry_after_ms, "250");
  EXPECT_EQ(f.reset_after_chunks, 0);
  EXPECT_EQ(f.line_ending, LineEnding::kCrLf);
  EXPECT_EQ(f.malformed, true);
  EXPECT_EQ(f.truncate, true);
  EXPECT_EQ(f.ToJson(),
            "{\"status\":429,\"error_type\":\"insufficient_quota\",\"retry_after\":\"1.5\","
            "\"retry_after_ms\":\"250\",\"first_byte_delay_ms\":10,\"chunks\":3,"
            "\"chunk_delay_ms\":7,\"reset_after_chunks\":0,\"stream_error_after\":2,"
            "\"malformed\":true,\"line_ending\":\"crlf\",\"truncate\":true,"
            "\"stall_after_chunks\":4}");
}

TEST(FaultSpecTest, RejectsBadValuesAndUnknownKeys) {
  FaultSpec f;
  EXPECT_FALSE(f.Set("status", "abc").ok());
  EXPECT_FALSE(f.Set("status", "302").ok());
  EXPECT_FALSE(f.Set("status", "600").ok());
  EXPECT_FALSE(f.Set("chunks", "-1").ok());
  EXPECT_FALSE(f.Set("line_ending", "crcr").ok());
  EXPECT_FALSE(f.Set("malformed", "maybe").ok());
  EXPECT_FALSE(f.Set("retry_after", "-2").ok());
  EXPECT_FALSE(f.Set("bogus", "1").ok());
  EXPECT_TRUE(f.empty());
}

TEST(FaultSpecTest, MergeOverridesFieldByField) {
  FaultSpec base;
  ASSERT_TRUE(base.Set("status", "503").ok());
  ASSERT_TRUE(base.Set("retry_after", "3").ok());
  FaultSpec over;
  ASSERT_TRUE(over.Set("status", "429").ok());
  base.MergeFrom(over);
  EXPECT_EQ(base.status, 429);
  EXPECT_EQ(base.retry_after, "3");
}

TEST(FaultSpecTest, Directives) {
  auto f = ParseFaultDirectives("hi [[fake status=429 retry_after=2]] and [[fake  chunks=9 ]]");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->status, 429);
  EXPECT_EQ(f->retry_after, "2");
  EXPECT_EQ(f->chunks, 9);
  EXPECT_TRUE(ParseFaultDirectives("nothing here")->empty());
  EXPECT_TRUE(ParseFaultDirectives("[[fakeish status=1]]")->empty());
  EXPECT_FALSE(ParseFaultDirectives("[[fake status]]").ok());
  EXPECT_FALSE(ParseFaultDirectives("[[fake status=429").ok());
  EXPECT_TRUE(ContainsFaultDirective("x [[fake y]]"));
}

TEST(FaultSpecTest, EchoDirectivesAndTheirText) {
  auto f = ParseFaultDirectives("[[fake echo=1 error_echo=true]]my text");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->echo, true);
  EXPECT_EQ(f->error_echo, true);
  EXPECT_EQ(StripFaultDirectives("a [[fake echo=1]]b[[fake chunks=2]] c"), "a b c");
  ResponseContext ctx;
  ctx.content_chunks = 3;
  ctx.echo =
      "ab\xc3\xa9"
      "cdefg";  // a two-byte sequence is never cut
  std::string joined;
  for (int i = 0; i < 3; ++i) {
    std::string_view chunk = ChunkText(ctx, i);
    EXPECT_NE(static_cast<unsigned char>(chunk.empty() ? 'x' : chunk[0]) & 0xC0, 0x80);
    joined += chunk;
  }
  EXPECT_EQ(joined, ctx.echo);
  EXPECT_EQ(ReplyText(ctx), ctx.echo);
}

TEST(FaultSpecTest, QueueJson) {
  auto q = ParseFaultQueueJson(
      "[{\"status\":503,\"retry_after\":1.5},{},{\"malformed\":true,\"line_ending\":\"cr\"}]");
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->size(), 3u);
  EXPECT_EQ((*q)[0].status, 503);
  EXPECT_EQ((*q)[0].retry_after, "1.5");
  EXPECT_TRUE((*q)[1].empty());
  EXPECT_EQ((*q)[2].line_ending, LineEnding::kCr);
  EXPECT_EQ(ParseFaultQueueJson("{\"status\":500}")->size(), 1u);
  EXPECT_FALSE(ParseFaultQueueJson("[1]").ok());
  EXPECT_FALSE(ParseFaultQueueJson("[{\"status\":[1]}]").ok());
  EXPECT_FALSE(ParseFaultQueueJson("[{\"nope\":1}]").ok());
}

TEST(RouteTest, MatchesEveryProvider) {
  EXPECT_EQ(MatchRoute("/v1/chat/completions")->provider, Provider::kOpenAI);
  EXPECT_EQ(MatchRoute("/v1/embeddings")->endpoint, Endpoint::kEmbeddings);
  EXPECT_EQ(MatchRoute("/v1/messages")->provider, Provider::kAnthropic);
  auto azure = MatchRoute("/openai/deployments/dep-1/embeddings");
  ASSERT_TRUE(azure);
  EXPECT_EQ(azure->provider, Provider::kAzure);
  EXPECT_EQ(azure->path_model, "dep-1");
  auto gemini = MatchRoute("/v1beta/models/gemini-2.5-flash:streamGenerateContent");
  ASSERT_TRUE(gemini);
  EXPECT_TRUE(gemini->stream_by_path);
  EXPECT_EQ(gemini->path_model, "gemini-2.5-flash");
  EXPECT_EQ(MatchRoute("/vllm/v1/chat/completions")->provider, Provider::kVllm);
  EXPECT_EQ(MatchRoute("/llamacpp/v1/embeddings")->provider, Provider::kLlamaCpp);
  EXPECT_EQ(MatchRoute("/ollama/v1/chat/completions")->provider, Provider::kOllama);
  EXPECT_FALSE(MatchRoute("/v1/models"));
  EXPECT_FALSE(MatchRoute("/openai/deployments//chat/completions"));
  EXPECT_FALSE(MatchRoute("/v1beta/models/x:countTokens"));
}

TEST(JsonWriterTest, EscapesAndSanitises) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonString("h\xC3\xA9llo \xF0\x9F\x98\x80"), "\"h\xC3\xA9llo \xF0\x9F\x98\x80\"");
  EXPECT_EQ(JsonString("bad\xFFz\xC3"), "\"bad\xEF\xBF\xBDz\xEF\xBF\xBD\"");
}

TEST(EmbeddingTest, DeterministicAndExactInBase64) {
  EXPECT_EQ(FakeEmbedding("x"), FakeEmbedding("x"));
  EXPECT_NE(FakeEmbedding("x"), FakeEmbedding("y"));
  EXPECT_EQ(FakeEmbedding("x", 3).size(), 3u);
  for (float v : FakeEmbedding("abc")) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  EXPECT_EQ(EmbeddingBase64({1.0f, -2.0f}), "AACAPwAAAMA=");
}

TEST(RequestParserTest, CountsWordsAndFindsDirectives) {
  RequestParser parser;
  Route anthropic;
  anthropic.provider = Provider::kAnthropic;
  auto r =
      parser.Parse(anthropic,
                   "{\"model\":\"c\",\"max_tokens\":5,\"system\":\"one two\",\"messages\":["
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"three "
                   "[[fake status=529]]\"},{\"type\":\"tool_result\",\"content\":\"four\"}]}]}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->input_words, 6);
  EXPECT_EQ(r->max_tokens, 5);
  ASSERT_EQ(r->directive_texts.size(), 1u);
  EXPECT_FALSE(parser.Parse(anthropic, "[1,2]").ok());
  EXPECT_FALSE(parser.Parse(anthropic, "{").ok());
  EXPECT_EQ(CountWords("  a\tb\n c  "), 3);
}

TEST(TokenLimitTest, EachProviderHonoursItsOwnField) {
  ParsedRequest r;
  r.max_completion_tokens = 2;
  r.max_tokens = 3;
  r.n_predict = 4;
  r.max_output_tokens = 5;
  EXPECT_EQ(EffectiveTokenLimit(Provider::kOpenAI, r), 2);
  EXPECT_EQ(EffectiveTokenLimit(Provider::kVllm, r), 2);
  EXPECT_EQ(EffectiveTokenLimit(Provider::kOllama, r), 3);
  EXPECT_EQ(EffectiveTokenLimit(Provider::kAnthropic, r), 3);
  EXPECT_EQ(EffectiveTokenLimit(Provider::kLlamaCpp, r), 4);
  EXPECT_EQ(EffectiveTokenLimit(Provider::kGemini, r), 5);
}

PlanInput StreamInput(Provider p) {
  PlanInput in;
  in.route.provider = p;
  ParsedRequest r;
  r.stream = true;
  r.message_count = 1;
  r.model = "m";
  r.max_tokens = 100;
  in.parsed = r;
  in.response_id = "id";
  in.request_id = "req";
  return in;
}

TEST(PlanTest, StreamSegmentsAndEndings) {
  PlanInput in = StreamInput(Provider::kOpenAI);
  ResponsePlan plan = PlanProviderResponse(in);
  EXPECT_EQ(plan.kind, ResponsePlan::Kind::kStream);
  EXPECT_TRUE(plan.is_stream);
  EXPECT_EQ(plan.segments.size(), 1u);  // no delay: the whole stream in one write
  EXPECT_EQ(plan.ending, ResponsePlan::Ending::kEnd);
  in.default_chunk_delay_ms = 10;
  plan = PlanProviderResponse(in);
  EXPECT_EQ(plan.segments.size(), 5u);  // one per content chunk; prologue/epilogue ride along
  EXPECT_EQ(plan.segment_delay_ms, 10);
  in.default_chunk_delay_ms = 0;

  in.fault.reset_after_chunks = 0;
  EXPECT_EQ(PlanProviderResponse(in).kind, ResponsePlan::Kind::kReset);
  in.fault = {};
  in.fault.stall_after_chunks = 0;
  EXPECT_EQ(PlanProviderResponse(in).kind, ResponsePlan::Kind::kStall);
  in.fault = {};
  in.fault.reset_after_chunks = 2;
  in.fault.stream_error_after = 1;
  plan = PlanProviderResponse(in);
  EXPECT_EQ(plan.ending, ResponsePlan::Ending::kEnd) << "the earliest fault wins";
  EXPECT_EQ(plan.segments.size(), 1u);
  EXPECT_NE(plan.segments.back().find("\"error\""), std::string::npos);
  in.fault = {};
  in.fault.reset_after_chunks = 9;  // beyond the answer: no effect
  EXPECT_EQ(PlanProviderResponse(in).ending, ResponsePlan::Ending::kEnd);
}

TEST(PlanTest, ErrorsComeBeforeTheBody) {
  PlanInput in = StreamInput(Provider::kAnthropic);
  in.fault.status = 529;
  in.fault.retry_after = "4";
  ResponsePlan plan = PlanProviderResponse(in);
  EXPECT_EQ(plan.kind, ResponsePlan::Kind::kReply);
  EXPECT_EQ(plan.status, 529);
  EXPECT_NE(plan.body.find("overloaded_error"), std::string::npos);
  bool has_retry = false;
  for (const auto& [k, v] : plan.headers) has_retry |= k == "retry-after" && v == "4";
  EXPECT_TRUE(has_retry);

  in.fault = {};
  in.fault_error = "unknown fault key 'x'";
  plan = PlanProviderResponse(in);
  EXPECT_EQ(plan.status, 400);
  EXPECT_NE(plan.body.find("unknown fault key"), std::string::npos);
}

TEST(PlanTest, GeminiWithZeroChunksStillFinishes) {
  PlanInput in = StreamInput(Provider::kGemini);
  in.route.stream_by_path = true;
  in.route.path_model = "g";
  in.fault.chunks = 0;
  ResponsePlan plan = PlanProviderResponse(in);
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_NE(plan.segments[0].find("\"finishReason\":\"STOP\""), std::string::npos);
}

}  // namespace
}  // namespace turnpike::fake_provider
