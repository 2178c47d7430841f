// Classification as a completion (server/exchange/classification.h) on a fake transport and a
// simulated clock: the labels' checks, how a reply is read back into labels, the JSON Schema form
// and the forced tool call each target gets, and the driver's one retry of an answer outside the
// labels (the next target), then the error (docs/classification.md).
#include "server/exchange/classification.h"

#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/exchange/chat_exchange.h"
#include "tests/mocks/fake_transport.h"

namespace turnpike {
namespace {

using DataResult = TransferHandler::DataResult;

v1::ClassifyRequest Request(bool multi = false) {
  v1::ClassifyRequest r;
  r.set_capability("r");
  r.set_text("I was charged twice");
  for (const char* name : {"billing", "shipping", "other"}) r.add_labels()->set_name(name);
  r.set_multi_label(multi);
  return r;
}

ChatResult Text(const std::string& text) {
  ChatResult reply;
  reply.text = text;
  return reply;
}

std::string FieldOf(const absl::Status& status) {
  std::optional<google::rpc::BadRequest> bad = GetDetail<google::rpc::BadRequest>(status);
  return bad.has_value() && bad->field_violations_size() > 0 ? bad->field_violations(0).field()
                                                             : "";
}

TEST(ClassificationLabelsTest, BadInputIsNamed) {
  EXPECT_TRUE(ValidateClassifyLabels(Request()).ok());
  v1::ClassifyRequest r = Request();
  r.clear_text();
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "text");
  r = Request();
  r.clear_labels();
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "labels");
  r = Request();
  r.mutable_labels(2)->set_name("billing");
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "labels[2].name");
  r = Request();
  r.mutable_labels(1)->clear_name();
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "labels[1].name");
  r = Request();
  r.mutable_labels(0)->set_description(std::string(kMaxLabelDescriptionBytes + 1, 'x'));
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "labels[0].description");
  r = Request();
  while (r.labels_size() < kMaxClassifyLabels)
    r.add_labels()->set_name(absl::StrCat("l", r.labels_size()));
  EXPECT_TRUE(ValidateClassifyLabels(r).ok());
  r.add_labels()->set_name("one-too-many");
  EXPECT_EQ(ValidateClassifyLabels(r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(ValidateClassifyLabels(r)), "labels");
}

TEST(ClassificationAnswerTest, OnlyLabelsOfTheRequestAreAccepted) {
  auto labels = ReadLabels(Request(), Text(R"({"labels":["shipping"]})"));
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels, std::vector<std::string>{"shipping"});
  // Several, in the request's order, only with multi_label.
  labels = ReadLabels(Request(/*multi=*/true), Text(R"({"labels":["other","billing"]})"));
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels, (std::vector<std::string>{"billing", "other"}));
  for (const char* bad : {R"({"labels":["other","billing"]})", R"({"labels":["refund"]})",
                          R"({"labels":[]})", R"({"label":"billing"})", "billing",
                          R"({"labels":["billing","billing"]})", R"({"labels":[1]})"}) {
    absl::Status s = ReadLabels(Request(), Text(bad)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << bad;
    std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(s);
    ASSERT_TRUE(info.has_value()) << bad;
    EXPECT_EQ(info->reason(), "ANSWER_NOT_A_LABEL");
    // The model's words never reach the caller.
    EXPECT_EQ(s.message().find("refund"), absl::string_view::npos);
  }
  // A forced tool call's arguments are read instead of the text.
  ChatResult call;
  v1::ToolCall& c = call.tool_calls.emplace_back();
  c.set_name(kClassifyToolName);
  c.set_arguments_json(R"({"labels":["other"]})");
  labels = ReadLabels(Request(), call);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels, std::vector<std::string>{"other"});
}

TEST(ClassificationPlanTest, TheSchemaIsAnEnumOfTheLabels) {
  v1::ClassifyRequest r = Request();
  r.mutable_labels(0)->set_description("money matters");
  r.set_instructions("Be brief.");
  std::unique_ptr<ClassificationPlan> plan = PlanClassification(r);
  const v1::StreamCompletionRequest& c = plan->completion;
  ASSERT_EQ(c.messages_size(), 2);
  EXPECT_EQ(c.messages(0).role(), v1::ROLE_SYSTEM);
  EXPECT_EQ(c.messages(0).content().rfind("Be brief.", 0), 0u);
  EXPECT_NE(c.messages(0).content().find("- billing: money matters\n"), std::string::npos);
  EXPECT_EQ(c.messages(1).content(), "I was charged twice");
  EXPECT_EQ(c.response_format().type(), v1::RESPONSE_FORMAT_TYPE_JSON_SCHEMA);
  EXPECT_TRUE(c.response_format().strict());
  EXPECT_EQ(c.response_format().json_schema(),
            R"({"type":"object","properties":{"labels":{"type":"array","items":{"type":"string",)"
            R"("enum":["billing","shipping","other"]},"minItems":1,"maxItems":1}},)"
            R"("required":["labels"],"additionalProperties":false})");
  ASSERT_EQ(plan->tools.size(), 1);
  EXPECT_EQ(plan->tools[0].parameters_json(), c.response_format().json_schema());
}

// The driver's side: a classification served through ChatExchange on a fake transport.
class ClassificationExchangeTest : public ::testing::Test {
 protected:
  // Providers a and b (vLLM: JSON Schema output) and c (Anthropic: the forced tool call).
  void Load(const std::string& targets) {
    const std::string json = absl::StrCat(R"({"version":"v1","providers":[
      {"name":"a","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":"http://a.test/v1"},
      {"name":"b","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":"http://b.test/v1"},
      {"name":"c","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":"http://c.test","apiKeyEnv":"K"}],
      "routes":[{"capability":"r","task":"ROUTE_TASK_CLASSIFICATION","targets":[)",
                                          targets, R"(],"retry":{"maxAttempts":3}}]})");
    auto snapshot = ParseSnapshotJson(json);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    auto config = RuntimeConfig::Build(
        *snapshot, [](const std::string&) { return std::string("key"); }, resilience_);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    ASSERT_TRUE(config_->FindRoute("r")->classification);
  }

  void Start() {
    plan_ = PlanClassification(request_);
    ExchangeRequest r;
    r.config = config_;
    r.route = config_->FindRoute("r");
    r.method = RequestMethod::kClassify;
    r.request_id = "req-1";
    r.accepted = clock_.MonotonicNow();
    r.accepted_wall = clock_.Now();
    exchange_ =
        ChatExchange::Create(std::move(r), ClassificationChat(request_, *plan_),
                             /*stream=*/false, &listener_, transport_, resilience_, nullptr);
    exchange_->Start();
    transport_.RunPending();
  }

  // The newest transfer answers an OpenAI-shaped reply with `content`.
  void Answer(const std::string& content) {
    const auto id = transport_.last().id;
    transport_.Respond(id, 200);
    const std::string body = absl::StrCat(
        R"({"choices":[{"index":0,"message":{"role":"assistant","content":)", JsonQuote(content),
        R"(},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4}})");
    EXPECT_EQ(transport_.Send(id, body), DataResult::kContinue);
    transport_.Finish(id);
    transport_.RunPending();
  }
  static std::string JsonQuote(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "\"";
  }
  std::string HostOf(const FakeTransport::Transfer& t) {
    return t.request.url.substr(0, t.request.url.find(".test"));
  }

  class Listener : public ChatListener {
   public:
    void OnCommit(const v1::CompletionStart& s) override { start = s; }
    void OnText(std::string_view t) override { reply.text.append(t); }
    void OnToolCall(const ToolCallFragment& f) override {
      v1::ToolCall& call = reply.tool_calls.emplace_back();
      call.set_name(std::string(f.name));
      call.set_arguments_json(std::string(f.arguments));
    }
    bool Congested() override { return false; }
    void OnDone(const absl::Status& s, const v1::CompletionFinish& f) override {
      ++done;
      status = s;
      finish = f;
    }
    v1::CompletionStart start;
    ChatResult reply;
    int done = 0;
    absl::Status status;
    v1::CompletionFinish finish;
  };

  SimulatedClock clock_;
  std::mt19937_64 gen_{7};
  Resilience resilience_{Resilience::Options(), clock_, gen_};
  FakeTransport transport_{clock_};
  Listener listener_;
  std::shared_ptr<const RuntimeConfig> config_;
  v1::ClassifyRequest request_ = Request();
  std::unique_ptr<ClassificationPlan> plan_;
  std::shared_ptr<ChatExchange> exchange_;
};

TEST_F(ClassificationExchangeTest, AnAnswerOutsideTheLabelsGoesToTheNextTargetOnce) {
  Load(R"({"provider":"a","model":"m"},{"provider":"b","model":"m"})");
  Start();
  EXPECT_NE(transport_.last().request.body.find(R"("type":"json_schema")"), std::string::npos);
  Answer(R"({"labels":["refund"]})");
  ASSERT_EQ(transport_.started(), 2);
  EXPECT_EQ(HostOf(transport_.last()), "http://b");
  EXPECT_EQ(listener_.done, 0) << "nothing reaches the caller before a valid answer";
  Answer(R"({"labels":["shipping"]})");
  ASSERT_EQ(listener_.done, 1);
  ASSERT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.start.provider(), "b");
  EXPECT_EQ(*ReadLabels(request_, listener_.reply), std::vector<std::string>{"shipping"});
  ASSERT_EQ(listener_.finish.attempts_size(), 2);
  EXPECT_EQ(listener_.finish.attempts(0).disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
}

TEST_F(ClassificationExchangeTest, ALoneTargetIsAskedTwiceThenTheRequestFails) {
  Load(R"({"provider":"a","model":"m"})");
  Start();
  Answer("not json at all");
  // The same target, after the route's backoff.
  transport_.Advance(absl::Seconds(30));
  ASSERT_EQ(transport_.started(), 2);
  EXPECT_EQ(HostOf(transport_.last()), "http://a");
  Answer(R"({"labels":["billing","other"]})");  // two labels without multi_label
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable) << listener_.status;
  std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(listener_.status);
  ASSERT_TRUE(info.has_value()) << listener_.status;
  EXPECT_EQ(info->reason(), "ANSWER_NOT_A_LABEL");
}

TEST_F(ClassificationExchangeTest, TwoBadAnswersEndTheRequestWhateverTargetsRemain) {
  Load(R"({"provider":"a","model":"m"},{"provider":"b","model":"m"},{"provider":"c","model":"m"})");
  Start();
  Answer(R"({"labels":["refund"]})");
  Answer(R"({"labels":["refund"]})");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(transport_.started(), 2) << "the third target is not asked";
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable) << listener_.status;
}

TEST_F(ClassificationExchangeTest, ATargetWithoutJsonSchemaGetsTheForcedToolCall) {
  Load(R"({"provider":"c","model":"claude"})");
  Start();
  ASSERT_EQ(transport_.started(), 1);
  const std::string& body = transport_.last().request.body;
  EXPECT_NE(body.find(R"("tool_choice":{"type":"tool","name":"classify"})"), std::string::npos)
      << body;
  EXPECT_EQ(body.find("json_schema"), std::string::npos) << body;
  const auto id = transport_.last().id;
  transport_.Respond(id, 200);
  transport_.Send(id, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude",)"
                      R"("content":[{"type":"tool_use","id":"toolu_1","name":"classify",)"
                      R"("input":{"labels":["other"]}}],"stop_reason":"tool_use",)"
                      R"("usage":{"input_tokens":20,"output_tokens":5}})");
  transport_.Finish(id);
  transport_.RunPending();
  ASSERT_EQ(listener_.done, 1);
  ASSERT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(*ReadLabels(request_, listener_.reply), std::vector<std::string>{"other"});
}

}  // namespace
}  // namespace turnpike
