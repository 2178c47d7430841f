// Classification end to end (docs/classification.md): the real gateway and fake provider, in
// each provider format. The fake answers a classification with the first label (as JSON text for
// a JSON Schema response format, as the forced `classify` tool's arguments for Anthropic), and
// its model fake-bad-labels answers outside the labels: one such answer is retried on the next
// target, two end the request with UNAVAILABLE (ANSWER_NOT_A_LABEL).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/classification.grpc.pb.h"

namespace turnpike::testing {
namespace {

using v1::ClassificationService;
using v1::ClassifyRequest;
using v1::ClassifyResponse;

std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port);
  std::string routes;
  // Per format: a good target; a bad one then a good one (retried); two bad ones then a good
  // one (the third is never asked).
  const std::vector<std::pair<std::string, std::string>> formats = {
      {"openai", "gpt-4o-mini"}, {"anthropic", "claude-haiku-4-5"}, {"gemini", "gemini-2.5-flash"}};
  for (const auto& [provider, model] : formats) {
    auto target = [&, p = provider](const std::string& m) {
      return absl::StrCat(R"({"provider":")", p, R"(","model":")", m, R"("})");
    };
    const std::string bad = target("fake-bad-labels");
    absl::StrAppend(
        &routes, R"({"capability":")", provider,
        R"(","task":"ROUTE_TASK_CLASSIFICATION","allowUnauthenticated":true,"targets":[)",
        target(model), "]},");
    absl::StrAppend(
        &routes, R"({"capability":"retry-)", provider,
        R"(","task":"ROUTE_TASK_CLASSIFICATION","allowUnauthenticated":true,"targets":[)", bad, ",",
        target(model), "]},");
    absl::StrAppend(
        &routes, R"({"capability":"bad-)", provider,
        R"(","task":"ROUTE_TASK_CLASSIFICATION","allowUnauthenticated":true,"targets":[)", bad, ",",
        bad, ",", target(model), "]},");
  }
  return absl::StrCat(R"({"version":"classify-1","providers":[
    {"name":"openai","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"anthropic","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"gemini","kind":"PROVIDER_KIND_GEMINI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"}
  ],"routes":[)",
                      routes, R"(
    {"capability":"plain","targets":[{"provider":"openai","model":"gpt-4o-mini"}],"allowUnauthenticated":true}
  ]})");
}

// How the classification looks on each provider's wire (in /_fake/requests, whose bodies are
// JSON strings, hence the escaped quotes): a JSON Schema response format, or the forced tool.
std::vector<std::string> ExpectedOnWire(const std::string& format) {
  if (format == "anthropic") {
    return {R"(\"tool_choice\":{\"type\":\"tool\",\"name\":\"classify\"})",
            R"(\"enum\":[\"billing\",\"shipping\",\"other\"])"};
  }
  if (format == "gemini") {
    return {R"(\"responseJsonSchema\":{)", R"(\"enum\":[\"billing\",\"shipping\",\"other\"])"};
  }
  return {R"(\"type\":\"json_schema\")", R"(\"enum\":[\"billing\",\"shipping\",\"other\"])"};
}

class Classification : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=5"});
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    gateway_ = std::make_unique<Gateway>(dir_, Config(fake_->port()), std::vector<std::string>{},
                                         std::map<std::string, std::string>{});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    stub_ = ClassificationService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  static ClassifyRequest Request(const std::string& capability) {
    ClassifyRequest request;
    request.set_capability(capability);
    request.set_text("I was charged twice for my order");
    for (const char* name : {"billing", "shipping", "other"}) {
      v1::Label* label = request.add_labels();
      label->set_name(name);
      label->set_description(absl::StrCat("about ", name));
    }
    return request;
  }

  grpc::Status Classify(const ClassifyRequest& request, ClassifyResponse* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->Classify(&ctx, request, response);
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<ClassificationService::Stub> stub_;
};

TEST_P(Classification, AnswersWithALabelOnly) {
  ClassifyResponse response;
  grpc::Status status = Classify(Request(GetParam()), &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << gateway_->process().Log();
  EXPECT_EQ(response.label(), "billing");
  ASSERT_EQ(response.labels_size(), 1);
  EXPECT_EQ(response.labels(0), "billing");
  EXPECT_EQ(response.start().provider(), GetParam());
  EXPECT_GT(response.finish().usage().input_tokens(), 0);
  ASSERT_EQ(response.finish().attempts_size(), 1);
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  ASSERT_EQ(seen.status, 200);
  for (const std::string& expected : ExpectedOnWire(GetParam())) {
    EXPECT_NE(seen.body.find(expected), std::string::npos) << expected << "\n" << seen.body;
  }
}

TEST_P(Classification, AnAnswerOutsideTheLabelsIsRetriedOnTheNextTarget) {
  ClassifyResponse response;
  grpc::Status status = Classify(Request("retry-" + GetParam()), &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << gateway_->process().Log();
  EXPECT_EQ(response.label(), "billing");
  EXPECT_NE(response.start().model(), "fake-bad-labels");
  ASSERT_EQ(response.finish().attempts_size(), 2);
  EXPECT_EQ(response.finish().attempts(0).model(), "fake-bad-labels");
  EXPECT_EQ(response.finish().attempts(0).outcome(), "UNAVAILABLE");
  // The model's answer is never echoed.
  EXPECT_EQ(response.finish().attempts(0).detail().find("not-a-label"), std::string::npos);
}

TEST_P(Classification, TwoAnswersOutsideTheLabelsEndTheRequest) {
  ClassifyResponse response;
  grpc::Status status = Classify(Request("bad-" + GetParam()), &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message() << "\n"
                                                                << gateway_->process().Log();
  EXPECT_NE(status.error_message().find("not a label"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_details().find("ANSWER_NOT_A_LABEL"), std::string::npos);
  // The route's third (good) target was never asked: two answers, then the error.
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  ASSERT_EQ(seen.status, 200);
  size_t requests = 0;
  for (size_t at = seen.body.find("Classify the user"); at != std::string::npos;
       at = seen.body.find("Classify the user", at + 1)) {
    ++requests;
  }
  EXPECT_EQ(requests, 2u) << seen.body;
}

INSTANTIATE_TEST_SUITE_P(EachFormat, Classification,
                         ::testing::Values("openai", "anthropic", "gemini"),
                         [](const auto& info) { return info.param; });

class ClassificationInput : public Classification {};

TEST_F(ClassificationInput, ACapabilityThatIsNotAClassificationIsRefused) {
  ClassifyResponse response;
  grpc::Status status = Classify(Request("plain"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("\"plain\" is not a classification"), std::string::npos)
      << status.error_message();
}

TEST_F(ClassificationInput, BadLabelsAndTextAreNamed) {
  struct Case {
    std::string field;
    std::function<void(ClassifyRequest&)> spoil;
  };
  const std::vector<Case> cases = {
      {"text", [](ClassifyRequest& r) { r.clear_text(); }},
      {"labels", [](ClassifyRequest& r) { r.clear_labels(); }},
      {"labels[1].name", [](ClassifyRequest& r) { r.mutable_labels(1)->set_name("billing"); }},
      {"labels[2].name", [](ClassifyRequest& r) { r.mutable_labels(2)->clear_name(); }},
      {"labels",
       [](ClassifyRequest& r) {
         for (int i = 0; i < 300; ++i) r.add_labels()->set_name(absl::StrCat("l", i));
       }},
  };
  for (const Case& c : cases) {
    ClassifyRequest request = Request("openai");
    c.spoil(request);
    ClassifyResponse response;
    grpc::Status status = Classify(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_NE(status.error_details().find(c.field), std::string::npos)
        << c.field << ": " << status.error_message();
  }
}

}  // namespace
}  // namespace turnpike::testing
