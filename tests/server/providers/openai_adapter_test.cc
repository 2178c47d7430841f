// OpenAiAdapter request building (per kind and compat flavor), unary chat and embeddings parsing,
// and error classification. Streams are in openai_stream_decoder_test.cc.
#include "server/providers/openai_adapter.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/providers/adapters.h"
#include "server/providers/openai_internal.h"
#include "simdjson.h"

namespace turnpike {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(TESTDATA_DIR) + "/openai/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

config::v1::Provider Provider(
    config::v1::ProviderKind kind, std::string base_url,
    config::v1::CompatFlavor flavor = config::v1::COMPAT_FLAVOR_UNSPECIFIED,
    std::string api_version = "") {
  config::v1::Provider p;
  p.set_name("test");
  p.set_kind(kind);
  p.set_base_url(std::move(base_url));
  p.set_compat_flavor(flavor);
  p.set_api_version(std::move(api_version));
  return p;
}

config::v1::Provider OpenAi() {
  return Provider(config::v1::PROVIDER_KIND_OPENAI, "https://api.openai.com/v1/");
}
config::v1::Provider Azure(std::string api_version = "2024-10-21") {
  return Provider(config::v1::PROVIDER_KIND_AZURE_OPENAI, "https://res.openai.azure.com",
                  config::v1::COMPAT_FLAVOR_UNSPECIFIED, std::move(api_version));
}
config::v1::Provider Compat(config::v1::CompatFlavor flavor) {
  return Provider(config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE, "http://127.0.0.1:8000/v1", flavor);
}

// A request with every optional field set, and the messages it carries.
class OpenAiRequestTest : public ::testing::Test {
 protected:
  OpenAiRequestTest() {
    AddMessage(v1::ROLE_SYSTEM, "Be brief.");
    AddMessage(v1::ROLE_USER, "Say \"hi\"\nin Русский 😀");
    AddMessage(v1::ROLE_ASSISTANT, "привет");
    AddMessage(v1::ROLE_USER, "again");
    params_.model = "gpt-4o";
    params_.messages = &messages_;
    params_.max_tokens = 256;
    params_.temperature = 0.2;
    params_.top_p = 0.9;
    params_.stop = {"\n\n", "END"};
    params_.user = "user-42";
    params_.stream = true;
  }

  void AddMessage(v1::Role role, std::string content) {
    v1::Message* m = messages_.Add();
    m->set_role(role);
    m->set_content(std::move(content));
  }

  // Builds the request and parses its body into body_.
  HttpRequest Build(const config::v1::Provider& provider, std::string key = "sk-test") {
    std::unique_ptr<ProviderAdapter> adapter = NewOpenAiAdapter(provider, std::move(key));
    HttpRequest request = adapter->BuildChatRequest(params_);
    body_text_ = request.body;
    EXPECT_EQ(parser_.parse(body_text_).get(body_), simdjson::SUCCESS) << body_text_;
    return request;
  }

  bool Has(const char* key) { return body_[key].error() != simdjson::NO_SUCH_FIELD; }
  int64_t Int(const char* key) { return int64_t(body_[key]); }
  std::string_view Str(const char* key) { return std::string_view(body_[key]); }

  google::protobuf::RepeatedPtrField<v1::Message> messages_;
  ChatParams params_;
  simdjson::dom::parser parser_;
  simdjson::dom::element body_;
  std::string body_text_;
};

TEST_F(OpenAiRequestTest, OpenAiStream) {
  config::v1::Provider provider = OpenAi();
  (*provider.mutable_headers())["OpenAI-Project"] = "proj_1";
  HttpRequest r = Build(provider);
  EXPECT_EQ(r.url, "https://api.openai.com/v1/chat/completions");
  EXPECT_THAT(r.headers, Contains("Authorization: Bearer sk-test"));
  EXPECT_THAT(r.headers, Contains("Content-Type: application/json"));
  EXPECT_THAT(r.headers, Contains("Accept: text/event-stream"));
  EXPECT_THAT(r.headers, Contains("OpenAI-Project: proj_1"));
  EXPECT_THAT(r.headers, Not(Contains(StartsWith("api-key"))));

  EXPECT_EQ(Str("model"), "gpt-4o");
  simdjson::dom::array messages = body_["messages"];
  ASSERT_EQ(messages.size(), 4u);
  std::vector<std::string> roles, contents;
  for (simdjson::dom::element m : messages) {
    roles.emplace_back(std::string_view(m["role"]));
    contents.emplace_back(std::string_view(m["content"]));
  }
  EXPECT_THAT(roles, ElementsAre("system", "user", "assistant", "user"));
  EXPECT_THAT(contents, ElementsAre("Be brief.", "Say \"hi\"\nin Русский 😀", "привет", "again"));
  EXPECT_TRUE(bool(body_["stream"]));
  EXPECT_TRUE(bool(body_["stream_options"]["include_usage"]));
  EXPECT_EQ(Int("max_completion_tokens"), 256);
  EXPECT_FALSE(Has("max_tokens"));
  EXPECT_DOUBLE_EQ(double(body_["temperature"]), 0.2);
  EXPECT_DOUBLE_EQ(double(body_["top_p"]), 0.9);
  simdjson::dom::array stop = body_["stop"];
  ASSERT_EQ(stop.size(), 2u);
  EXPECT_EQ(std::string_view(stop.at(0)), "\n\n");
  EXPECT_EQ(std::string_view(stop.at(1)), "END");
  EXPECT_EQ(Str("user"), "user-42");
}

// A tool-calling turn: image parts, an assistant message with a call, the tool's result, tools,
// a named tool choice and a strict JSON Schema response format (docs/providers.md §1.2).
TEST_F(OpenAiRequestTest, ToolsImagesAndResponseFormat) {
  v1::Message* user = messages_.Add();
  user->set_role(v1::ROLE_USER);
  user->add_parts()->set_text("What is in these?");
  user->add_parts()->mutable_image()->set_url("https://example.com/a.png");
  v1::ImagePart* inline_image = user->add_parts()->mutable_image();
  inline_image->set_data(std::string("\x89PNG\0", 5));
  inline_image->set_media_type("image/png");
  v1::Message* assistant = messages_.Add();
  assistant->set_role(v1::ROLE_ASSISTANT);
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("call_1");
  call->set_name("get_weather");
  call->set_arguments_json(R"({"city": "Paris"})");
  v1::Message* result = messages_.Add();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id("call_1");
  result->set_content("sunny");
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  v1::Tool* tool = tools.Add();
  tool->set_name("get_weather");
  tool->set_description("Weather by city");
  tool->set_parameters_json(R"({"type":"object","properties":{"city":{"type":"string"}}})");
  tools.Add()->set_name("no_args");
  params_.tools = &tools;
  params_.tool_choice.set_mode(v1::TOOL_CHOICE_MODE_TOOL);
  params_.tool_choice.set_tool_name("get_weather");
  params_.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  params_.response_format.set_json_schema(R"({"type":"object"})");
  params_.response_format.set_strict(true);
  Build(OpenAi());

  simdjson::dom::array messages = body_["messages"];
  ASSERT_EQ(messages.size(), 7u);
  simdjson::dom::array parts = messages.at(4)["content"];
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(std::string_view(parts.at(0)["type"]), "text");
  EXPECT_EQ(std::string_view(parts.at(0)["text"]), "What is in these?");
  EXPECT_EQ(std::string_view(parts.at(1)["type"]), "image_url");
  EXPECT_EQ(std::string_view(parts.at(1)["image_url"]["url"]), "https://example.com/a.png");
  EXPECT_EQ(std::string_view(parts.at(2)["image_url"]["url"]), "data:image/png;base64,iVBORwA=");
  simdjson::dom::element with_call = messages.at(5);
  EXPECT_EQ(std::string_view(with_call["role"]), "assistant");
  EXPECT_TRUE(with_call["content"].is_null());
  EXPECT_EQ(std::string_view(with_call["tool_calls"].at(0)["id"]), "call_1");
  EXPECT_EQ(std::string_view(with_call["tool_calls"].at(0)["type"]), "function");
  EXPECT_EQ(std::string_view(with_call["tool_calls"].at(0)["function"]["name"]), "get_weather");
  EXPECT_EQ(std::string_view(with_call["tool_calls"].at(0)["function"]["arguments"]),
            R"({"city": "Paris"})");
  simdjson::dom::element tool_result = messages.at(6);
  EXPECT_EQ(std::string_view(tool_result["role"]), "tool");
  EXPECT_EQ(std::string_view(tool_result["tool_call_id"]), "call_1");
  EXPECT_EQ(std::string_view(tool_result["content"]), "sunny");

  simdjson::dom::array sent_tools = body_["tools"];
  ASSERT_EQ(sent_tools.size(), 2u);
  EXPECT_EQ(std::string_view(sent_tools.at(0)["type"]), "function");
  EXPECT_EQ(std::string_view(sent_tools.at(0)["function"]["name"]), "get_weather");
  EXPECT_EQ(std::string_view(sent_tools.at(0)["function"]["description"]), "Weather by city");
  EXPECT_EQ(
      std::string_view(sent_tools.at(0)["function"]["parameters"]["properties"]["city"]["type"]),
      "string");
  EXPECT_EQ(std::string_view(sent_tools.at(1)["function"]["parameters"]["type"]), "object");
  EXPECT_EQ(std::string_view(body_["tool_choice"]["type"]), "function");
  EXPECT_EQ(std::string_view(body_["tool_choice"]["function"]["name"]), "get_weather");
  EXPECT_EQ(std::string_view(body_["response_format"]["type"]), "json_schema");
  EXPECT_EQ(std::string_view(body_["response_format"]["json_schema"]["name"]), "response");
  EXPECT_EQ(std::string_view(body_["response_format"]["json_schema"]["schema"]["type"]), "object");
  EXPECT_TRUE(bool(body_["response_format"]["json_schema"]["strict"]));
}

TEST_F(OpenAiRequestTest, ToolChoiceModesAndOllamaGap) {
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  tools.Add()->set_name("t");
  params_.tools = &tools;
  Build(OpenAi());
  EXPECT_FALSE(Has("tool_choice"));  // auto is the default
  EXPECT_FALSE(Has("response_format"));
  params_.tool_choice.set_mode(v1::TOOL_CHOICE_MODE_REQUIRED);
  Build(OpenAi());
  EXPECT_EQ(Str("tool_choice"), "required");
  params_.tool_choice.set_mode(v1::TOOL_CHOICE_MODE_NONE);
  Build(Azure());
  EXPECT_EQ(Str("tool_choice"), "none");
  Build(Compat(config::v1::COMPAT_FLAVOR_OLLAMA));
  EXPECT_FALSE(Has("tool_choice"));
  EXPECT_TRUE(Has("tools"));
  params_.response_format.set_type(v1::RESPONSE_FORMAT_TYPE_JSON_OBJECT);
  Build(Compat(config::v1::COMPAT_FLAVOR_VLLM));
  EXPECT_EQ(std::string_view(body_["tool_choice"]), "none");
  EXPECT_EQ(std::string_view(body_["response_format"]["type"]), "json_object");
}

TEST_F(OpenAiRequestTest, UnaryHasNoStreamOptions) {
  params_.stream = false;
  HttpRequest r = Build(OpenAi());
  EXPECT_FALSE(bool(body_["stream"]));
  // OpenAI and vLLM answer 400 to stream_options without stream:true.
  EXPECT_FALSE(Has("stream_options"));
  EXPECT_THAT(r.headers, Contains("Accept: application/json"));
  EXPECT_THAT(r.headers, Not(Contains("Accept: text/event-stream")));
}

TEST_F(OpenAiRequestTest, UnsetOptionalsAreOmitted) {
  params_.temperature.reset();
  params_.top_p.reset();
  params_.stop.clear();
  params_.user = "";
  Build(OpenAi());
  EXPECT_FALSE(Has("temperature"));
  EXPECT_FALSE(Has("top_p"));
  EXPECT_FALSE(Has("stop"));
  EXPECT_FALSE(Has("user"));
}

TEST_F(OpenAiRequestTest, AzureModernApiVersion) {
  params_.model = "my-gpt4o-deployment";
  HttpRequest r = Build(Azure("2024-10-21"), "azure-key-0123456789");
  EXPECT_EQ(r.url,
            "https://res.openai.azure.com/openai/deployments/my-gpt4o-deployment/chat/completions"
            "?api-version=2024-10-21");
  EXPECT_THAT(r.headers, Contains("api-key: azure-key-0123456789"));
  EXPECT_THAT(r.headers, Not(Contains(StartsWith("Authorization"))));
  EXPECT_EQ(Str("model"), "my-gpt4o-deployment");  // ignored by Azure, sent as the SDK does
  EXPECT_EQ(Int("max_completion_tokens"), 256);
  EXPECT_FALSE(Has("max_tokens"));
  EXPECT_TRUE(bool(body_["stream_options"]["include_usage"]));
  EXPECT_EQ(Str("user"), "user-42");
}

TEST_F(OpenAiRequestTest, AzureOldApiVersionUsesMaxTokensAndNoStreamOptions) {
  Build(Azure("2024-06-01"));
  EXPECT_EQ(Int("max_tokens"), 256);
  EXPECT_FALSE(Has("max_completion_tokens"));
  EXPECT_FALSE(Has("stream_options"));
  Build(Azure("2024-09-01-preview"));
  EXPECT_TRUE(Has("max_completion_tokens"));
  EXPECT_TRUE(Has("stream_options"));
  Build(Azure("preview"));
  EXPECT_TRUE(Has("max_completion_tokens"));
}

TEST_F(OpenAiRequestTest, AzureEscapesUrlPartsAndToleratesMissingApiVersion) {
  params_.model = "dep/../x y";
  HttpRequest r = Build(Azure(""));
  EXPECT_EQ(r.url,
            "https://res.openai.azure.com/openai/deployments/dep%2F..%2Fx%20y/chat/completions"
            "?api-version=");
}

TEST_F(OpenAiRequestTest, AzureEntraIdTokenFromExtraHeaders) {
  config::v1::Provider provider = Azure();
  (*provider.mutable_headers())["authorization"] = "Bearer entra-token";
  HttpRequest r = Build(provider, /*key=*/"");
  EXPECT_THAT(r.headers, Contains("authorization: Bearer entra-token"));
  EXPECT_THAT(r.headers, Not(Contains(StartsWith("api-key"))));
}

TEST_F(OpenAiRequestTest, ExtraHeaderReplacesOursAndUnsafeOnesAreDropped) {
  config::v1::Provider provider = OpenAi();
  (*provider.mutable_headers())["content-type"] = "application/json; charset=utf-8";
  (*provider.mutable_headers())["X-Evil"] = "a\r\nX-Injected: 1";
  (*provider.mutable_headers())["Bad:Name"] = "x";
  HttpRequest r = Build(provider);
  EXPECT_THAT(r.headers, Contains("content-type: application/json; charset=utf-8"));
  EXPECT_THAT(r.headers, Not(Contains("Content-Type: application/json")));
  EXPECT_THAT(r.headers, Not(Contains(HasSubstr("Injected"))));
  EXPECT_THAT(r.headers, Not(Contains(HasSubstr("Bad"))));
}

TEST_F(OpenAiRequestTest, CompatFlavorsUseMaxTokensAndNoUser) {
  for (config::v1::CompatFlavor flavor :
       {config::v1::COMPAT_FLAVOR_UNSPECIFIED, config::v1::COMPAT_FLAVOR_VLLM,
        config::v1::COMPAT_FLAVOR_LLAMA_CPP, config::v1::COMPAT_FLAVOR_OLLAMA}) {
    SCOPED_TRACE(config::v1::CompatFlavor_Name(flavor));
    params_.stream = true;
    HttpRequest r = Build(Compat(flavor), "local-key");
    EXPECT_EQ(r.url, "http://127.0.0.1:8000/v1/chat/completions");
    EXPECT_THAT(r.headers, Contains("Authorization: Bearer local-key"));
    EXPECT_EQ(Int("max_tokens"), 256);  // Ollama ignores max_completion_tokens
    EXPECT_FALSE(Has("max_completion_tokens"));
    EXPECT_FALSE(Has("user"));  // Ollama does not support it
    EXPECT_TRUE(bool(body_["stream_options"]["include_usage"]));
    params_.stream = false;
    Build(Compat(flavor), "local-key");
    EXPECT_FALSE(Has("stream_options"));  // vLLM: 400 without stream:true
  }
}

TEST_F(OpenAiRequestTest, CompatWithoutKeySendsNoAuthorization) {
  HttpRequest r = Build(Compat(config::v1::COMPAT_FLAVOR_OLLAMA), /*key=*/"");
  EXPECT_THAT(r.headers, Not(Contains(StartsWith("Authorization"))));
  EXPECT_THAT(r.headers, Contains("Content-Type: application/json"));
}

TEST(OpenAiEmbedRequestTest, BodyAndUrls) {
  EmbedParams params;
  params.model = "text-embedding-3-small";
  params.inputs = {"first", "second \"quoted\""};
  params.dimensions = 256;
  params.user = "u1";
  simdjson::dom::parser parser;

  absl::StatusOr<HttpRequest> r = NewOpenAiAdapter(OpenAi(), "sk-test")->BuildEmbedRequest(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->url, "https://api.openai.com/v1/embeddings");
  EXPECT_THAT(r->headers, Contains("Authorization: Bearer sk-test"));
  simdjson::dom::element body = parser.parse(r->body);
  EXPECT_EQ(std::string_view(body["model"]), "text-embedding-3-small");
  simdjson::dom::array input = body["input"];
  ASSERT_EQ(input.size(), 2u);
  EXPECT_EQ(std::string_view(input.at(1)), "second \"quoted\"");
  EXPECT_EQ(std::string_view(body["encoding_format"]), "float");
  EXPECT_EQ(int64_t(body["dimensions"]), 256);
  EXPECT_EQ(std::string_view(body["user"]), "u1");

  params.dimensions.reset();
  r = NewOpenAiAdapter(Compat(config::v1::COMPAT_FLAVOR_OLLAMA), "")->BuildEmbedRequest(params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->url, "http://127.0.0.1:8000/v1/embeddings");
  body = parser.parse(r->body);
  EXPECT_EQ(body["dimensions"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(body["user"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(body["encoding_format"]), "float");

  params.model = "embed-deployment";
  r = NewOpenAiAdapter(Azure("2024-10-21"), "k")->BuildEmbedRequest(params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->url,
            "https://res.openai.azure.com/openai/deployments/embed-deployment/embeddings"
            "?api-version=2024-10-21");
}

TEST(OpenAiChatResponseTest, SpecExample) {
  absl::StatusOr<ChatResult> r =
      NewOpenAiAdapter(OpenAi(), "k")->ParseChatResponse(ReadTestdata("openai_chat.json"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Hello! How can I assist you today?");
  EXPECT_EQ(r->finish.reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(r->finish.provider_reason, "stop");
  EXPECT_TRUE(r->finish.usage_reported);
  EXPECT_EQ(r->finish.input_tokens, 19);
  EXPECT_EQ(r->finish.output_tokens, 10);
}

// docs/providers.md §1.3: cached_tokens is a part of prompt_tokens and reasoning_tokens a part of
// completion_tokens, which is the normalized meaning as it stands.
TEST(OpenAiChatResponseTest, UsageDetailsGiveCachedAndReasoningTokens) {
  absl::StatusOr<ChatResult> r =
      NewOpenAiAdapter(OpenAi(), "k")
          ->ParseChatResponse(
              R"({"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],)"
              R"("usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,)"
              R"("prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},)"
              R"("completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0,)"
              R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish.input_tokens, 2006);
  EXPECT_EQ(r->finish.cached_input_tokens, 1920);
  EXPECT_EQ(r->finish.cache_write_input_tokens, 0);
  EXPECT_EQ(r->finish.output_tokens, 300);
  EXPECT_EQ(r->finish.reasoning_output_tokens, 256);
}

TEST(OpenAiChatResponseTest, NullOrOddUsageDetailsReadAsZero) {
  for (
      std::string_view details :
      {std::string_view(R"("prompt_tokens_details":null,"completion_tokens_details":null)"),
       std::string_view(R"("prompt_tokens_details":7,"completion_tokens_details":"x")"),
       std::string_view(
           R"("prompt_tokens_details":{"cached_tokens":null},"completion_tokens_details":{"reasoning_tokens":-3})")}) {
    const std::string body =
        std::string(
            R"({"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}],)") +
        R"("usage":{"prompt_tokens":20,"completion_tokens":5,)" + std::string(details) + "}}";
    absl::StatusOr<ChatResult> r = NewOpenAiAdapter(OpenAi(), "k")->ParseChatResponse(body);
    ASSERT_TRUE(r.ok()) << r.status() << body;
    EXPECT_EQ(r->finish.input_tokens, 20) << body;
    EXPECT_EQ(r->finish.cached_input_tokens, 0) << body;
    EXPECT_EQ(r->finish.reasoning_output_tokens, 0) << body;
  }
}

TEST(OpenAiChatResponseTest, ToolCallsWithNullContent) {
  absl::StatusOr<ChatResult> r =
      NewOpenAiAdapter(OpenAi(), "k")
          ->ParseChatResponse(ReadTestdata("openai_chat_tool_calls.json"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->finish.reason, v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(r->finish.output_tokens, 17);
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].id(), "call_abc");
  EXPECT_EQ(r->tool_calls[0].name(), "get_weather");
  EXPECT_EQ(r->tool_calls[0].arguments_json(), R"({"city":"Paris"})");
}

TEST(OpenAiChatResponseTest, AzureWithFilterResultsAndTrailingSpaces) {
  absl::StatusOr<ChatResult> r =
      NewOpenAiAdapter(Azure(), "k")->ParseChatResponse(ReadTestdata("azure_chat.json"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "The capital of France is");
  EXPECT_EQ(r->finish.reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r->finish.input_tokens, 13);
  EXPECT_EQ(r->finish.output_tokens, 5);
}

TEST(OpenAiChatResponseTest, MissingUsageIsNotReported) {
  absl::StatusOr<ChatResult> r = NewOpenAiAdapter(Compat(config::v1::COMPAT_FLAVOR_OLLAMA), "")
                                     ->ParseChatResponse(ReadTestdata("ollama_chat_no_usage.json"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Sure.");
  EXPECT_FALSE(r->finish.usage_reported);
  EXPECT_EQ(r->finish.input_tokens, 0);
}

TEST(OpenAiChatResponseTest, MalformedBodies) {
  std::unique_ptr<ProviderAdapter> adapter = NewOpenAiAdapter(OpenAi(), "k");
  for (std::string_view body :
       {std::string_view(""), std::string_view("not json"),
        std::string_view(R"({"choices":[{"index":0,"message":{"content":"x"})"),
        std::string_view(R"({"choices":[]})"), std::string_view(R"({"choices":"nope"})"),
        std::string_view(R"({"choices":[{"index":0,"message":{"content":5}}]})"),
        std::string_view(R"({"choices":[{"index":0,"message":{"content":"x"}}]}})")}) {
    absl::StatusOr<ChatResult> r = adapter->ParseChatResponse(body);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << body;
    EXPECT_THAT(r.status().message(), HasSubstr("malformed")) << body;
  }
}

TEST(OpenAiChatResponseTest, ErrorBodyWithStatus200) {
  absl::StatusOr<ChatResult> r =
      NewOpenAiAdapter(OpenAi(), "k")
          ->ParseChatResponse(
              R"({"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}})");
  ASSERT_FALSE(r.ok());
  std::optional<ProviderError> error = ProviderErrorFromStatus(r.status());
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "rate_limit_exceeded");
}

TEST(OpenAiEmbedResponseTest, VectorsInIndexOrder) {
  for (const char* file : {"openai_embeddings.json", "openai_embeddings_base64.json"}) {
    SCOPED_TRACE(file);
    absl::StatusOr<EmbedResult> r =
        NewOpenAiAdapter(OpenAi(), "k")->ParseEmbedResponse(ReadTestdata(file));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->vectors.size(), 2u);
    EXPECT_THAT(r->vectors[0], ElementsAre(0.0023064255f, -0.009327292f, 1.0f));
    EXPECT_THAT(r->vectors[1], ElementsAre(0.5f, -1.25f, 0.03f));
    EXPECT_EQ(r->input_tokens, 8);
    EXPECT_EQ(r->model, "text-embedding-3-small");
  }
}

TEST(OpenAiEmbedResponseTest, BadIndexesAreMalformed) {
  std::unique_ptr<ProviderAdapter> adapter = NewOpenAiAdapter(OpenAi(), "k");
  for (std::string_view body : {
           R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})",
           R"({"data":[{"index":2,"embedding":[1]}]})",
           R"({"data":[{"index":0,"embedding":"!!notbase64"}]})",
           R"({"data":[{"index":0,"embedding":[1,"x"]}]})",
       }) {
    EXPECT_EQ(adapter->ParseEmbedResponse(body).status().code(), absl::StatusCode::kInternal)
        << body;
  }
}

// One row of the classification table.
struct ErrorCase {
  const char* name;
  int status;
  std::string body;
  ProviderErrorClass expected;
  std::string type;
  std::string code;
  std::string message_part;  // expected substring of the message ("" = message must be empty)
  int64_t retry_after_ms = 0;
};

TEST(OpenAiErrorTest, ClassificationTable) {
  const std::vector<ErrorCase> cases = {
      {"openai 400 context", 400,
       R"({"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
       ProviderErrorClass::kInvalidRequest, "invalid_request_error", "context_length_exceeded",
       "maximum context length"},
      {"openai 400 unsupported", 400,
       R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})",
       ProviderErrorClass::kInvalidRequest, "invalid_request_error", "unsupported_parameter",
       "Unsupported parameter"},
      {"openai 404", 404,
       R"({"error":{"message":"The model `gpt-4o-2024-11-20` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})",
       ProviderErrorClass::kNotFound, "invalid_request_error", "model_not_found", "does not exist"},
      {"openai 429 rate", 429,
       R"({"error":{"message":"Rate limit reached for o4-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 162960, Requested 42288. Please try again in 1.574s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
       ProviderErrorClass::kRateLimited, "tokens", "rate_limit_exceeded", "Rate limit reached",
       1574},
      {"openai 429 quota", 429,
       R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
       ProviderErrorClass::kQuotaExhausted, "insufficient_quota", "insufficient_quota",
       "exceeded your current quota"},
      {"openai 403", 403,
       R"({"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":"unsupported_country_region_territory"}})",
       ProviderErrorClass::kAuth, "request_forbidden", "unsupported_country_region_territory",
       "not supported"},
      {"openai 500", 500,
       R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
       ProviderErrorClass::kServer, "server_error", "", "server had an error"},
      {"openai 503", 503,
       R"({"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}})",
       ProviderErrorClass::kOverloaded, "server_error", "", "overloaded"},
      {"402", 402, "", ProviderErrorClass::kQuotaExhausted, "", "", ""},
      {"408", 408, "", ProviderErrorClass::kServer, "", "", ""},
      {"409", 409, "", ProviderErrorClass::kServer, "", "", ""},
      {"413", 413, "", ProviderErrorClass::kInvalidRequest, "", "", ""},
      {"422", 422, "", ProviderErrorClass::kInvalidRequest, "", "", ""},
      {"azure 401", 401,
       R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})",
       ProviderErrorClass::kAuth, "", "401", "Access denied"},
      {"azure 404", 404,
       R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})",
       ProviderErrorClass::kNotFound, "", "DeploymentNotFound", "deployment for this resource"},
      {"azure 429", 429,
       R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-08-01-preview have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 86400 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}})",
       ProviderErrorClass::kRateLimited, "", "429", "exceeded token rate limit", 86'400'000},
      {"azure 400 content filter", 400,
       R"({"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}})",
       ProviderErrorClass::kInvalidRequest, "", "content_filter", "content management policy"},
      {"vllm 400", 400,
       R"({"error":{"message":"max_tokens must be at least 1, got 0.","type":"BadRequestError","param":null,"code":400}})",
       ProviderErrorClass::kInvalidRequest, "BadRequestError", "400", "max_tokens must be"},
      {"vllm old flat 404", 404,
       R"({"object":"error","message":"The model `llama` does not exist.","type":"NotFoundError","param":null,"code":404})",
       ProviderErrorClass::kNotFound, "NotFoundError", "404", "does not exist"},
      {"llama.cpp 503 loading", 503,
       R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})",
       ProviderErrorClass::kOverloaded, "unavailable_error", "503", "Loading model"},
      {"llama.cpp 501", 501,
       R"({"error":{"code":501,"message":"This server does not support embeddings.","type":"not_supported_error"}})",
       ProviderErrorClass::kServer, "not_supported_error", "501", "does not support"},
      {"ollama 404", 404,
       R"({"error":{"message":"model \"llama9\" not found, try pulling it first","type":"not_found_error","param":null,"code":null}})",
       ProviderErrorClass::kNotFound, "not_found_error", "", "not found, try pulling"},
      {"ollama native string error", 500, R"({"error":"something went wrong"})",
       ProviderErrorClass::kServer, "", "", "something went wrong"},
      {"empty 502", 502, "", ProviderErrorClass::kServer, "", "", ""},
      {"html 502", 502,
       "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n</body></html>",
       ProviderErrorClass::kServer, "", "", "<head><title>502 Bad Gateway</title></head> <body>"},
      {"text 429", 429, "Too Many Requests", ProviderErrorClass::kRateLimited, "", "",
       "Too Many Requests"},
      {"json but not an error", 500, R"({"object":"chat.completion"})", ProviderErrorClass::kServer,
       "", "", "chat.completion"},
      {"unknown status", 302, "", ProviderErrorClass::kUnknown, "", "", ""},
  };
  std::unique_ptr<ProviderAdapter> adapter = NewOpenAiAdapter(OpenAi(), "sk-test");
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    ProviderError e = adapter->ParseError(c.status, c.body);
    EXPECT_EQ(e.error_class, c.expected);
    EXPECT_EQ(e.http_status, c.status);
    EXPECT_EQ(e.type, c.type);
    EXPECT_EQ(e.code, c.code);
    if (c.message_part.empty()) {
      EXPECT_EQ(e.message, "");
    } else {
      EXPECT_THAT(e.message, HasSubstr(c.message_part));
    }
    EXPECT_EQ(e.retry_after_ms, c.retry_after_ms);
  }
}

TEST(OpenAiErrorTest, KeysAreRedacted) {
  std::unique_ptr<ProviderAdapter> adapter = NewOpenAiAdapter(OpenAi(), "sk-proj-REALKEY1234");
  ProviderError e = adapter->ParseError(
      401,
      R"({"error":{"message":"Incorrect API key provided: sk-VKMIs***…wjh3. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})");
  EXPECT_EQ(e.error_class, ProviderErrorClass::kAuth);
  EXPECT_EQ(e.message,
            "Incorrect API key provided: sk-***. You can find your API key at "
            "https://platform.openai.com/account/api-keys.");

  // Our own key echoed verbatim, whatever its shape, is masked too.
  std::unique_ptr<ProviderAdapter> azure = NewOpenAiAdapter(Azure(), "0123456789abcdefAZURE");
  e = azure->ParseError(401,
                        R"({"error":{"code":"401","message":"bad key 0123456789abcdefAZURE!"}})");
  EXPECT_EQ(e.message, "bad key ***!");
}

TEST(OpenAiErrorTest, LongMessagesAreTruncatedOnCharacterBoundary) {
  std::string message;
  for (int i = 0; i < 400; ++i) message += "ж";  // 2 bytes each
  const std::string body = R"({"error":{"message":"x)" + message + R"(","type":"t"}})";
  ProviderError e = NewOpenAiAdapter(OpenAi(), "")->ParseError(400, body);
  EXPECT_LE(e.message.size(), openai_internal::kMaxMessageBytes);
  EXPECT_GE(e.message.size(), openai_internal::kMaxMessageBytes - 1);
  // "x" then whole two-byte characters only.
  EXPECT_EQ((e.message.size() - 1) % 2, 0u);
}

TEST(OpenAiErrorTest, StatusCarriesTheClass) {
  ProviderError e =
      NewOpenAiAdapter(OpenAi(), "")
          ->ParseError(
              429,
              R"({"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}})");
  absl::Status status = ProviderErrorStatus(e);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  std::optional<ProviderError> back = ProviderErrorFromStatus(status);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->error_class, ProviderErrorClass::kRateLimited);
  EXPECT_EQ(back->code, "rate_limit_exceeded");
}

// Found by tests/fuzz (corpus/openai/crash_invalid_utf8_in_stream_error): a provider's error text
// is untrusted bytes; invalid UTF-8 in it must not cost the status its ProviderError detail.
TEST(OpenAiErrorTest, InvalidUtf8KeepsTheErrorDetail) {
  ProviderError e;
  e.error_class = ProviderErrorClass::kServer;
  e.http_status = 500;
  e.type = "server\xff_error";
  e.message = "bad \xC0\xAF \xED\xA0\x80 byte \xF4\x90\x80\x80 ok \xE2\x82\xAC";
  std::optional<ProviderError> back = ProviderErrorFromStatus(ProviderErrorStatus(e));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->error_class, ProviderErrorClass::kServer);
  EXPECT_EQ(back->type, "server\xEF\xBF\xBD_error");
  // Overlong, surrogate and out-of-range sequences replaced byte by byte; the euro sign kept.
  EXPECT_EQ(back->message,
            "bad \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD byte "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD ok \xE2\x82\xAC");
}

TEST(OpenAiInternalTest, SanitizeMessage) {
  using openai_internal::SanitizeMessage;
  EXPECT_EQ(SanitizeMessage("task-force sk-abc123, and (sk-proj-x_y-z)", "", 512),
            "task-force sk-***, and (sk-***)");
  EXPECT_EQ(SanitizeMessage("key: sk-", "", 512), "key: sk-***");
  EXPECT_EQ(SanitizeMessage("short key ab", "ab", 512), "short key ab");
  EXPECT_EQ(SanitizeMessage("abcdef", "", 3), "abc");
}

TEST(OpenAiInternalTest, RetryDelayFromMessage) {
  using openai_internal::RetryDelayFromMessage;
  EXPECT_EQ(RetryDelayFromMessage("Please try again in 1.574s. Visit"), 1574);
  EXPECT_EQ(RetryDelayFromMessage("Please try again in 20ms."), 20);
  EXPECT_EQ(RetryDelayFromMessage("Please try again in 6m0s."), 360'000);
  EXPECT_EQ(RetryDelayFromMessage("Please retry after 7 seconds."), 7000);
  EXPECT_EQ(RetryDelayFromMessage("Please try again later"), 0);
  EXPECT_EQ(RetryDelayFromMessage(""), 0);
}

TEST(OpenAiInternalTest, FinishReasons) {
  using openai_internal::MapFinishReason;
  EXPECT_EQ(MapFinishReason("stop"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(MapFinishReason("length"), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(MapFinishReason("content_filter"), v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(MapFinishReason("tool_calls"), v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(MapFinishReason("function_call"), v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(MapFinishReason("eos"), v1::FINISH_REASON_OTHER);
  EXPECT_EQ(MapFinishReason(""), v1::FINISH_REASON_UNSPECIFIED);
}

// What routing may count on per provider (docs/tools.md, "Which targets serve what").
TEST(ProviderFeaturesTest, ByKindAndFlavor) {
  EXPECT_TRUE(FeaturesOf(OpenAi()).Supports(v1::REQUEST_FEATURE_JSON_SCHEMA));
  EXPECT_TRUE(FeaturesOf(Azure()).Supports(v1::REQUEST_FEATURE_IMAGES));
  config::v1::Provider anthropic = OpenAi();
  anthropic.set_kind(config::v1::PROVIDER_KIND_ANTHROPIC);
  EXPECT_TRUE(FeaturesOf(anthropic).Supports(v1::REQUEST_FEATURE_TOOL_RESULTS));
  EXPECT_FALSE(FeaturesOf(anthropic).Supports(v1::REQUEST_FEATURE_JSON_OBJECT));
  EXPECT_FALSE(
      FeaturesOf(Compat(config::v1::COMPAT_FLAVOR_LLAMA_CPP)).Supports(v1::REQUEST_FEATURE_IMAGES));
  EXPECT_TRUE(
      FeaturesOf(Compat(config::v1::COMPAT_FLAVOR_OLLAMA)).Supports(v1::REQUEST_FEATURE_TOOLS));
  const ProviderFeatures generic = FeaturesOf(Compat(config::v1::COMPAT_FLAVOR_UNSPECIFIED));
  EXPECT_FALSE(generic.Supports(v1::REQUEST_FEATURE_TOOLS));
  EXPECT_FALSE(generic.Supports(v1::REQUEST_FEATURE_IMAGES));
  EXPECT_TRUE(generic.Supports(v1::REQUEST_FEATURE_UNSPECIFIED));
  EXPECT_EQ(FeatureName(v1::REQUEST_FEATURE_TOOLS), "tools");
}

}  // namespace
}  // namespace turnpike
