// End-to-end tests of turnpike-gateway: the real gateway and fake-provider processes, the
// generated C++ stubs over loopback, every provider kind, the error mapping of each fault, client
// cancellation, bad input and graceful shutdown.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike::testing {
namespace {

using v1::CompletionService;
using v1::StreamCompletionRequest;
using v1::StreamCompletionResponse;

// One provider of each kind, all served by the same fake provider under its per-kind paths, and
// one route per kind.
std::string AllKindsConfig(int fake_port, const std::string& extra_routes = "") {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port);
  return absl::StrCat(R"({"version":"test-1","providers":[
    {"name":"openai","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"azure","kind":"PROVIDER_KIND_AZURE_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY","apiVersion":"2024-10-21"},
    {"name":"anthropic","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"gemini","kind":"PROVIDER_KIND_GEMINI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
    {"name":"vllm","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":")",
                      base, R"(/vllm/v1"},
    {"name":"llamacpp","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_LLAMA_CPP","baseUrl":")",
                      base, R"(/llamacpp/v1"},
    {"name":"ollama","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_OLLAMA","baseUrl":")",
                      base, R"(/ollama/v1"},
    {"name":"badkey","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(/v1","apiKeyEnv":"WRONG_KEY"},
    {"name":"dead","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:1/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}
  ],"routes":[
    {"capability":"openai","targets":[{"provider":"openai","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"azure","targets":[{"provider":"azure","model":"my-gpt4o-deployment"}],"allowUnauthenticated":true},
    {"capability":"anthropic","targets":[{"provider":"anthropic","model":"claude-haiku-4-5"}],"allowUnauthenticated":true},
    {"capability":"gemini","targets":[{"provider":"gemini","model":"gemini-2.5-flash"}],"allowUnauthenticated":true},
    {"capability":"vllm","targets":[{"provider":"vllm","model":"meta-llama/Llama-3.1-8B-Instruct"}],"allowUnauthenticated":true},
    {"capability":"llamacpp","targets":[{"provider":"llamacpp","model":"local"}],"allowUnauthenticated":true},
    {"capability":"ollama","targets":[{"provider":"ollama","model":"llama3.2"}],"allowUnauthenticated":true},
    {"capability":"badkey","targets":[{"provider":"badkey","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"dead","targets":[{"provider":"dead","model":"gpt-4o-mini"}],"allowUnauthenticated":true},
    {"capability":"failover","targets":[{"provider":"dead","model":"gpt-4o-mini"},{"provider":"anthropic","model":"claude-haiku-4-5"}],"allowUnauthenticated":true},
    {"capability":"closed","targets":[{"provider":"openai","model":"gpt-4o-mini"}]}
    )",
                      extra_routes, R"(
  ],"prices":[{"provider":"openai","model":"gpt-4o-mini","inputUsdMicrosPerMtok":"150000","outputUsdMicrosPerMtok":"600000"}],
  "callers":[{"name":"claims-service","keySha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],"allowedCapabilities":["openai","closed"]}]
  })");
}

struct StreamResult {
  grpc::Status status;
  std::vector<StreamCompletionResponse> messages;
  std::string text() const {
    std::string t;
    for (const auto& m : messages) {
      if (m.has_delta()) t += m.delta().text();
    }
    return t;
  }
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=5"});
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    StartGateway({});
  }

  void StartGateway(std::vector<std::string> extra_args) {
    gateway_ =
        std::make_unique<Gateway>(dir_, AllKindsConfig(fake_->port()), extra_args,
                                  std::map<std::string, std::string>{{"WRONG_KEY", "not-the-key"}});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    channel_ = grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials());
    stub_ = CompletionService::NewStub(channel_);
  }

  static StreamCompletionRequest Request(const std::string& capability, const std::string& text) {
    StreamCompletionRequest request;
    request.set_capability(capability);
    auto* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    return request;
  }

  StreamResult Stream(const StreamCompletionRequest& request, const std::string& key = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
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
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CompletionService::Stub> stub_;
};

template <typename T>
std::optional<T> Detail(const grpc::Status& status) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return std::nullopt;
  for (const auto& any : rpc.details()) {
    T detail;
    if (any.UnpackTo(&detail)) return detail;
  }
  return std::nullopt;
}

struct KindCase {
  std::string capability;
  std::string provider;
};

class EveryProviderKind : public GatewayTest, public ::testing::WithParamInterface<KindCase> {};

TEST_P(EveryProviderKind, StreamsStartDeltasAndFinishWithUsage) {
  StreamResult r = Stream(Request(GetParam().capability, "say hello to the gateway"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << gateway_->process().Log();
  ASSERT_GE(r.messages.size(), 3u);
  ASSERT_TRUE(r.messages.front().has_start());
  EXPECT_EQ(r.messages.front().start().provider(), GetParam().provider);
  EXPECT_EQ(r.messages.front().start().fallback_position(), 0);
  EXPECT_FALSE(r.messages.front().start().request_id().empty());
  EXPECT_EQ(r.text(), "Hello from the fake provider");
  for (size_t i = 1; i + 1 < r.messages.size(); ++i) EXPECT_TRUE(r.messages[i].has_delta());
  ASSERT_TRUE(r.messages.back().has_finish());
  const auto& finish = r.messages.back().finish();
  EXPECT_EQ(finish.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(finish.usage().input_tokens(), 5);   // five words in the prompt
  EXPECT_EQ(finish.usage().output_tokens(), 5);  // five chunks
  ASSERT_EQ(finish.attempts_size(), 1);
  EXPECT_EQ(finish.attempts(0).outcome(), "OK");
}

TEST_P(EveryProviderKind, CompletesUnary) {
  grpc::ClientContext ctx;
  v1::CompleteRequest request;
  request.ParseFromString(Request(GetParam().capability, "one two three").SerializeAsString());
  v1::CompleteResponse response;
  grpc::Status status = stub_->Complete(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.start().provider(), GetParam().provider);
  EXPECT_EQ(response.text(), "Hello from the fake provider");
  EXPECT_EQ(response.finish().usage().input_tokens(), 3);
  EXPECT_EQ(response.finish().usage().output_tokens(), 5);
}

TEST_P(EveryProviderKind, HonoursMaxTokens) {
  StreamCompletionRequest request = Request(GetParam().capability, "hello");
  request.set_max_tokens(2);
  StreamResult r = Stream(request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text(), "Hello from");
  EXPECT_EQ(r.messages.back().finish().finish_reason(), v1::FINISH_REASON_LENGTH);
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryProviderKind,
                         ::testing::Values(KindCase{"openai", "openai"}, KindCase{"azure", "azure"},
                                           KindCase{"anthropic", "anthropic"},
                                           KindCase{"gemini", "gemini"}, KindCase{"vllm", "vllm"},
                                           KindCase{"llamacpp", "llamacpp"},
                                           KindCase{"ollama", "ollama"}),
                         [](const auto& info) { return info.param.capability; });

TEST_F(GatewayTest, ReportsCostFromThePriceTable) {
  StreamResult r = Stream(Request("openai", "a b c d"));
  ASSERT_TRUE(r.status.ok());
  // 4 input tokens at $0.15/M and 5 output tokens at $0.60/M = 3.6 micro-dollars, rounded up.
  EXPECT_EQ(r.messages.back().finish().usage().cost_usd_micros(), 4);
}

TEST_F(GatewayTest, SendsTheProviderWireFormatUpstream) {
  StreamCompletionRequest request = Request("openai", "hi");
  request.set_max_tokens(7);
  ASSERT_TRUE(Stream(request).status.ok());
  HttpResponse recorded = HttpRequest("GET", fake_->base() + "/_fake/requests");
  ASSERT_EQ(recorded.status, 200);
  EXPECT_NE(recorded.body.find("\"path\":\"/v1/chat/completions\""), std::string::npos)
      << recorded.body;
  EXPECT_NE(recorded.body.find("max_completion_tokens"), std::string::npos) << recorded.body;
  EXPECT_NE(recorded.body.find("include_usage"), std::string::npos) << recorded.body;
  EXPECT_NE(recorded.body.find("Bearer fake-key"), std::string::npos) << recorded.body;
}

struct FaultCase {
  std::string name;
  std::string capability;
  std::string directive;
  grpc::StatusCode code;
  int http_status;         // expected ProviderError.http_status; -1: no ProviderError detail
  int64_t retry_after_ms;  // expected RetryInfo, 0 for none
  bool text_before_error;  // deltas reach the client before the error
};

class Faults : public GatewayTest, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(Faults, MapToPreciseStatus) {
  const FaultCase& c = GetParam();
  StreamResult r = Stream(Request(c.capability, "hello " + c.directive));
  ASSERT_EQ(r.status.error_code(), c.code) << r.status.error_message();
  EXPECT_FALSE(r.status.error_message().empty());
  auto provider_error = Detail<v1::ProviderError>(r.status);
  if (c.http_status >= 0) {
    ASSERT_TRUE(provider_error.has_value()) << r.status.error_message();
    EXPECT_EQ(provider_error->http_status(), c.http_status);
    EXPECT_EQ(provider_error->provider(), c.capability);
  }
  auto retry = Detail<google::rpc::RetryInfo>(r.status);
  if (c.retry_after_ms > 0) {
    ASSERT_TRUE(retry.has_value());
    EXPECT_EQ(retry->retry_delay().seconds() * 1000 + retry->retry_delay().nanos() / 1000000,
              c.retry_after_ms);
  } else {
    EXPECT_FALSE(retry.has_value());
  }
  auto partial = Detail<v1::PartialCompletion>(r.status);
  ASSERT_TRUE(partial.has_value());
  EXPECT_GE(partial->attempts_size(), 1);
  EXPECT_EQ(!r.text().empty(), c.text_before_error) << r.text();
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, Faults,
    ::testing::Values(
        FaultCase{"RateLimit429", "openai", "[[fake status=429 retry_after=2]]",
                  grpc::RESOURCE_EXHAUSTED, 429, 2000, false},
        FaultCase{"QuotaExhausted429", "openai",
                  "[[fake status=429 error_type=insufficient_quota]]", grpc::FAILED_PRECONDITION,
                  429, 0, false},
        FaultCase{"Server500", "openai", "[[fake status=500]]", grpc::UNAVAILABLE, 500, 0, false},
        FaultCase{"Unavailable503", "gemini", "[[fake status=503]]", grpc::UNAVAILABLE, 503, 0,
                  false},
        FaultCase{"Overloaded529", "anthropic", "[[fake status=529]]", grpc::UNAVAILABLE, 529, 0,
                  false},
        FaultCase{"BadRequest400", "azure", "[[fake status=400]]", grpc::INVALID_ARGUMENT, 400, 0,
                  false},
        FaultCase{"WrongKey", "badkey", "", grpc::FAILED_PRECONDITION, 401, 0, false},
        FaultCase{"ConnectionRefused", "dead", "", grpc::UNAVAILABLE, -1, 0, false},
        FaultCase{"ResetBeforeFirstByte", "openai", "[[fake reset_after_chunks=0]]",
                  grpc::UNAVAILABLE, -1, 0, false},
        FaultCase{"ResetMidStream", "vllm", "[[fake reset_after_chunks=2]]", grpc::UNAVAILABLE, -1,
                  0, true},
        FaultCase{"MalformedSse", "openai", "[[fake malformed=1]]", grpc::INTERNAL, -1, 0, true},
        FaultCase{"ErrorEventInStream", "anthropic", "[[fake stream_error_after=1]]",
                  grpc::UNAVAILABLE, 0, 0, true},
        FaultCase{"TruncatedStream", "gemini", "[[fake truncate=1]]", grpc::UNAVAILABLE, -1, 0,
                  true}),
    [](const auto& info) { return info.param.name; });

TEST_F(GatewayTest, FailsOverToTheNextTargetBeforeTheFirstToken) {
  StreamResult r = Stream(Request("failover", "hello"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.messages.front().start().provider(), "anthropic");
  EXPECT_EQ(r.messages.front().start().fallback_position(), 1);
  const auto& attempts = r.messages.back().finish().attempts();
  ASSERT_EQ(attempts.size(), 2);
  EXPECT_EQ(attempts[0].provider(), "dead");
  EXPECT_EQ(attempts[0].outcome(), "UNAVAILABLE");
  EXPECT_EQ(attempts[1].outcome(), "OK");
}

TEST_F(GatewayTest, ClientCancelStopsTheUpstreamTransfer) {
  grpc::ClientContext ctx;
  auto reader = stub_->StreamCompletion(
      &ctx, Request("openai", "hello [[fake chunks=200 chunk_delay_ms=50]]"));
  StreamCompletionResponse response;
  ASSERT_TRUE(reader->Read(&response));  // start
  ASSERT_TRUE(reader->Read(&response));  // first delta: the upstream is streaming
  EXPECT_EQ(FakeStat(fake_->port(), "active_streams"), 1);
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "aborted_streams") == 1; },
                      std::chrono::seconds(3)))
      << "the fake provider never saw the gateway hang up";
  EXPECT_EQ(FakeStat(fake_->port(), "active_streams"), 0);
}

TEST_F(GatewayTest, UnknownCapabilityIsNotFound) {
  StreamResult r = Stream(Request("no-such-capability", "hello"));
  EXPECT_EQ(r.status.error_code(), grpc::NOT_FOUND);
  EXPECT_NE(r.status.error_message().find("no-such-capability"), std::string::npos);
}

TEST_F(GatewayTest, EmptyMessagesAreInvalid) {
  StreamCompletionRequest request;
  request.set_capability("openai");
  StreamResult r = Stream(request);
  ASSERT_EQ(r.status.error_code(), grpc::INVALID_ARGUMENT);
  auto bad = Detail<google::rpc::BadRequest>(r.status);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->field_violations(0).field(), "messages");
}

TEST_F(GatewayTest, InvalidRoleNamesTheField) {
  StreamCompletionRequest request = Request("openai", "hello");
  auto* m = request.add_messages();
  m->set_role(static_cast<v1::Role>(42));
  m->set_content("x");
  StreamResult r = Stream(request);
  ASSERT_EQ(r.status.error_code(), grpc::INVALID_ARGUMENT);
  auto bad = Detail<google::rpc::BadRequest>(r.status);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->field_violations(0).field(), "messages[1].role");
}

TEST_F(GatewayTest, InvalidUtf8NamesTheField) {
  // Hand-encoded: capability "openai", messages[0] {role USER, content "\xff\xfe"}.
  std::string wire;
  wire += '\x0a';
  wire += '\x06';
  wire += "openai";
  std::string message = std::string("\x08\x02\x12\x02", 4) + "\xff\xfe";
  wire += '\x12';
  wire += static_cast<char>(message.size());
  wire += message;
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  grpc::Slice slice(wire);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(&ctx, "/turnpike.v1.CompletionService/StreamCompletion", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  ASSERT_EQ(status.error_code(), grpc::INVALID_ARGUMENT) << status.error_message();
  auto bad = Detail<google::rpc::BadRequest>(status);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->field_violations(0).field(), "messages[0].content");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(GatewayTest, OversizedRequestIsRejectedAtTheConfiguredLimit) {
  gateway_.reset();
  StartGateway({"--max_request_bytes=1024"});
  StreamResult r = Stream(Request("openai", std::string(2048, 'x')));
  EXPECT_EQ(r.status.error_code(), grpc::RESOURCE_EXHAUSTED) << r.status.error_message();
  // A request under the limit still works.
  EXPECT_TRUE(Stream(Request("openai", "small")).status.ok());
}

TEST_F(GatewayTest, CallerKeysAreEnforced) {
  // sha256("test") is the digest configured for caller "claims-service".
  EXPECT_EQ(Stream(Request("closed", "hi")).status.error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(Stream(Request("closed", "hi"), "wrong").status.error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(Stream(Request("anthropic", "hi"), "test").status.error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_TRUE(Stream(Request("closed", "hi"), "test").status.ok());
  // An open route still serves callers without a key.
  EXPECT_TRUE(Stream(Request("anthropic", "hi")).status.ok());
}

TEST_F(GatewayTest, HealthIsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&ctx, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(GatewayTest, HealthCheckKnowsEachServiceAndNoOther) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"turnpike.v1.CompletionService", "turnpike.v1.EmbeddingService",
                                    "turnpike.v1.ClassificationService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&ctx, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("turnpike.v1.NoSuchService");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&ctx, request, &response).error_code(), grpc::NOT_FOUND);
}

// grpc.health.v1.Health/Watch, as clients with health checking in their service config use it:
// the status at once, then each change; the drain after SIGTERM is a change to NOT_SERVING,
// sent before the stream ends. An unknown service is SERVICE_UNKNOWN, on a stream kept open.
TEST_F(GatewayTest, HealthWatchSendsTheStatusThenNotServingWhenTheGatewayDrains) {
  gateway_.reset();
  StartGateway({"--drain_timeout=60s"});
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse response;

  grpc::ClientContext unknown_ctx;
  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("turnpike.v1.NoSuchService");
  auto unknown_reader = health->Watch(&unknown_ctx, unknown);
  ASSERT_TRUE(unknown_reader->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN);
  unknown_ctx.TryCancel();
  EXPECT_EQ(unknown_reader->Finish().error_code(), grpc::CANCELLED);

  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("turnpike.v1.CompletionService");
  auto reader = health->Watch(&ctx, request);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  // A stream in flight keeps the drain going, so the watcher has time to hear of it.
  grpc::ClientContext stream_ctx;
  auto stream = stub_->StreamCompletion(
      &stream_ctx, Request("openai", "hi [[fake chunks=20 chunk_delay_ms=100]]"));
  StreamCompletionResponse first;
  ASSERT_TRUE(stream->Read(&first));
  gateway_->process().Signal(SIGTERM);
  ASSERT_TRUE(reader->Read(&response)) << gateway_->process().Log();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  StreamCompletionResponse rest;
  while (stream->Read(&rest)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  // The watch stream does not hold the drain: it ends with the gateway.
  while (reader->Read(&response)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_EQ(gateway_->process().Wait(std::chrono::seconds(30)), 0) << gateway_->process().Log();
}

TEST_F(GatewayTest, EmbedsThroughOpenAiStyleProviders) {
  auto embed = v1::EmbeddingService::NewStub(channel_);
  for (const std::string capability : {"openai", "vllm", "ollama"}) {
    grpc::ClientContext ctx;
    v1::EmbedRequest request;
    request.set_capability(capability);
    request.add_inputs("first text");
    request.add_inputs("second");
    v1::EmbedResponse response;
    grpc::Status status = embed->Embed(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << capability << ": " << status.error_message();
    ASSERT_EQ(response.embeddings_size(), 2);
    EXPECT_EQ(response.embeddings(0).values_size(), 8);
    EXPECT_EQ(response.embeddings(1).index(), 1);
    EXPECT_EQ(response.provider(), capability);
    EXPECT_EQ(response.usage().input_tokens(), 3);
  }
  grpc::ClientContext ctx;
  v1::EmbedRequest request;
  request.set_capability("anthropic");
  request.add_inputs("x");
  v1::EmbedResponse response;
  EXPECT_EQ(embed->Embed(&ctx, request, &response).error_code(), grpc::FAILED_PRECONDITION);
}

TEST_F(GatewayTest, SigtermDrainsStreamsInFlight) {
  grpc::ClientContext ctx;
  auto reader =
      stub_->StreamCompletion(&ctx, Request("openai", "hi [[fake chunks=10 chunk_delay_ms=50]]"));
  StreamCompletionResponse response;
  ASSERT_TRUE(reader->Read(&response));
  gateway_->process().Signal(SIGTERM);
  std::string text;
  bool finished = false;
  while (reader->Read(&response)) {
    if (response.has_delta()) text += response.delta().text();
    finished |= response.has_finish();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(finished);
  EXPECT_EQ(gateway_->process().Wait(std::chrono::seconds(10)), 0) << gateway_->process().Log();
  // New calls are refused once it is gone.
  auto fresh = CompletionService::NewStub(
      grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  auto r2 = fresh->StreamCompletion(&ctx2, Request("openai", "late"));
  while (r2->Read(&response)) {
  }
  EXPECT_EQ(r2->Finish().error_code(), grpc::UNAVAILABLE);
}

TEST_F(GatewayTest, SigtermWithOnlyIdleConnectionsStopsWithoutWaitingForTheDrainTimeout) {
  StartGateway({"--drain_timeout=60s"});
  // One finished call leaves this client's connection open and idle.
  ASSERT_TRUE(Stream(Request("openai", "hi")).status.ok());
  ASSERT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  gateway_->process().Signal(SIGTERM);
  // Nothing is in flight, so the drain ends at once instead of waiting the 60 s for the idle
  // connection (gRPC's Server::Shutdown alone waits for every connection to close).
  EXPECT_EQ(gateway_->process().Wait(std::chrono::seconds(20)), 0) << gateway_->process().Log();
}

TEST(GatewayConfig, MalformedConfigNamesTheField) {
  TempDir dir;
  struct Case {
    std::string json;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_NOPE"}]})", "kind"},
      {R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI","baseUrl":"ftp://x"}]})",
       "providers[0].base_url"},
      {R"({"routes":[{"capability":"c","targets":[{"provider":"missing","model":"m"}]}]})",
       "routes[0].targets[0].provider"},
      {R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://x","apiKeyEnv":"TURNPIKE_UNSET_VAR"}]})",
       "providers[0].api_key_env"},
      {R"({"providers":[{"name":"p","kind":"PROVIDER_KIND_AZURE_OPENAI","baseUrl":"http://x","apiKey":"k"}]})",
       "providers[0].api_version"},
      {R"({"routes":[{"capability":"c"}]})", "routes[0].targets"},
      {R"({"bogus":1})", "bogus"},
      {R"({"providers":[)", "config"},
  };
  for (const Case& c : cases) {
    Gateway gateway(dir, c.json);
    EXPECT_EQ(gateway.port(), -1);
    EXPECT_EQ(gateway.process().Wait(std::chrono::seconds(10)), 2) << c.json;
    EXPECT_NE(gateway.process().Log().find(c.expected), std::string::npos)
        << c.json << "\n"
        << gateway.process().Log();
  }
}

// `--help` lists each binary's own flags with their defaults (Abseil's default lists only flags
// from a file named after the program, so it printed "No flags matched").
TEST(BinaryFlags, HelpListsEachBinarysFlags) {
  TempDir dir;
  struct Case {
    std::string binary;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {GatewayBinary(), {"--config", "--control_plane", "--threads", "half the cores", "--listen"}},
      {ControlBinary(), {"--listen", "--alert_eval_interval"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Process process(c.binary, {"--help"}, dir.File(absl::StrCat("help-", i, ".log")));
    ASSERT_TRUE(process.Wait(std::chrono::seconds(20)).has_value()) << c.binary;
    const std::string log = process.Log();
    EXPECT_EQ(log.find("No flags matched"), std::string::npos) << log;
    for (const std::string& text : c.expected) {
      EXPECT_NE(log.find(text), std::string::npos) << c.binary << " --help lacks " << text << "\n"
                                                   << log;
    }
  }
}

}  // namespace
}  // namespace turnpike::testing
