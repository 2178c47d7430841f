// A request's latency class end to end (docs/routing.md): a real gateway and fake provider, one
// route whose interactive and batch classes have their own timeouts and chains. Both chains start
// on the same slow upstream (its first byte 3 s late), so only the class's timeout decides whether
// the request waits for it; the models say which chain served.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

using v1::CompletionService;

// The slow upstream's first-byte delay: far beyond the interactive first-token timeout (500 ms)
// and far below the batch one (60 s), so scheduling noise cannot move a request across either.
constexpr int kSlowMs = 3000;

std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port, "/v1");
  return absl::StrCat(R"({"version":"latency-1","providers":[
    {"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"slow","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY",
     "headers":{"x-fake-first-byte-delay-ms":")",
                      kSlowMs, R"("}}
  ],"routes":[
    {"capability":"reports","allowUnauthenticated":true,"retry":{"maxAttemptsPerTarget":1},
     "targets":[{"provider":"slow","model":"gpt-4o-mini"},{"provider":"fake","model":"gpt-4o-mini"}],
     "latencyClasses":{
       "interactive":{"timeouts":{"firstTokenMs":500}},
       "batch":{"timeouts":{"firstTokenMs":60000,"totalMs":600000},
                "targets":[{"provider":"slow","model":"gpt-4.1-nano"},
                           {"provider":"fake","model":"gpt-4.1-nano"}]}}},
    {"capability":"plain","allowUnauthenticated":true,
     "targets":[{"provider":"fake","model":"gpt-4o-mini"}]}
  ]})");
}

class LatencyClassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    gateway_ = std::make_unique<Gateway>(dir_, Config(fake_->port()));
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    stub_ = CompletionService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Complete(const std::string& capability, std::optional<v1::LatencyClass> cls,
                        v1::CompleteResponse* response) {
    v1::CompleteRequest request;
    request.set_capability(capability);
    auto* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content("Summarise the quarter.");
    if (cls.has_value()) request.set_latency_class(*cls);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Complete(&ctx, request, response);
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<CompletionService::Stub> stub_;
};

TEST_F(LatencyClassTest, BatchWaitsOnItsOwnChainAndInteractiveGivesUpOnTheSlowTarget) {
  // Batch: the batch chain, whose first target is slow; the 60 s batch timeout waits for it.
  v1::CompleteResponse batch;
  grpc::Status status = Complete("reports", v1::LATENCY_CLASS_BATCH, &batch);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << gateway_->process().Log();
  EXPECT_EQ(batch.start().latency_class(), v1::LATENCY_CLASS_BATCH);
  EXPECT_EQ(batch.start().provider(), "slow");
  EXPECT_EQ(batch.start().model(), "gpt-4.1-nano");
  ASSERT_EQ(batch.finish().attempts_size(), 1) << batch.DebugString();
  EXPECT_EQ(batch.finish().attempts(0).outcome(), "OK");

  // Interactive (named, and by default): the route's own chain; the 500 ms interactive timeout
  // ends the slow attempt and the fallback serves.
  for (std::optional<v1::LatencyClass> cls :
       {std::optional<v1::LatencyClass>(v1::LATENCY_CLASS_INTERACTIVE),
        std::optional<v1::LatencyClass>()}) {
    v1::CompleteResponse interactive;
    status = Complete("reports", cls, &interactive);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(interactive.start().latency_class(), v1::LATENCY_CLASS_INTERACTIVE);
    EXPECT_EQ(interactive.start().provider(), "fake");
    EXPECT_EQ(interactive.start().model(), "gpt-4o-mini");
    EXPECT_EQ(interactive.start().fallback_position(), 1);
    ASSERT_EQ(interactive.finish().attempts_size(), 2) << interactive.DebugString();
    EXPECT_EQ(interactive.finish().attempts(0).provider(), "slow");
    EXPECT_EQ(interactive.finish().attempts(0).model(), "gpt-4o-mini");
    EXPECT_EQ(interactive.finish().attempts(0).outcome(), "DEADLINE_EXCEEDED");
  }
}

TEST_F(LatencyClassTest, ARouteWithoutClassSettingsServesBothClassesAndSaysWhich) {
  v1::CompleteResponse batch;
  grpc::Status status = Complete("plain", v1::LATENCY_CLASS_BATCH, &batch);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(batch.start().latency_class(), v1::LATENCY_CLASS_BATCH);
  EXPECT_EQ(batch.start().model(), "gpt-4o-mini");
  v1::CompleteResponse interactive;
  status = Complete("plain", std::nullopt, &interactive);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(interactive.start().latency_class(), v1::LATENCY_CLASS_INTERACTIVE);
}

TEST_F(LatencyClassTest, AnUnknownClassIsInvalidNamingTheField) {
  v1::CompleteResponse response;
  grpc::Status status = Complete("plain", static_cast<v1::LatencyClass>(7), &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(status.error_details()));
  bool named = false;
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) named |= v.field() == "latency_class";
  }
  EXPECT_TRUE(named) << rpc.DebugString();
}

}  // namespace
}  // namespace turnpike::testing
