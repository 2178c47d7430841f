// turnpike::Embedded against real processes: the fake provider, and for metering a turnpike-control
// with a turnpike-gateway beside the library. Checks what docs/embedded.md promises: a completion
// (streamed and whole) and an embedding run in-process; their usage records reach the control
// plane's ledger as the gRPC door's do, field for field but the node; errors carry the gRPC door's
// codes; the application's own sink sees the RequestFinished event; a cancelled stream ends
// CANCELLED; and the example program runs.
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/embedded/embedded.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;

constexpr char kKey[] = "test";  // sha256 in FileConfig

std::string FileConfig(int fake_port) {
  return absl::StrCat(R"({"version":"embedded-1","providers":[
    {"name":"openai","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:)",
                      fake_port, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
  "routes":[
    {"capability":"demo","allowUnauthenticated":true,"targets":[{"provider":"openai","model":"gpt-4o-mini"}]},
    {"capability":"chat","targets":[{"provider":"openai","model":"gpt-4o-mini"}],"retry":{"maxAttempts":1}},
    {"capability":"forbidden","targets":[{"provider":"openai","model":"gpt-4o-mini"}]},
    {"capability":"limited","allowUnauthenticated":true,"targets":[{"provider":"openai","model":"gpt-4o-mini"}]}],
  "rateLimits":[{"name":"two-a-minute","capability":"limited","requestsPerMinute":"2","key":"RATE_LIMIT_KEY_SHARED"}],
  "callers":[{"name":"app","keySha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],"allowedCapabilities":["chat","demo"]}]
  })");
}

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.File(name);
  std::ofstream(path) << text;
  return path;
}

// Keeps every RequestFinished event it is told of.
class CapturingSink final : public RequestFinishedSink {
 public:
  void OnRequestFinished(const RequestFinished& event) override {
    absl::MutexLock lock(&mu_);
    events_[event.request_id] = event;
  }
  std::optional<RequestFinished> Find(const std::string& request_id) {
    absl::MutexLock lock(&mu_);
    auto it = events_.find(request_id);
    if (it == events_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, RequestFinished> events_ ABSL_GUARDED_BY(mu_);
};

// One streamed completion through Embedded, waited for.
struct Streamed {
  absl::Status status;
  v1::CompletionStart start;
  std::string text;
  v1::CompletionFinish finish;
};
Streamed StreamThrough(Embedded& gateway, v1::StreamCompletionRequest request,
                       const Embedded::CallOptions& options) {
  auto out = std::make_shared<Streamed>();
  Embedded::StreamCallbacks callbacks;
  callbacks.on_start = [out](const v1::CompletionStart& s) { out->start = s; };
  callbacks.on_text = [out](std::string_view t) { out->text.append(t); };
  callbacks.on_done = [out](const absl::Status& s, const v1::CompletionFinish& f) {
    out->status = s;
    out->finish = f;
  };
  gateway.StreamCompletion(std::move(request), options, std::move(callbacks))->Wait();
  return *out;
}

class EmbeddedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    setenv("TURNPIKE_FAKE_KEY", "fake-key", 1);
  }

  std::unique_ptr<Embedded> StartFromFile(std::vector<RequestFinishedSink*> sinks = {},
                                          absl::Duration drain = absl::Seconds(10)) {
    Embedded::Options options;
    options.drain_timeout = drain;
    options.config_file = WriteFile(dir_, "embedded.json", FileConfig(fake_->port()));
    options.sinks = std::move(sinks);
    absl::StatusOr<std::unique_ptr<Embedded>> gateway = Embedded::Create(std::move(options));
    EXPECT_TRUE(gateway.ok()) << gateway.status();
    return gateway.ok() ? *std::move(gateway) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
};

TEST_F(EmbeddedTest, UsageRecordsReachTheLedgerLikeTheGrpcDoors) {
  ControlPlane control(dir_);
  ASSERT_GT(control.port(), 0) << control.process().Log();
  Admin admin(control.address(), control.admin_token());
  ASSERT_TRUE(admin.SeedDemo(fake_->port(), "model-0").ok());
  auto channel = ControlChannel(control.address(), control.admin_token());
  {  // a price, so each record has a cost to compare
    auto stub = admin::v1::AdminService::NewStub(channel);
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreatePriceRequest price;
    price.mutable_price()->mutable_spec()->set_provider("fake");
    price.mutable_price()->mutable_spec()->set_model("model-0");
    price.mutable_price()->mutable_spec()->set_input_usd_micros_per_mtok(2'500'000);
    price.mutable_price()->mutable_spec()->set_output_usd_micros_per_mtok(10'000'000);
    admin::v1::CreatePriceResponse created;
    ASSERT_TRUE(stub->CreatePrice(&ctx, price, &created).ok());
  }
  // The gRPC door: a gateway process on the same control plane.
  WatchSource source;
  source.control_plane = control.address();
  source.node_id = "grpc-gw";
  source.node_token_file = dir_.File("grpc-gw.token");
  ASSERT_TRUE(admin.WriteNodeToken("grpc-gw", source.node_token_file).ok());
  Gateway process(dir_, source);
  ASSERT_GT(process.port(), 0) << process.process().Log();
  GatewayClient client(process.address());
  ASSERT_TRUE(WaitFor([&] { return client.Serves("model-0"); }, seconds(20)))
      << process.process().Log();

  // The library, on its own node token and spool.
  const std::string token_file = dir_.File("embedded-app.token");
  ASSERT_TRUE(admin.WriteNodeToken("embedded-app", token_file).ok());
  Embedded::Options options;
  options.control_plane = control.address();
  options.node_id = "embedded-app";
  options.node_token_file = token_file;
  options.usage_spool_dir = dir_.File("embedded-usage");
  options.health_report_interval = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<Embedded>> embedded = Embedded::Create(std::move(options));
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  ASSERT_TRUE((*embedded)->WaitUntilReady(absl::Seconds(20)).ok());
  // The control plane sees the library as a data plane: it acked the snapshot and reports health.
  admin::v1::ListDataPlanesResponse planes;
  const auto seen = [&] {
    planes.Clear();
    if (!admin.DataPlanes(&planes).ok()) return false;
    for (const auto& p : planes.data_planes()) {
      if (p.node_id() == "embedded-app" && p.build_version() == "turnpike-embedded" &&
          !p.acked_version().empty() && p.health_reported().seconds() > 0) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor(seen, seconds(20))) << planes.DebugString();

  const std::string prompt = "the same words through both doors";
  {  // gRPC: a stream and an embedding
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    auto request = DemoRequest<v1::StreamCompletionRequest>(prompt);
    request.set_request_id("grpc-stream");
    auto reader = client.completion().StreamCompletion(&ctx, request);
    v1::StreamCompletionResponse response;
    while (reader->Read(&response)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    auto embed = v1::EmbeddingService::NewStub(
        grpc::CreateChannel(process.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ectx;
    SetDeadline(ectx);
    v1::EmbedRequest erequest;
    erequest.set_capability(kCapability);
    erequest.set_request_id("grpc-embed");
    erequest.add_inputs(prompt);
    v1::EmbedResponse eresponse;
    ASSERT_TRUE(embed->Embed(&ectx, erequest, &eresponse).ok());
  }
  Embedded::CallOptions call;
  call.timeout = absl::Seconds(30);
  {  // Embedded: the same two
    auto request = DemoRequest<v1::StreamCompletionRequest>(prompt);
    request.set_request_id("embedded-stream");
    Streamed streamed = StreamThrough(**embedded, request, call);
    ASSERT_TRUE(streamed.status.ok()) << streamed.status;
    EXPECT_EQ(streamed.start.model(), "model-0");
    EXPECT_FALSE(streamed.text.empty());
    EXPECT_GT(streamed.finish.usage().cost_usd_micros(), 0);
    v1::EmbedRequest erequest;
    erequest.set_capability(kCapability);
    erequest.set_request_id("embedded-embed");
    erequest.add_inputs(prompt);
    absl::StatusOr<v1::EmbedResponse> vectors = (*embedded)->Embed(erequest, call);
    ASSERT_TRUE(vectors.ok()) << vectors.status();
    EXPECT_GT(vectors->embeddings_size(), 0);
  }

  auto usage = usage::v1::UsageService::NewStub(channel);
  std::map<std::string, usage::v1::UsageRecord> ledger;
  const bool all = WaitFor(
      [&] {
        usage::v1::ListUsageRequest request;
        request.mutable_start_time()->set_seconds(0);
        request.mutable_end_time()->set_seconds(
            std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count() +
            3600);
        request.set_page_size(500);
        usage::v1::ListUsageResponse response;
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        if (!usage->ListUsage(&ctx, request, &response).ok()) return false;
        for (const auto& r : response.records()) ledger[r.request_id()] = r;
        return ledger.contains("grpc-stream") && ledger.contains("grpc-embed") &&
               ledger.contains("embedded-stream") && ledger.contains("embedded-embed");
      },
      seconds(30));
  ASSERT_TRUE(all) << "ledger has " << ledger.size() << " records";
  for (const auto& [grpc_id, lib_id] : std::vector<std::pair<std::string, std::string>>{
           {"grpc-stream", "embedded-stream"}, {"grpc-embed", "embedded-embed"}}) {
    const usage::v1::UsageRecord& g = ledger[grpc_id];
    const usage::v1::UsageRecord& e = ledger[lib_id];
    SCOPED_TRACE(lib_id);
    EXPECT_EQ(g.node_id(), "grpc-gw");
    EXPECT_EQ(e.node_id(), "embedded-app");
    EXPECT_EQ(e.method(), g.method());
    EXPECT_EQ(e.capability(), g.capability());
    EXPECT_EQ(e.provider(), g.provider());
    EXPECT_EQ(e.model(), g.model());
    EXPECT_EQ(e.credential(), g.credential());
    EXPECT_EQ(e.status(), g.status());
    EXPECT_EQ(e.input_tokens(), g.input_tokens());
    EXPECT_EQ(e.output_tokens(), g.output_tokens());
    EXPECT_EQ(e.cost_usd_micros(), g.cost_usd_micros());
    EXPECT_GT(e.cost_usd_micros(), 0);
    EXPECT_EQ(e.cost_known(), g.cost_known());
    EXPECT_EQ(e.config_version(), g.config_version());
    EXPECT_EQ(e.attempts(), g.attempts());
    EXPECT_EQ(e.refused(), g.refused());
  }
}

TEST_F(EmbeddedTest, ErrorsCarryTheGrpcDoorsCodesAndEveryRequestEndsWithItsEvent) {
  CapturingSink sink;
  std::unique_ptr<Embedded> embedded = StartFromFile({&sink});
  ASSERT_NE(embedded, nullptr);
  Gateway process(dir_, FileConfig(fake_->port()));
  ASSERT_GT(process.port(), 0) << process.process().Log();
  GatewayClient client(process.address());

  struct Case {
    std::string name, capability, key;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"no-key", "chat", "", absl::StatusCode::kUnauthenticated},
      {"bad-key", "chat", "wrong", absl::StatusCode::kUnauthenticated},
      {"not-allowed", "forbidden", kKey, absl::StatusCode::kPermissionDenied},
      {"no-route", "nothing-here", kKey, absl::StatusCode::kNotFound},
      {"provider-400", "chat", kKey, absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string text = c.name == "provider-400" ? "[[fake status=400]]" : "hello";
    auto request = DemoRequest<v1::StreamCompletionRequest>(text);
    request.set_capability(c.capability);
    request.set_request_id(absl::StrCat("emb-", c.name));
    Embedded::CallOptions options;
    options.caller_key = c.key;
    options.timeout = absl::Seconds(30);
    Streamed streamed = StreamThrough(*embedded, request, options);
    // The gRPC door, asked the same.
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (!c.key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", c.key));
    request.set_request_id(absl::StrCat("grpc-", c.name));
    auto reader = client.completion().StreamCompletion(&ctx, request);
    v1::StreamCompletionResponse response;
    while (reader->Read(&response)) {
    }
    const grpc::Status grpc_status = reader->Finish();
    EXPECT_EQ(streamed.status.code(), c.code) << streamed.status;
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), static_cast<int>(c.code))
        << grpc_status.error_message();
    // The event every request ends with reached the application's sink, after the answer.
    std::optional<RequestFinished> event;
    ASSERT_TRUE(
        WaitFor([&] { return (event = sink.Find(absl::StrCat("emb-", c.name))).has_value(); },
                seconds(10)));
    EXPECT_EQ(event->status.code(), c.code);
    EXPECT_EQ(event->refused, c.name != "provider-400");
    EXPECT_EQ(event->method, RequestMethod::kStreamCompletion);
  }
  // An embedding with a bad field: INVALID_ARGUMENT naming it, as over gRPC.
  v1::EmbedRequest empty;
  empty.set_capability("demo");
  absl::StatusOr<v1::EmbedResponse> refused = embedded->Embed(empty, {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
}

TEST_F(EmbeddedTest, ServedRequestsGiveTheirEventToTheApplicationsSink) {
  CapturingSink sink;
  std::unique_ptr<Embedded> embedded = StartFromFile({&sink});
  ASSERT_NE(embedded, nullptr);
  Embedded::CallOptions options;
  options.caller_key = kKey;
  options.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  v1::CompleteRequest whole = DemoRequest<v1::CompleteRequest>("hello");
  whole.set_capability("chat");
  whole.set_request_id("whole-1");
  absl::StatusOr<v1::CompleteResponse> complete = embedded->Complete(whole, options);
  ASSERT_TRUE(complete.ok()) << complete.status();
  EXPECT_EQ(complete->start().provider(), "openai");
  EXPECT_FALSE(complete->text().empty());
  EXPECT_EQ(complete->finish().finish_reason(), v1::FINISH_REASON_STOP);
  std::optional<RequestFinished> event;
  ASSERT_TRUE(WaitFor([&] { return (event = sink.Find("whole-1")).has_value(); }, seconds(10)));
  EXPECT_TRUE(event->status.ok());
  EXPECT_EQ(event->method, RequestMethod::kComplete);
  EXPECT_EQ(event->caller, "app");
  EXPECT_EQ(event->capability, "chat");
  EXPECT_EQ(event->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(event->output_tokens, complete->finish().usage().output_tokens());
  EXPECT_GT(event->output_tokens, 0);

  v1::EmbedRequest embed;
  embed.set_capability("demo");
  embed.set_request_id("embed-1");
  embed.add_inputs("one");
  embed.add_inputs("two");
  absl::StatusOr<v1::EmbedResponse> vectors = embedded->Embed(embed, {});
  ASSERT_TRUE(vectors.ok()) << vectors.status();
  EXPECT_EQ(vectors->embeddings_size(), 2);
  ASSERT_TRUE(WaitFor([&] { return (event = sink.Find("embed-1")).has_value(); }, seconds(10)));
  EXPECT_EQ(event->method, RequestMethod::kEmbed);
  EXPECT_EQ(event->input_tokens, vectors->usage().input_tokens());
}

// Tool calls (docs/tools.md) come through the library as through the gRPC door: streamed as
// fragments in order, and whole from Complete.
TEST_F(EmbeddedTest, ToolCallsStreamAsFragmentsAndCompleteReturnsThemWhole) {
  std::unique_ptr<Embedded> embedded = StartFromFile();
  ASSERT_NE(embedded, nullptr);
  v1::StreamCompletionRequest request =
      DemoRequest<v1::StreamCompletionRequest>("weather in Paris");
  v1::Tool* tool = request.add_tools();
  tool->set_name("get_weather");
  tool->set_parameters_json(R"({"type":"object","properties":{"city":{"type":"string"}}})");

  auto deltas = std::make_shared<std::vector<v1::ToolCallDelta>>();
  auto done = std::make_shared<std::pair<absl::Status, v1::CompletionFinish>>();
  Embedded::StreamCallbacks callbacks;
  callbacks.on_tool_call = [deltas](const v1::ToolCallDelta& d) { deltas->push_back(d); };
  callbacks.on_done = [done](const absl::Status& s, const v1::CompletionFinish& f) {
    *done = {s, f};
  };
  embedded->StreamCompletion(request, {}, std::move(callbacks))->Wait();
  ASSERT_TRUE(done->first.ok()) << done->first;
  EXPECT_EQ(done->second.finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
  ASSERT_GT(deltas->size(), 1u) << "the fake provider streams the arguments in fragments";
  EXPECT_EQ(deltas->front().name(), "get_weather");
  EXPECT_FALSE(deltas->front().id().empty());
  std::string arguments;
  for (const v1::ToolCallDelta& d : *deltas) {
    EXPECT_EQ(d.index(), 0);
    arguments += d.arguments();
  }
  // The fake provider's arguments (tools/fake_provider/README.md, "Tool calls"), byte for byte.
  EXPECT_EQ(arguments, R"({"city": "Paris", "unit": "celsius", "note": "say \"hi\" \u00e9 👋"})");

  v1::CompleteRequest whole;
  ASSERT_TRUE(whole.ParseFromString(request.SerializeAsString()));
  absl::StatusOr<v1::CompleteResponse> response = embedded->Complete(whole, {});
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->tool_calls_size(), 1);
  EXPECT_EQ(response->tool_calls(0).name(), "get_weather");
  EXPECT_EQ(response->tool_calls(0).id(), deltas->front().id());
  EXPECT_EQ(response->tool_calls(0).arguments_json(), arguments);
}

TEST_F(EmbeddedTest, ACancelledStreamEndsCancelledAndStopsTheProvider) {
  std::unique_ptr<Embedded> embedded = StartFromFile();
  ASSERT_NE(embedded, nullptr);
  absl::Notification first_text;
  absl::Notification done;
  std::atomic<int> texts{0};
  absl::Status status;
  Embedded::StreamCallbacks callbacks;
  callbacks.on_text = [&](std::string_view) {
    if (texts.fetch_add(1) == 0) first_text.Notify();
  };
  callbacks.on_done = [&](const absl::Status& s, const v1::CompletionFinish&) {
    status = s;
    done.Notify();
  };
  // 200 chunks, 50 ms apart: ten seconds of stream, cancelled after the first.
  auto request = DemoRequest<v1::StreamCompletionRequest>("[[fake chunks=200 chunk_delay_ms=50]]");
  std::unique_ptr<Embedded::Stream> stream =
      embedded->StreamCompletion(request, {}, std::move(callbacks));
  ASSERT_TRUE(first_text.WaitForNotificationWithTimeout(absl::Seconds(20)));
  stream->Cancel();
  stream->Wait();
  ASSERT_TRUE(done.HasBeenNotified());
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_LT(texts.load(), 200);
  EXPECT_EQ(embedded->in_flight(), 0);
}

TEST_F(EmbeddedTest, RateLimitsOfTheSnapshotRefuseBeforeTheProvider) {
  CapturingSink sink;
  std::unique_ptr<Embedded> embedded = StartFromFile({&sink});
  ASSERT_NE(embedded, nullptr);
  // The limit counts per UTC minute: start with enough of one left for three requests.
  const absl::Duration into =
      absl::Now() -
      absl::FromCivil(absl::CivilMinute(absl::ToCivilSecond(absl::Now(), absl::UTCTimeZone())),
                      absl::UTCTimeZone());
  if (absl::Seconds(60) - into < absl::Seconds(15)) absl::SleepFor(absl::Seconds(60) - into);
  Embedded::CallOptions options;
  options.timeout = absl::Seconds(30);
  for (int i = 0; i < 2; ++i) {
    auto request = DemoRequest<v1::StreamCompletionRequest>("hello");
    request.set_capability("limited");
    Streamed served = StreamThrough(*embedded, request, options);
    ASSERT_TRUE(served.status.ok()) << served.status;
  }
  const long upstream_before = FakeStat(fake_->port(), "requests");
  auto request = DemoRequest<v1::StreamCompletionRequest>("hello");
  request.set_capability("limited");
  request.set_request_id("third");
  Streamed refused = StreamThrough(*embedded, request, options);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kResourceExhausted) << refused.status;
  EXPECT_EQ(FakeStat(fake_->port(), "requests"), upstream_before) << "refused before the provider";
  std::optional<RequestFinished> event;
  ASSERT_TRUE(WaitFor([&] { return (event = sink.Find("third")).has_value(); }, seconds(10)));
  EXPECT_TRUE(event->refused);
  EXPECT_EQ(event->status.code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(EmbeddedTest, DestroyingItCancelsStreamsInFlightAndWaitsForTheirEnd) {
  std::unique_ptr<Embedded> embedded = StartFromFile({}, /*drain=*/absl::ZeroDuration());
  ASSERT_NE(embedded, nullptr);
  absl::Notification first_text;
  auto status = std::make_shared<absl::Status>(absl::UnknownError("on_done not called"));
  Embedded::StreamCallbacks callbacks;
  callbacks.on_text = [&first_text](std::string_view) {
    if (!first_text.HasBeenNotified()) first_text.Notify();
  };
  callbacks.on_done = [status](const absl::Status& s, const v1::CompletionFinish&) { *status = s; };
  std::unique_ptr<Embedded::Stream> stream = embedded->StreamCompletion(
      DemoRequest<v1::StreamCompletionRequest>("[[fake chunks=200 chunk_delay_ms=50]]"), {},
      std::move(callbacks));
  ASSERT_TRUE(first_text.WaitForNotificationWithTimeout(absl::Seconds(20)));
  embedded.reset();  // returns once every call has ended
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled) << *status;
  stream->Cancel();  // the handle outlives the library: a no-op now
  stream->Wait();
}

TEST_F(EmbeddedTest, TheExampleStreamsAndEmbedsThroughTheLibrary) {
  const std::string config = WriteFile(dir_, "demo.json", FileConfig(fake_->port()));
  Process demo(EMBEDDED_DEMO_BIN, {"--config=" + config}, dir_.File("demo.log"),
               {{"TURNPIKE_FAKE_KEY", "fake-key"}});
  const std::optional<int> code = demo.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << demo.Log();
  EXPECT_EQ(*code, 0) << demo.Log();
  const std::string log = demo.Log();
  EXPECT_TRUE(absl::StrContains(log, "start: openai/gpt-4o-mini")) << log;
  EXPECT_TRUE(absl::StrContains(log, "finish: FINISH_REASON_STOP")) << log;
  EXPECT_TRUE(absl::StrContains(log, "complete: ")) << log;
  EXPECT_TRUE(absl::StrContains(log, "embedding: 1 vector(s)")) << log;
}

}  // namespace
}  // namespace turnpike::testing
