// Unit tests of the HTTP front door's wire format (server/http/openai_wire.h): what a request
// body becomes, which precise 400 each bad body gets, and the shapes of replies, chunks and
// errors.
#include "server/http/openai_wire.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "server/http/openai_tools_wire.h"

namespace turnpike {
namespace {

std::string ParamOf(const absl::Status& status) {
  const HttpError e = ToHttpError(status);
  const size_t at = e.body.find("\"param\":");
  return e.body.substr(at + 8, e.body.find(',', at) - at - 8);
}

TEST(OpenAiWireTest, ParsesAChatRequestIntoTheGatewaysOwn) {
  absl::StatusOr<OpenAiChatRequest> r = ParseOpenAiChatRequest(R"({
    "model":"claims","stream":true,"stream_options":{"include_usage":true},
    "max_completion_tokens":50,"temperature":0.2,"top_p":0.9,"stop":"END","user":"u-1",
    "metadata":{"team":"claims"},"unknown_field":{"is":"ignored"},
    "messages":[{"role":"developer","content":"rules"},
                {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":null}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  const v1::StreamCompletionRequest& q = r->request;
  EXPECT_EQ(q.capability(), "claims");
  EXPECT_EQ(q.max_tokens(), 50);
  EXPECT_DOUBLE_EQ(q.temperature(), 0.2);
  EXPECT_DOUBLE_EQ(q.top_p(), 0.9);
  ASSERT_EQ(q.stop_size(), 1);
  EXPECT_EQ(q.stop(0), "END");
  EXPECT_EQ(q.user(), "u-1");
  EXPECT_EQ(q.tags().at("team"), "claims");
  ASSERT_EQ(q.messages_size(), 3);
  EXPECT_EQ(q.messages(0).role(), v1::ROLE_SYSTEM);
  EXPECT_EQ(q.messages(1).content(), "ab");
  EXPECT_EQ(q.messages(2).role(), v1::ROLE_ASSISTANT);
}

TEST(OpenAiWireTest, BadBodiesGetA400NamingTheField) {
  struct Case {
    const char* body;
    const char* param;  // as written in the error JSON
    const char* message_part;
  };
  const Case cases[] = {
      {"", "null", "not valid JSON"},
      {"[1]", "null", "must be a JSON object"},
      {R"({"messages":[]})", R"("model")", "model: is required"},
      {R"({"model":7,"messages":[]})", R"("model")", "must be a string"},
      {R"({"model":"m"})", R"("messages")", "is required"},
      {R"({"model":"m","messages":{}})", R"("messages")", "must be an array"},
      {R"({"model":"m","messages":[]})", R"("messages")", "at least one"},
      {R"({"model":"m","messages":[{"content":"x"}]})", R"("messages[0].role")", "is required"},
      {R"({"model":"m","messages":[{"role":"robot","content":"x"}]})", R"("messages[0].role")",
       "not supported"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
       R"("messages[0].tool_call_id")", "is required"},
      {R"({"model":"m","messages":[{"role":"user"}]})", R"("messages[0].content")", "required"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       R"("messages[0].content[0].image_url.url")", "is required"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]})",
       R"("messages[0].content[0].type")", "not supported"},
      {R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]})",
       R"("max_tokens")", "integer"},
      {R"({"model":"m","n":3,"messages":[{"role":"user","content":"x"}]})", R"("n")", "n=1"},
      {R"({"model":"m","tools":[{}],"messages":[{"role":"user","content":"x"}]})",
       R"("tools[0].type")", "is required"},
      {R"({"model":"m","tools":[{"type":"function","function":{}}],"messages":[{"role":"user","content":"x"}]})",
       R"("tools[0].function.name")", "is required"},
      {R"({"model":"m","tool_choice":"always","messages":[{"role":"user","content":"x"}]})",
       R"("tool_choice")", "must be"},
      {R"({"model":"m","response_format":{"type":"json_schema"},"messages":[{"role":"user","content":"x"}]})",
       R"("response_format.json_schema")", "must be an object"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f"}}]}]})",
       R"("messages[0].tool_calls[0].id")", "is required"},
      {R"({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]})", R"("stream")",
       "true or false"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<OpenAiChatRequest> r = ParseOpenAiChatRequest(c.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message_part), absl::string_view::npos)
        << r.status().message();
    EXPECT_EQ(ParamOf(r.status()), c.param);
    EXPECT_EQ(ToHttpError(r.status()).http_status, 400);
  }
}

// Tools, tool choice, response format, image parts, an assistant's tool calls and a tool result,
// in OpenAI's shapes, become the turnpike.v1 fields of docs/tools.md.
TEST(OpenAiWireTest, ParsesToolsImagesAndResponseFormats) {
  absl::StatusOr<OpenAiChatRequest> r = ParseOpenAiChatRequest(R"({
    "model":"m",
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
              "parameters":{"type":"object", "properties":{"city":{"type":"string"}}}}}],
    "tool_choice":{"type":"function","function":{"name":"get_weather"}},
    "response_format":{"type":"json_schema","json_schema":{"name":"w","strict":true,
                       "schema":{"type":"object"}}},
    "messages":[
      {"role":"user","content":[{"type":"text","text":"What is this?"},
                                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"{\"c\": 21}"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::StreamCompletionRequest& q = r->request;
  ASSERT_EQ(q.tools_size(), 1);
  EXPECT_EQ(q.tools(0).name(), "get_weather");
  EXPECT_EQ(q.tools(0).description(), "Weather");
  EXPECT_EQ(q.tools(0).parameters_json(),
            R"({"type":"object","properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(q.tool_choice().mode(), v1::TOOL_CHOICE_MODE_TOOL);
  EXPECT_EQ(q.tool_choice().tool_name(), "get_weather");
  EXPECT_EQ(q.response_format().type(), v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  EXPECT_EQ(q.response_format().json_schema(), R"({"type":"object"})");
  EXPECT_EQ(q.response_format().schema_name(), "w");
  EXPECT_TRUE(q.response_format().strict());
  ASSERT_EQ(q.messages_size(), 3);
  ASSERT_EQ(q.messages(0).parts_size(), 2);
  EXPECT_EQ(q.messages(0).parts(0).text(), "What is this?");
  EXPECT_EQ(q.messages(0).parts(1).image().url(), "data:image/png;base64,iVBORw0KGgo=");
  EXPECT_EQ(q.messages(0).content(), "");
  ASSERT_EQ(q.messages(1).tool_calls_size(), 1);
  EXPECT_EQ(q.messages(1).tool_calls(0).id(), "call_1");
  EXPECT_EQ(q.messages(1).tool_calls(0).arguments_json(), R"({"city": "Paris"})");
  EXPECT_EQ(q.messages(2).role(), v1::ROLE_TOOL);
  EXPECT_EQ(q.messages(2).tool_call_id(), "call_1");

  for (const auto& [choice, mode] : std::vector<std::pair<std::string, v1::ToolChoiceMode>>{
           {"auto", v1::TOOL_CHOICE_MODE_AUTO},
           {"none", v1::TOOL_CHOICE_MODE_NONE},
           {"required", v1::TOOL_CHOICE_MODE_REQUIRED}}) {
    absl::StatusOr<OpenAiChatRequest> c = ParseOpenAiChatRequest(absl::StrCat(
        R"({"model":"m","tool_choice":")", choice,
        R"(","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]})"));
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->request.tool_choice().mode(), mode);
    EXPECT_EQ(c->request.response_format().type(), v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT);
  }
}

TEST(OpenAiWireTest, WritesToolCallsAsOpenAiDoes) {
  const ChunkHeader h{"chatcmpl-1", 1700000000, "m"};
  EXPECT_EQ(ToolCallChunkEvent(h, ToolCallFragment{0, "call_1", "get_weather", ""}, false),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":"
            "1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
            "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
            "\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n");
  EXPECT_NE(ToolCallChunkEvent(h, ToolCallFragment{1, "", "", "{\"ci"}, true)
                .find("\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"ci\"}}]}"),
            std::string::npos);
  v1::CompletionFinish finish;
  finish.set_finish_reason(v1::FINISH_REASON_TOOL_CALLS);
  v1::ToolCall call;
  call.set_id("call_1");
  call.set_name("get_weather");
  call.set_arguments_json(R"({"city":"Paris"})");
  const std::string body = ChatCompletionJson(h, "", {call}, finish);
  EXPECT_NE(body.find("\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                      "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                      "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("\"finish_reason\":\"tool_calls\""), std::string::npos);
}

TEST(OpenAiWireTest, ParsesEmbeddingRequests) {
  absl::StatusOr<OpenAiEmbedRequest> one = ParseOpenAiEmbedRequest(R"({"model":"e","input":"x"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->request.inputs_size(), 1);
  EXPECT_FALSE(one->base64);
  absl::StatusOr<OpenAiEmbedRequest> many = ParseOpenAiEmbedRequest(
      R"({"model":"e","input":["x","y"],"dimensions":4,"encoding_format":"base64"})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->request.inputs_size(), 2);
  EXPECT_EQ(many->request.dimensions(), 4);
  EXPECT_TRUE(many->base64);
  EXPECT_FALSE(ParseOpenAiEmbedRequest(R"({"model":"e","input":[[1,2]]})").ok());
  EXPECT_FALSE(
      ParseOpenAiEmbedRequest(R"({"model":"e","input":"x","encoding_format":"hex"})").ok());
}

TEST(OpenAiWireTest, WritesChunksInOpenAisShape) {
  const ChunkHeader h{"chatcmpl-1", 1700000000, "claims"};
  EXPECT_EQ(RoleChunkEvent(h, false),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":"
            "1700000000,\"model\":\"claims\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
            "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
  EXPECT_NE(TextChunkEvent(h, "a\"b", true).find("\"delta\":{\"content\":\"a\\\"b\"}"),
            std::string::npos);
  EXPECT_NE(TextChunkEvent(h, "x", true).find("\"usage\":null"), std::string::npos);
  EXPECT_NE(FinishChunkEvent(h, v1::FINISH_REASON_LENGTH, false)
                .find("\"delta\":{},\"finish_reason\":\"length\""),
            std::string::npos);
  v1::Usage usage;
  usage.set_input_tokens(3);
  usage.set_output_tokens(4);
  EXPECT_NE(UsageChunkEvent(h, usage).find("\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                                           "\"completion_tokens\":4,\"total_tokens\":7}"),
            std::string::npos);
}

TEST(OpenAiWireTest, MapsStatusesToHttpAndRetryAfter) {
  EXPECT_EQ(ToHttpError(absl::UnauthenticatedError("x")).http_status, 401);
  EXPECT_EQ(ToHttpError(absl::PermissionDeniedError("x")).http_status, 403);
  EXPECT_EQ(ToHttpError(absl::NotFoundError("x")).http_status, 404);
  EXPECT_EQ(ToHttpError(absl::FailedPreconditionError("x")).http_status, 500);
  EXPECT_EQ(ToHttpError(absl::InternalError("x")).http_status, 500);
  absl::Status limited = absl::ResourceExhaustedError("slow down");
  AttachRetryInfo(limited, 1500);
  const HttpError e = ToHttpError(limited);
  EXPECT_EQ(e.http_status, 429);
  EXPECT_EQ(e.retry_after_seconds, 2);  // rounded up
  EXPECT_EQ(
      e.body,
      R"({"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}})");
  absl::Status unknown =
      ErrorWithReason(absl::StatusCode::kNotFound, "no route", "CAPABILITY_NOT_FOUND");
  EXPECT_NE(ToHttpError(unknown).body.find("\"code\":\"model_not_found\""), std::string::npos);
  EXPECT_EQ(ErrorEvent(absl::UnavailableError("down")).rfind("data: {\"error\":", 0), 0u);
}

}  // namespace
}  // namespace turnpike
