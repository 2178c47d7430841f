// The attempt driver (ChatExchange, EmbedExchange) on a fake transport and a simulated clock:
// the commit point, failover before the first token, partial usage after it, first-token and
// idle timeouts, cancellation, a deadline shorter than a backoff, backpressure, fallbacks, the
// one RequestFinished event each request ends with, and the routing rules the driver sees
// (least-latency selection, a variant's own chain). No sockets and no sleeping: the test
// plays the provider's side of every transfer and moves the clock.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "server/config/route_selection.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/embed_exchange.h"
#include "tests/mocks/fake_transport.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {
namespace {

using DataResult = TransferHandler::DataResult;

std::string Chunk(std::string_view text) {
  return absl::StrFormat(
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
      text);
}
std::string FinishChunks(int prompt_tokens, int completion_tokens) {
  return absl::StrFormat(
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
      "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
      "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n"
      "data: [DONE]\n\n",
      prompt_tokens, completion_tokens, prompt_tokens + completion_tokens);
}
constexpr char kServerError[] = R"({"error":{"message":"boom","type":"server_error"}})";

// What a gRPC call would see.
class RecordingListener : public ChatListener {
 public:
  void OnCommit(const v1::CompletionStart& start) override {
    ++commits;
    this->start = start;
  }
  void OnText(std::string_view t) override {
    text.append(t);
    queued += t.size();
  }
  void OnToolCall(const ToolCallFragment& fragment) override {
    EXPECT_EQ(commits, 1) << "a tool call before the commit";
    tool_calls.Add(fragment);
    ++tool_fragments;
  }
  bool Congested() override { return queued > high_water; }
  void OnDone(const absl::Status& s, const v1::CompletionFinish& f) override {
    ++done;
    status = s;
    finish = f;
  }

  int commits = 0;
  int done = 0;
  ToolCallAssembler tool_calls;
  int tool_fragments = 0;
  v1::CompletionStart start;
  std::string text;
  size_t queued = 0;  // text not yet "read" by the client
  size_t high_water = SIZE_MAX;
  absl::Status status;
  v1::CompletionFinish finish;
};

class RecordingSink : public RequestFinishedSink {
 public:
  explicit RecordingSink(const RecordingListener* listener) : listener_(listener) {}
  void OnRequestDecided(const RequestFinished& event) override {
    decided.push_back(event);
    caller_told_when_decided.push_back(listener_->done);
  }
  void OnRequestFinished(const RequestFinished& event) override {
    events.push_back(event);
    caller_told_when_finished.push_back(listener_->done);
  }
  std::vector<RequestFinished> decided;
  std::vector<RequestFinished> events;
  std::vector<int> caller_told_when_decided;
  std::vector<int> caller_told_when_finished;

 private:
  const RecordingListener* listener_;
};

v1::PartialCompletion PartialOf(const absl::Status& status) {
  v1::PartialCompletion partial;
  absl::optional<absl::Cord> payload =
      status.GetPayload("type.googleapis.com/turnpike.v1.PartialCompletion");
  if (payload.has_value()) partial.ParseFromString(std::string(*payload));
  return partial;
}

class AttemptDriverTest : public ::testing::Test {
 protected:
  // Providers a and b (OpenAI-compatible) and c (Anthropic: no embeddings); `route` is the JSON
  // of the one Route, capability "r".
  void Load(const std::string& route) {
    const std::string json = absl::StrCat(R"({"version":"v9","providers":[
      {"name":"a","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":"http://a.test/v1"},
      {"name":"b","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","compatFlavor":"COMPAT_FLAVOR_VLLM","baseUrl":"http://b.test/v1"},
      {"name":"c","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":"http://c.test","apiKeyEnv":"K"}],
      "prices":[{"provider":"a","model":"m","inputUsdMicrosPerMtok":"1000000",
                 "outputUsdMicrosPerMtok":"2000000"},
                {"provider":"b","model":"m","inputUsdMicrosPerMtok":"1000000",
                 "outputUsdMicrosPerMtok":"2000000"}],
      "routes":[)",
                                          route, "]}");
    auto snapshot = ParseSnapshotJson(json);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    auto config = RuntimeConfig::Build(
        *snapshot, [](const std::string&) { return std::string("key"); }, resilience_);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    ASSERT_NE(config_->FindRoute("r"), nullptr);
    v1::Message* m = messages_.Add();
    m->set_role(v1::ROLE_USER);
    m->set_content("say hello to the test suite");
  }

  ExchangeRequest Request(RequestMethod method, absl::Duration deadline) {
    ExchangeRequest r;
    r.config = config_;
    r.route = config_->FindRoute("r");
    r.method = method;
    r.request_id = "req-1";
    r.caller = "svc";
    r.end_user = "u1";
    r.deadline = deadline == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                      : clock_.MonotonicNow() + deadline;
    r.accepted = clock_.MonotonicNow();
    r.accepted_wall = clock_.Now();
    return r;
  }

  std::shared_ptr<ChatExchange> StartChat(bool stream = true,
                                          absl::Duration deadline = absl::InfiniteDuration()) {
    ChatRequest chat;
    chat.messages = &messages_;
    if (!tools_.empty()) chat.tools = &tools_;
    chat.max_tokens = 100;
    auto exchange = ChatExchange::Create(
        Request(stream ? RequestMethod::kStreamCompletion : RequestMethod::kComplete, deadline),
        std::move(chat), stream, &listener_, transport_, resilience_, &sink_);
    exchange->Start();
    transport_.RunPending();
    return exchange;
  }

  google::protobuf::RepeatedPtrField<v1::Tool> tools_;

  // The newest transfer answers 200 with `body` and ends.
  void Serve(const std::string& body) {
    const auto id = transport_.last().id;
    transport_.Respond(id, 200);
    EXPECT_EQ(transport_.Send(id, body), DataResult::kContinue);
    transport_.Finish(id);
  }
  void Fail(int http_status, const std::string& body = kServerError, int64_t retry_after_ms = 0) {
    const auto id = transport_.last().id;
    transport_.Respond(id, http_status, retry_after_ms);
    transport_.Send(id, body);
    transport_.Finish(id);
  }
  std::string HostOf(const FakeTransport::Transfer& t) {
    return t.request.url.substr(0, t.request.url.find(".test"));
  }

  SimulatedClock clock_;
  std::mt19937_64 gen_{7};
  Resilience resilience_{Resilience::Options(), clock_, gen_};
  FakeTransport transport_{clock_};
  RecordingListener listener_;
  RecordingSink sink_{&listener_};
  std::shared_ptr<const RuntimeConfig> config_;
  google::protobuf::RepeatedPtrField<v1::Message> messages_;
};

constexpr char kTwoTargets[] =
    R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}],
        "retry":{"maxAttempts":2,"maxAttemptsPerTarget":1}})";

TEST_F(AttemptDriverTest, SinksSeeTheOutcomeBeforeTheCallerSoHoldsAreBackForItsNextRequest) {
  // Admission settles in OnRequestDecided: had it run after the caller heard the outcome, the
  // caller's next request could still find the first one's worst-case hold in place.
  Load(kTwoTargets);
  StartChat();
  Serve(Chunk("Hi") + FinishChunks(12, 2));
  ASSERT_EQ(sink_.decided.size(), 1u);
  EXPECT_EQ(sink_.caller_told_when_decided[0], 0) << "decided before the caller was answered";
  EXPECT_EQ(sink_.decided[0].input_tokens, 12) << "with the usage to settle to";
  EXPECT_EQ(sink_.decided[0].cost_usd_micros, 16);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.caller_told_when_finished[0], 1) << "finished after the caller was answered";
}

TEST_F(AttemptDriverTest, StreamDeliversTextThenFinishAndEmitsOneEvent) {
  Load(kTwoTargets);
  StartChat();
  ASSERT_EQ(transport_.started(), 1);
  EXPECT_EQ(HostOf(transport_.last()), "http://a");
  Serve(Chunk("Hel") + Chunk("lo") + FinishChunks(12, 2));

  EXPECT_EQ(listener_.commits, 1);
  EXPECT_EQ(listener_.start.provider(), "a");
  EXPECT_EQ(listener_.start.request_id(), "req-1");
  EXPECT_EQ(listener_.text, "Hello");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.finish.usage().input_tokens(), 12);
  EXPECT_EQ(listener_.finish.usage().output_tokens(), 2);
  // 12 in at $1/M + 2 out at $2/M = 16 micro-dollars.
  EXPECT_EQ(listener_.finish.usage().cost_usd_micros(), 16);

  ASSERT_EQ(sink_.events.size(), 1u);
  const RequestFinished& e = sink_.events[0];
  EXPECT_EQ(e.method, RequestMethod::kStreamCompletion);
  EXPECT_EQ(e.request_id, "req-1");
  EXPECT_EQ(e.capability, "r");
  EXPECT_EQ(e.caller, "svc");
  EXPECT_EQ(e.end_user, "u1");
  EXPECT_EQ(e.config_version, "v9");
  EXPECT_EQ(e.provider, "a");
  EXPECT_EQ(e.model, "m");
  EXPECT_TRUE(e.status.ok());
  EXPECT_EQ(e.input_tokens, 12);
  EXPECT_EQ(e.output_tokens, 2);
  EXPECT_EQ(e.cost_usd_micros, listener_.finish.usage().cost_usd_micros());
  EXPECT_TRUE(e.cost_known);
  EXPECT_FALSE(e.usage_estimated);
  EXPECT_FALSE(e.partial);
  EXPECT_EQ(e.attempts.size(), 1);
  EXPECT_EQ(e.attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
  EXPECT_EQ(transport_.pending_timers(), 0u);
}

// A streamed tool call commits the request, reaches the listener piece by piece (the arguments'
// concatenation is the provider's text), is sent upstream as `tools`, and the start message and
// the event say the request used tools.
TEST_F(AttemptDriverTest, StreamedToolCallCommitsAndReachesTheListener) {
  Load(kTwoTargets);
  tools_.Add()->set_name("get_weather");
  StartChat();
  EXPECT_NE(transport_.last().request.body.find(R"("tools":[{"type":"function")"),
            std::string::npos)
      << transport_.last().request.body;
  Serve(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
      "\"call_1\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
      "{\"arguments\":\"{\\\"city\\\"\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
      "{\"arguments\":\": \\\"Oslo\\\"}\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
      FinishChunks(5, 7).substr(
          FinishChunks(5, 7).find("data: {\"id\":\"c\",\"object\":"
                                  "\"chat.completion.chunk\",\"choices\":[]")));
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.commits, 1);
  EXPECT_EQ(listener_.tool_fragments, 3);
  ASSERT_EQ(listener_.tool_calls.calls().size(), 1u);
  EXPECT_EQ(listener_.tool_calls.calls()[0].id(), "call_1");
  EXPECT_EQ(listener_.tool_calls.calls()[0].name(), "get_weather");
  EXPECT_EQ(listener_.tool_calls.calls()[0].arguments_json(), R"({"city": "Oslo"})");
  EXPECT_EQ(listener_.finish.finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
  ASSERT_EQ(listener_.start.features_size(), 1);
  EXPECT_EQ(listener_.start.features(0), v1::REQUEST_FEATURE_TOOLS);
  ASSERT_EQ(sink_.events.size(), 1u);
  ASSERT_EQ(sink_.events[0].features.size(), 1u);
  EXPECT_EQ(sink_.events[0].features[0], v1::REQUEST_FEATURE_TOOLS);
}

TEST_F(AttemptDriverTest, UnaryToolCallArrivesWhole) {
  Load(kTwoTargets);
  tools_.Add()->set_name("get_weather");
  StartChat(/*stream=*/false);
  Serve(R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[)"
        R"({"id":"call_9","type":"function","function":{"name":"get_weather","arguments":)"
        R"("{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}],)"
        R"("usage":{"prompt_tokens":5,"completion_tokens":7}})");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.tool_fragments, 1);
  ASSERT_EQ(listener_.tool_calls.calls().size(), 1u);
  EXPECT_EQ(listener_.tool_calls.calls()[0].arguments_json(), R"({"city":"Oslo"})");
}

TEST_F(AttemptDriverTest, FailoverBeforeTheFirstTokenIsTransparent) {
  Load(kTwoTargets);
  StartChat();
  Fail(500);
  // The planner moved on to b with no commit yet.
  ASSERT_EQ(transport_.started(), 2);
  EXPECT_EQ(HostOf(transport_.last()), "http://b");
  EXPECT_EQ(listener_.commits, 0);
  Serve(Chunk("ok") + FinishChunks(3, 1));
  EXPECT_EQ(listener_.commits, 1);
  EXPECT_EQ(listener_.start.provider(), "b");
  EXPECT_EQ(listener_.start.fallback_position(), 1);
  EXPECT_EQ(listener_.text, "ok");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok());
  ASSERT_EQ(listener_.finish.attempts_size(), 2);
  EXPECT_EQ(listener_.finish.attempts(0).provider(), "a");
  EXPECT_EQ(listener_.finish.attempts(0).disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  EXPECT_EQ(listener_.finish.attempts(1).disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].provider, "b");
}

TEST_F(AttemptDriverTest, FailureAfterTheFirstTokenEndsWithPartialUsageAndNoFailover) {
  Load(kTwoTargets);
  StartChat();
  const auto id = transport_.last().id;
  transport_.Respond(id, 200);
  transport_.Send(id, Chunk("partial answer"));
  transport_.Finish(id, absl::UnavailableError("connection reset"));

  EXPECT_EQ(transport_.started(), 1);  // committed: no failover
  EXPECT_EQ(listener_.text, "partial answer");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(listener_.status.message().find("interrupted"), std::string::npos) << listener_.status;
  const v1::PartialCompletion partial = PartialOf(listener_.status);
  // The provider reported no usage: an estimate, never zero (4 bytes a token, rounded up).
  EXPECT_EQ(partial.usage().output_tokens(), (std::string("partial answer").size() + 3) / 4);
  EXPECT_GT(partial.usage().input_tokens(), 0);
  EXPECT_EQ(partial.usage().cost_usd_micros(), listener_.finish.usage().cost_usd_micros());
  EXPECT_EQ(partial.attempts_size(), 1);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_TRUE(sink_.events[0].partial);
  EXPECT_TRUE(sink_.events[0].usage_estimated);
  EXPECT_EQ(sink_.events[0].output_tokens, partial.usage().output_tokens());
}

TEST_F(AttemptDriverTest, AServerThatReportsNoUsageIsMeteredWithAMarkedEstimate) {
  Load(kTwoTargets);
  StartChat();
  Serve(Chunk("twelve bytes") +
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
        "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(listener_.done, 1);
  ASSERT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.finish.usage().output_tokens(), 3);  // 12 bytes / 4
  EXPECT_GT(listener_.finish.usage().input_tokens(), 0);
  EXPECT_GT(listener_.finish.usage().cost_usd_micros(), 0);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_TRUE(sink_.events[0].usage_estimated);
  EXPECT_EQ(sink_.events[0].cost_usd_micros, listener_.finish.usage().cost_usd_micros());
}

TEST_F(AttemptDriverTest, NoTokenWithinTheFirstTokenTimeoutFailsOver) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"},{"provider":"b","model":"m"}],
           "retry":{"maxAttempts":2,"maxAttemptsPerTarget":1},"timeouts":{"firstTokenMs":1000}})");
  StartChat();
  const auto first = transport_.last().id;
  transport_.Respond(first, 200);
  // A role-only chunk and a keep-alive comment are bytes, not tokens.
  transport_.Send(first, ": ping\n\n");
  transport_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(transport_.started(), 1);
  transport_.Advance(absl::Milliseconds(1));
  // The first transfer was cancelled by the driver and b was tried at once.
  EXPECT_TRUE(transport_.transfers()[0]->done);
  EXPECT_EQ(transport_.transfers()[0]->completion.code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(transport_.started(), 2);
  EXPECT_EQ(transport_.last().options.first_byte_timeout, absl::Seconds(1));
  Serve(Chunk("late but fine") + FinishChunks(1, 1));
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok());
  EXPECT_EQ(listener_.start.provider(), "b");
  EXPECT_NE(listener_.finish.attempts(0).detail().find("no token within 1s"), std::string::npos)
      << listener_.finish.attempts(0).detail();
}

TEST_F(AttemptDriverTest, IdleStallAfterTextIsUnavailableWithTheRoutesIdleLimit) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "timeouts":{"idleMs":250}})");
  StartChat();
  // The transport enforces the idle limit the driver hands it.
  EXPECT_EQ(transport_.last().options.idle_timeout, absl::Milliseconds(250));
  const auto id = transport_.last().id;
  transport_.Respond(id, 200);
  transport_.Send(id, Chunk("so far"));
  transport_.Finish(id, absl::DeadlineExceededError("upstream stalled: no data for 250ms"));
  ASSERT_EQ(listener_.done, 1);
  // The caller's own deadline did not pass: an upstream timeout is UNAVAILABLE to it.
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(listener_.status.message().find("stalled"), std::string::npos);
  EXPECT_EQ(transport_.started(), 1);
}

TEST_F(AttemptDriverTest, CancelDuringABackoffEndsAtOnceWithoutAnotherAttempt) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "retry":{"maxAttempts":3}})");
  auto exchange = StartChat();
  Fail(429, R"({"error":{"message":"slow down","type":"rate_limit_error"}})", 5000);
  // The retry waits for retry-after: nothing started, a timer armed.
  EXPECT_EQ(transport_.started(), 1);
  EXPECT_EQ(listener_.done, 0);
  exchange->Cancel();
  transport_.RunPending();
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport_.pending_timers(), 0u);
  transport_.Advance(absl::Seconds(10));
  EXPECT_EQ(transport_.started(), 1);
  EXPECT_EQ(listener_.done, 1);
  EXPECT_EQ(sink_.events.size(), 1u);
}

TEST_F(AttemptDriverTest, ADeadlineShorterThanTheRetryAfterEndsNowWithRetryInfo) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "retry":{"maxAttempts":3}})");
  StartChat(/*stream=*/true, /*deadline=*/absl::Milliseconds(600));
  const absl::Time before = clock_.MonotonicNow();
  Fail(429, R"({"error":{"message":"slow down","type":"rate_limit_error"}})", 5000);
  // No wait past the deadline: the request ends now, and says when to come back.
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(clock_.MonotonicNow(), before);
  EXPECT_EQ(transport_.started(), 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kResourceExhausted) << listener_.status;
  EXPECT_TRUE(listener_.status.GetPayload("type.googleapis.com/google.rpc.RetryInfo").has_value());
}

TEST_F(AttemptDriverTest, AReaderThatStopsPausesTheTransferAndResumeDeliversTheRest) {
  Load(kTwoTargets);
  listener_.high_water = 10;
  auto exchange = StartChat();
  const auto id = transport_.last().id;
  transport_.Respond(id, 200);
  EXPECT_EQ(transport_.Send(id, Chunk("0123456789AB")), DataResult::kContinue);
  // The listener is over its high-water mark: the next bytes are refused, not buffered.
  const std::string rest = Chunk("more") + Chunk(" text");
  EXPECT_EQ(transport_.Send(id, rest), DataResult::kPause);
  EXPECT_EQ(listener_.text, "0123456789AB");
  EXPECT_EQ(transport_.Send(id, FinishChunks(5, 4)), DataResult::kPause);
  EXPECT_EQ(listener_.text, "0123456789AB");  // memory stays bounded while paused
  // The client reads; the call resumes the exchange, which resumes the transfer.
  listener_.queued = 0;
  listener_.high_water = SIZE_MAX;
  exchange->Resume();
  transport_.RunPending();
  EXPECT_EQ(transport_.resumes(), 1);
  EXPECT_EQ(listener_.text, "0123456789ABmore text");
  transport_.Finish(id);
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.finish.usage().output_tokens(), 4);
}

TEST_F(AttemptDriverTest, CancelMidStreamCancelsTheTransferAndMetersThePartialStream) {
  Load(kTwoTargets);
  auto exchange = StartChat();
  const auto id = transport_.last().id;
  transport_.Respond(id, 200);
  transport_.Send(id, Chunk("abcd"));
  exchange->Cancel();
  transport_.RunPending();
  EXPECT_TRUE(transport_.last().done);
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport_.started(), 1);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_TRUE(sink_.events[0].partial);
  EXPECT_EQ(sink_.events[0].output_tokens, 1);
}

TEST_F(AttemptDriverTest, EveryTargetFailedServesTheDegradationResponse) {
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],"retry":{"maxAttempts":1},
           "degradation":{"mode":"DEGRADATION_MODE_STATIC_RESPONSE","staticResponse":"later"}})");
  StartChat();
  Fail(503);
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok());
  EXPECT_TRUE(listener_.start.degraded());
  EXPECT_EQ(listener_.text, "later");
  EXPECT_EQ(listener_.finish.usage().cost_usd_micros(), 0);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_TRUE(sink_.events[0].degraded);
  EXPECT_EQ(sink_.events[0].attempts.size(), 1);
}

TEST_F(AttemptDriverTest, AllTargetsUnavailableIsUnavailableNamingEveryAttempt) {
  Load(kTwoTargets);
  StartChat();
  Fail(500);
  Fail(503);
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable) << listener_.status;
  EXPECT_NE(listener_.status.message().find("all 2 targets of \"r\" failed; last: b: "),
            std::string::npos)
      << listener_.status;
  EXPECT_EQ(PartialOf(listener_.status).attempts_size(), 2);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].provider, "b");
}

TEST_F(AttemptDriverTest, AnInvalidRequestAfterFailoverKeepsItsCode) {
  Load(kTwoTargets);
  StartChat();
  Fail(500);
  Fail(400, R"({"error":{"message":"bad","type":"invalid_request_error"}})");
  ASSERT_EQ(listener_.done, 1);
  // The last target's 400 is the caller's error, whatever the first did.
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kInvalidArgument) << listener_.status;
  EXPECT_EQ(PartialOf(listener_.status).attempts_size(), 2);
  EXPECT_TRUE(
      listener_.status.GetPayload("type.googleapis.com/turnpike.v1.ProviderError").has_value());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status.code(), listener_.status.code());
  EXPECT_FALSE(sink_.events[0].partial);
  EXPECT_EQ(sink_.events[0].cost_usd_micros, 0);
}

TEST_F(AttemptDriverTest, UnaryCollectsTheReplyAndSendsItOnce) {
  Load(kTwoTargets);
  StartChat(/*stream=*/false);
  Serve(R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",
        "content":"whole reply"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,
        "completion_tokens":2,"total_tokens":6}})");
  ASSERT_EQ(listener_.done, 1);
  EXPECT_TRUE(listener_.status.ok()) << listener_.status;
  EXPECT_EQ(listener_.text, "whole reply");
  EXPECT_EQ(listener_.finish.usage().input_tokens(), 4);
  EXPECT_EQ(sink_.events[0].method, RequestMethod::kComplete);
}

TEST_F(AttemptDriverTest, AStoppedTransportAnswersUnavailable) {
  Load(kTwoTargets);
  transport_.Stop();
  StartChat();
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink_.events.size(), 1u);
}

TEST_F(AttemptDriverTest, AClientDeadlineAlreadyPastMakesNoAttempt) {
  Load(kTwoTargets);
  ChatRequest chat;
  chat.messages = &messages_;
  ExchangeRequest r = Request(RequestMethod::kStreamCompletion, absl::ZeroDuration());
  auto exchange = ChatExchange::Create(std::move(r), std::move(chat), true, &listener_, transport_,
                                       resilience_, &sink_);
  exchange->Start();
  transport_.RunPending();
  EXPECT_EQ(transport_.started(), 0);
  ASSERT_EQ(listener_.done, 1);
  EXPECT_EQ(listener_.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(AttemptDriverTest, EmbeddingsSkipATargetWithoutAnEmbeddingsApiAndMeterTheReply) {
  Load(R"({"capability":"r","targets":[{"provider":"c","model":"claude"},
                                       {"provider":"a","model":"m"}],"retry":{"maxAttempts":2}})");
  v1::EmbedRequest embed;
  embed.set_capability("r");
  embed.add_inputs("one");
  embed.add_inputs("two");
  absl::Status status = absl::UnknownError("not called");
  v1::EmbedResponse response;
  int calls = 0;
  auto exchange = EmbedExchange::Create(
      Request(RequestMethod::kEmbed, absl::InfiniteDuration()), &embed,
      [&](const absl::Status& s, const v1::EmbedResponse& r) {
        ++calls;
        status = s;
        response = r;
      },
      transport_, resilience_, &sink_);
  exchange->Start();
  transport_.RunPending();
  // The Anthropic target cannot embed: no transfer for it, straight to a.
  ASSERT_EQ(transport_.started(), 1);
  EXPECT_EQ(HostOf(transport_.last()), "http://a");
  Serve(R"({"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5]},
        {"object":"embedding","index":0,"embedding":[0.25]}],"model":"m",
        "usage":{"prompt_tokens":8,"total_tokens":8}})");
  ASSERT_EQ(calls, 1);
  EXPECT_TRUE(status.ok()) << status;
  ASSERT_EQ(response.embeddings_size(), 2);
  EXPECT_FLOAT_EQ(response.embeddings(0).values(0), 0.25f);
  EXPECT_EQ(response.usage().input_tokens(), 8);
  EXPECT_EQ(response.usage().cost_usd_micros(), 8);
  EXPECT_EQ(response.provider(), "a");
  ASSERT_EQ(response.attempts_size(), 2);
  EXPECT_EQ(response.attempts(0).disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].method, RequestMethod::kEmbed);
  EXPECT_EQ(sink_.events[0].input_tokens, 8);
  EXPECT_EQ(sink_.events[0].cost_usd_micros, 8);
}

// ---- Routing rules (docs/routing.md). ----

constexpr char kLeastLatency[] =
    R"({"capability":"r","targetSelection":"TARGET_SELECTION_LEAST_LATENCY",
        "targets":[{"provider":"a","model":"m","tier":0},{"provider":"b","model":"m","tier":0}]})";

class LeastLatencyTest : public AttemptDriverTest {
 protected:
  // Serves `n` requests; returns how many went to `host` ("http://a" or "http://b").
  int Run(int n, absl::Duration delay_a, absl::Duration delay_b, const std::string& host) {
    int count = 0;
    for (int i = 0; i < n; ++i) {
      StartChat();
      const std::string served = HostOf(transport_.last());
      clock_.Advance(served == "http://a" ? delay_a : delay_b);
      Serve(Chunk("ok") + FinishChunks(3, 1));
      EXPECT_EQ(listener_.start.variant(), "");
      count += served == host ? 1 : 0;
    }
    return count;
  }
};

TEST_F(LeastLatencyTest, TrafficMovesToTheFasterTargetAndBackWhenItSlows) {
  Load(kLeastLatency);
  // b answers in 50 ms, a in 400 ms. Without figures the weights split traffic; within 20
  // requests both have figures and b takes most of it, a keeping the exploration share.
  Run(20, absl::Milliseconds(400), absl::Milliseconds(50), "http://b");
  const int to_b = Run(200, absl::Milliseconds(400), absl::Milliseconds(50), "http://b");
  std::printf("b fast: b served %d of 200 requests\n", to_b);
  EXPECT_GE(to_b, 170);  // ~95 %: 90 % by latency + half of the 10 % by weight
  EXPECT_LT(to_b, 200);  // a still gets some, so its figure stays fresh
  // Now b slows to 800 ms and a speeds up: within 20 requests traffic is back on a.
  Run(20, absl::Milliseconds(50), absl::Milliseconds(800), "http://a");
  const int to_a = Run(200, absl::Milliseconds(50), absl::Milliseconds(800), "http://a");
  std::printf("b slowed: a served %d of 200 requests\n", to_a);
  EXPECT_GE(to_a, 170);
  EXPECT_LT(to_a, 200);
}

TEST_F(LeastLatencyTest, WithoutFiguresWeightsDecide) {
  Load(R"({"capability":"r","targetSelection":"TARGET_SELECTION_LEAST_LATENCY",
           "targets":[{"provider":"a","model":"m","tier":0,"weight":1},
                      {"provider":"b","model":"m","tier":0,"weight":3}]})");
  // Every request fails before its first token: no figure is ever recorded.
  int to_b = 0;
  for (int i = 0; i < 400; ++i) {
    StartChat();
    to_b += HostOf(transport_.last()) == "http://b" ? 1 : 0;
    Fail(400, R"({"error":{"message":"bad","type":"invalid_request_error"}})");
  }
  EXPECT_GE(to_b, 260);  // 75 % ± 10 %
  EXPECT_LE(to_b, 340);
}

TEST_F(LeastLatencyTest, AnOpenCircuitIsSkippedWhateverItsFigure) {
  Load(R"({"capability":"r","targetSelection":"TARGET_SELECTION_LEAST_LATENCY",
           "circuitBreaker":{"consecutiveFailures":1,"baseEjectionMs":600000,"maxEjectionMs":600000},
           "retry":{"maxAttempts":2,"maxAttemptsPerTarget":1},
           "targets":[{"provider":"a","model":"m","tier":0},{"provider":"b","model":"m","tier":0}]})");
  Run(30, absl::Milliseconds(400), absl::Milliseconds(50), "http://b");
  // b, the fast one, fails once and its circuit opens: every request now goes to a.
  StartChat();
  while (HostOf(transport_.last()) != "http://b") {
    clock_.Advance(absl::Milliseconds(400));
    Serve(Chunk("ok") + FinishChunks(3, 1));
    StartChat();
  }
  Fail(500);
  ASSERT_EQ(HostOf(transport_.last()), "http://a");  // failed over within the request
  Serve(Chunk("ok") + FinishChunks(3, 1));
  EXPECT_EQ(Run(50, absl::Milliseconds(400), absl::Milliseconds(50), "http://a"), 50);
}

TEST_F(AttemptDriverTest, AVariantsFailuresFailOverWithinTheVariantsChainFirst) {
  // The variant's chain is b then a; the route's own is a. Every request id lands in the
  // variant (100 %).
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "retry":{"maxAttempts":3,"maxAttemptsPerTarget":1},
           "variants":[{"name":"cand","percent":100,
                        "targets":[{"provider":"b","model":"m"},{"provider":"a","model":"m"}]}]})");
  ChatRequest chat;
  chat.messages = &messages_;
  chat.max_tokens = 100;
  ExchangeRequest request = Request(RequestMethod::kStreamCompletion, absl::InfiniteDuration());
  request.route =
      &SelectRoute(*request.route, request.latency_class, request.caller, "", request.request_id);
  ASSERT_EQ(request.route->variant, "cand");
  auto exchange = ChatExchange::Create(std::move(request), std::move(chat), true, &listener_,
                                       transport_, resilience_, &sink_);
  exchange->Start();
  transport_.RunPending();
  ASSERT_EQ(HostOf(transport_.last()), "http://b");
  Fail(500);
  ASSERT_EQ(transport_.started(), 2);
  EXPECT_EQ(HostOf(transport_.last()), "http://a");  // the variant's fallback, not the route's
  Serve(Chunk("ok") + FinishChunks(3, 1));
  EXPECT_EQ(listener_.start.variant(), "cand");
  EXPECT_EQ(listener_.start.fallback_position(), 1);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].variant, "cand");
  EXPECT_EQ(sink_.events[0].tier_chain, "");
  EXPECT_EQ(sink_.events[0].attempts.size(), 2);
}

TEST_F(AttemptDriverTest, EachLatencyClassGetsItsChainAndTimeouts) {
  // Batch requests go to b with a long first-token limit; interactive ones keep the route's a
  // with a short one.
  Load(R"({"capability":"r","targets":[{"provider":"a","model":"m"}],
           "latencyClasses":{
             "interactive":{"timeouts":{"firstTokenMs":2000,"totalMs":10000}},
             "batch":{"timeouts":{"firstTokenMs":120000,"totalMs":600000},
                      "targets":[{"provider":"b","model":"m"}]}}})");
  const auto serve = [&](LatencyClass latency_class) {
    ChatRequest chat;
    chat.messages = &messages_;
    chat.max_tokens = 100;
    ExchangeRequest request = Request(RequestMethod::kStreamCompletion, absl::InfiniteDuration());
    request.latency_class = latency_class;
    request.route =
        &SelectRoute(*request.route, request.latency_class, request.caller, "", request.request_id);
    auto exchange = ChatExchange::Create(std::move(request), std::move(chat), true, &listener_,
                                         transport_, resilience_, &sink_);
    exchange->Start();
    transport_.RunPending();
  };
  serve(LatencyClass::kBatch);
  EXPECT_EQ(HostOf(transport_.last()), "http://b");
  EXPECT_EQ(transport_.last().options.first_byte_timeout, absl::Seconds(120));
  EXPECT_EQ(transport_.last().options.total_timeout, absl::Seconds(600));
  Serve(Chunk("ok") + FinishChunks(3, 1));
  EXPECT_EQ(listener_.start.latency_class(), v1::LATENCY_CLASS_BATCH);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].latency_class, LatencyClass::kBatch);

  serve(LatencyClass::kInteractive);
  EXPECT_EQ(HostOf(transport_.last()), "http://a");
  EXPECT_EQ(transport_.last().options.first_byte_timeout, absl::Seconds(2));
  EXPECT_EQ(transport_.last().options.total_timeout, absl::Seconds(10));
  Serve(Chunk("ok") + FinishChunks(3, 1));
  EXPECT_EQ(listener_.start.latency_class(), v1::LATENCY_CLASS_INTERACTIVE);
  ASSERT_EQ(sink_.events.size(), 2u);
  EXPECT_EQ(sink_.events[1].latency_class, LatencyClass::kInteractive);
}

}  // namespace
}  // namespace turnpike
