// Tool calling end to end (docs/tools.md): the real gateway and fake provider, one conversation
// per provider format: a request offering tools gets a tool call streamed in fragments (its
// arguments reach the client byte for byte as the provider wrote them), the tool's result goes
// back, and the model's final answer follows.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

using v1::CompletionService;
using v1::StreamCompletionRequest;
using v1::StreamCompletionResponse;

// The fake provider's tool-call arguments (tools/fake_provider/README.md, "Tool calls").
constexpr char kFakeArguments[] =
    R"({"city": "Paris", "unit": "celsius", "note": "say \"hi\" \u00e9 👋"})";

std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port);
  return absl::StrCat(R"({"version":"tools-1","providers":[
    {"name":"openai","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"azure","kind":"PROVIDER_KIND_AZURE_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY","apiVersion":"2024-10-21"},
    {"name":"vllm","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":")",
                      base, R"(/vllm/v1"},
    {"name":"ollama","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_OLLAMA","baseUrl":")",
                      base, R"(/ollama/v1"},
    {"name":"anthropic","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"gemini","kind":"PROVIDER_KIND_GEMINI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"generic","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":")",
                      base, R"(/vllm/v1"}
  ],"routes":[
    {"capability":"mixed","targets":[{"provider":"generic","model":"local"},{"provider":"openai","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"generic-only","targets":[{"provider":"generic","model":"local"}],"allowUnauthenticated":true},
    {"capability":"generic-with-tools","targets":[{"provider":"generic","model":"local","features":{"tools":true}},{"provider":"openai","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"anthropic","targets":[{"provider":"anthropic","model":"claude-haiku-4-5"}],"allowUnauthenticated":true},
    {"capability":"gemini","targets":[{"provider":"gemini","model":"gemini-2.5-flash"}],"allowUnauthenticated":true},
    {"capability":"openai","targets":[{"provider":"openai","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"azure","targets":[{"provider":"azure","model":"my-gpt4o-deployment"}],"allowUnauthenticated":true},
    {"capability":"vllm","targets":[{"provider":"vllm","model":"meta-llama/Llama-3.1-8B-Instruct"}],"allowUnauthenticated":true},
    {"capability":"ollama","targets":[{"provider":"ollama","model":"llama3.2"}],"allowUnauthenticated":true}
  ]})");
}

// What the fake's call looks like through each format: Gemini sends no id, so the gateway makes
// one from the call's position; the arguments are the same bytes everywhere.
std::string ExpectedId(const std::string& capability) {
  return capability == "gemini" ? "call_0" : "call_fake_0";
}

// How the second turn's tool result looks on the provider's wire (in /_fake/requests, whose
// bodies are JSON strings, hence the escaped quotes).
std::vector<std::string> ExpectedResultOnWire(const std::string& capability) {
  if (capability == "anthropic") {
    return {R"(\"type\":\"tool_result\")", R"(\"tool_use_id\":\"call_fake_0\")",
            R"(\"type\":\"tool_use\")"};
  }
  if (capability == "gemini") {
    return {R"(\"functionResponse\":{\"name\":\"get_weather\")", R"(\"temperature_c\": 21)",
            R"(\"functionCall\":{\"name\":\"get_weather\")"};
  }
  return {R"(\"tool_call_id\":\"call_fake_0\")", R"(\"role\":\"tool\")"};
}

struct StreamResult {
  grpc::Status status;
  std::vector<StreamCompletionResponse> messages;
};

class ToolConversation : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=5"});
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    gateway_ = std::make_unique<Gateway>(dir_, Config(fake_->port()), std::vector<std::string>{},
                                         std::map<std::string, std::string>{});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    stub_ = CompletionService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  StreamCompletionRequest FirstTurn() const {
    StreamCompletionRequest request;
    request.set_capability(GetParam());
    v1::Message* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content("what is the weather in Paris");
    v1::Tool* tool = request.add_tools();
    tool->set_name("get_weather");
    tool->set_description("Current weather for a city");
    tool->set_parameters_json(R"({"type":"object","properties":{"city":{"type":"string"}}})");
    return request;
  }

  StreamResult Stream(const StreamCompletionRequest& request) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    StreamResult result;
    auto reader = stub_->StreamCompletion(&ctx, request);
    StreamCompletionResponse response;
    while (reader->Read(&response)) result.messages.push_back(response);
    result.status = reader->Finish();
    return result;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<CompletionService::Stub> stub_;
};

TEST_P(ToolConversation, ToolCallThenResultThenAnswer) {
  // Turn 1: the model calls the tool, streamed in fragments.
  StreamCompletionRequest request = FirstTurn();
  StreamResult first = Stream(request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message() << "\n"
                                 << gateway_->process().Log();
  ASSERT_TRUE(first.messages.front().has_start());
  ASSERT_EQ(first.messages.front().start().features_size(), 1);
  EXPECT_EQ(first.messages.front().start().features(0), v1::REQUEST_FEATURE_TOOLS);
  std::string id, name, arguments;
  int fragments = 0;
  for (const StreamCompletionResponse& m : first.messages) {
    EXPECT_FALSE(m.has_delta()) << "a tool call is not text";
    if (!m.has_tool_call()) continue;
    ++fragments;
    EXPECT_EQ(m.tool_call().index(), 0);
    if (!m.tool_call().id().empty()) {
      EXPECT_TRUE(id.empty()) << "the id comes once";
      id = m.tool_call().id();
      name = m.tool_call().name();
    }
    arguments += m.tool_call().arguments();
  }
  EXPECT_GE(fragments, 1);
  EXPECT_EQ(id, ExpectedId(GetParam()));
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(arguments, kFakeArguments);
  ASSERT_TRUE(first.messages.back().has_finish());
  EXPECT_EQ(first.messages.back().finish().finish_reason(), v1::FINISH_REASON_TOOL_CALLS);

  // Turn 2: the call and its result go back; the model answers in text.
  v1::Message* assistant = request.add_messages();
  assistant->set_role(v1::ROLE_ASSISTANT);
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id(id);
  call->set_name(name);
  call->set_arguments_json(arguments);
  v1::Message* result = request.add_messages();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id(id);
  result->set_content(R"({"temperature_c": 21})");
  StreamResult second = Stream(request);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  std::string text;
  for (const StreamCompletionResponse& m : second.messages) {
    EXPECT_FALSE(m.has_tool_call());
    if (m.has_delta()) text += m.delta().text();
  }
  EXPECT_EQ(text, "Hello from the fake provider");
  EXPECT_EQ(second.messages.back().finish().finish_reason(), v1::FINISH_REASON_STOP);
  ASSERT_EQ(second.messages.front().start().features_size(), 2);
  EXPECT_EQ(second.messages.front().start().features(1), v1::REQUEST_FEATURE_TOOL_RESULTS);

  // What the provider saw on the second turn: the call and the result in its own format.
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  ASSERT_EQ(seen.status, 200);
  for (const std::string& expected : ExpectedResultOnWire(GetParam())) {
    EXPECT_NE(seen.body.find(expected), std::string::npos) << expected << "\n" << seen.body;
  }
}

TEST_P(ToolConversation, UnaryToolCallComesWhole) {
  grpc::ClientContext ctx;
  v1::CompleteRequest request;
  request.ParseFromString(FirstTurn().SerializeAsString());
  v1::CompleteResponse response;
  grpc::Status status = stub_->Complete(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "");
  ASSERT_EQ(response.tool_calls_size(), 1);
  EXPECT_EQ(response.tool_calls(0).id(), ExpectedId(GetParam()));
  EXPECT_EQ(response.tool_calls(0).name(), "get_weather");
  EXPECT_EQ(response.tool_calls(0).arguments_json(), kFakeArguments);
  EXPECT_EQ(response.finish().finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
}

// Capability-aware routing: a generic OpenAI-compatible server (no flavor) may ignore tools, so
// a request with tools skips it, says why in the attempt list, and fails over; plain text still
// goes to it first. With no capable target the request fails before anything goes upstream.
class CapabilityRouting : public ToolConversation {};

TEST_P(CapabilityRouting, FailoverSkipsATargetWithoutToolSupport) {
  StreamCompletionRequest request = FirstTurn();
  request.set_capability("mixed");
  StreamResult r = Stream(request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << gateway_->process().Log();
  EXPECT_EQ(r.messages.front().start().provider(), "openai");
  EXPECT_EQ(r.messages.front().start().fallback_position(), 1);
  const v1::CompletionFinish& finish = r.messages.back().finish();
  ASSERT_EQ(finish.attempts_size(), 2);
  EXPECT_EQ(finish.attempts(0).provider(), "generic");
  EXPECT_EQ(finish.attempts(0).disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
  EXPECT_EQ(finish.attempts(0).outcome(), "FAILED_PRECONDITION");
  EXPECT_NE(finish.attempts(0).reason().find("does not support tools"), std::string::npos)
      << finish.attempts(0).reason();
  EXPECT_EQ(finish.attempts(1).provider(), "openai");
  EXPECT_EQ(finish.attempts(1).disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  EXPECT_EQ(seen.body.find("/vllm/v1/chat/completions"), std::string::npos)
      << "the generic server was called";

  // Without tools the generic server is the primary again.
  request.clear_tools();
  r = Stream(request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.messages.front().start().provider(), "generic");
}

TEST_P(CapabilityRouting, NoCapableTargetIsFailedPreconditionNamingTheFeature) {
  StreamCompletionRequest request = FirstTurn();
  request.set_capability("generic-only");
  StreamResult r = Stream(request);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(r.status.error_message().find("tools"), std::string::npos) << r.status.error_message();
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  EXPECT_EQ(seen.body.find("/vllm/v1/chat/completions"), std::string::npos);
}

// A route may say what a target's model serves beyond its provider kind's defaults.
TEST_P(CapabilityRouting, ATargetOverrideSaysItServesTools) {
  StreamCompletionRequest request = FirstTurn();
  request.set_capability("generic-with-tools");
  StreamResult r = Stream(request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.messages.front().start().provider(), "generic");
  EXPECT_EQ(r.messages.back().finish().finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
}

INSTANTIATE_TEST_SUITE_P(Routes, CapabilityRouting, ::testing::Values("mixed"));

INSTANTIATE_TEST_SUITE_P(EveryFormat, ToolConversation,
                         ::testing::Values("openai", "azure", "vllm", "ollama", "anthropic",
                                           "gemini"));

}  // namespace
}  // namespace turnpike::testing
