// The resilience fault matrix (issue 5): real gateway and fake-provider processes, faults
// injected per request, and for each one the exact number of upstream attempts (counted at the
// fake provider), the attempt list the gateway reports (disposition, outcome, the wait it chose),
// and the final outcome the client sees. Two fake providers play the primary and the secondary
// target so each side is counted on its own.
//
// Timing: these processes share a loaded CI machine, so no test asserts "finished in under N ms".
// "It waited at least X" is a lower bound and is checked on the clock. "It did not wait for X" is
// checked by what the gateway reports (the backoff it recorded, a timeout outcome, a status that a
// wait would have turned into DEADLINE_EXCEEDED) or against X itself with a margin of seconds.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::milliseconds;
using v1::CompletionService;
using v1::StreamCompletionRequest;
using v1::StreamCompletionResponse;
using Clock = std::chrono::steady_clock;

// The first-byte delay of the "slow" provider and of hung probes: far beyond the 300 ms first-token
// timeouts, so "the gateway gave up on its own timer" and "it waited for the reply" differ by
// seconds, not by scheduling noise.
constexpr milliseconds kHung(10000);

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

struct Result {
  grpc::Status status;
  std::vector<StreamCompletionResponse> messages;
  milliseconds elapsed{0};
  std::string text() const {
    std::string t;
    for (const auto& m : messages) {
      if (m.has_delta()) t += m.delta().text();
    }
    return t;
  }
  const v1::CompletionStart& start() const { return messages.front().start(); }
  const v1::CompletionFinish& finish() const { return messages.back().finish(); }
  // The attempt list: from the finish on success, from PartialCompletion on error.
  std::vector<v1::Attempt> attempts() const {
    std::vector<v1::Attempt> out;
    if (status.ok()) {
      out.assign(finish().attempts().begin(), finish().attempts().end());
    } else if (auto partial = Detail<v1::PartialCompletion>(status)) {
      out.assign(partial->attempts().begin(), partial->attempts().end());
    }
    return out;
  }
};

std::string Describe(const Result& r) {
  std::string s = absl::StrCat("status=", r.status.error_code(), " ", r.status.error_message(),
                               " elapsed=", r.elapsed.count(), "ms attempts:");
  for (const v1::Attempt& a : r.attempts()) {
    absl::StrAppend(&s, "\n  ", a.provider(), "/", a.model(), " #", a.attempt(), " ", a.outcome(),
                    " http=", a.http_status(),
                    " disp=", v1::AttemptDisposition_Name(a.disposition()),
                    " backoff=", a.backoff_ms(), " reason=", a.reason(), " detail=", a.detail());
  }
  return s;
}

class ResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<FakeProvider>(primary_dir_, std::vector<std::string>{"--chunks=5"});
    secondary_ =
        std::make_unique<FakeProvider>(secondary_dir_, std::vector<std::string>{"--chunks=5"});
    ASSERT_GT(primary_->port(), 0) << primary_->process().Log();
    ASSERT_GT(secondary_->port(), 0) << secondary_->process().Log();
    gateway_ = std::make_unique<Gateway>(primary_dir_, Config());
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    stub_ = CompletionService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  std::string Config() const {
    const std::string p1 = absl::StrCat("http://127.0.0.1:", primary_->port());
    const std::string p2 = absl::StrCat("http://127.0.0.1:", secondary_->port());
    // Short timeouts and backoff keep the matrix fast; the policy is the same at any scale.
    const std::string fast =
        R"("timeouts":{"firstTokenMs":400,"idleMs":400},"retry":{"baseBackoffMs":20,"maxBackoffMs":100})";
    return absl::StrCat(
        R"({"version":"res-1","providers":[
      {"name":"a","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
        p1, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
      {"name":"anth","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":")",
        p1, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
      {"name":"slow","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
        p1, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY","headers":{"x-fake-first-byte-delay-ms":")",
        kHung.count(), R"("}},
      {"name":"b","kind":"PROVIDER_KIND_ANTHROPIC","baseUrl":")",
        p2, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"},
      {"name":"dead","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:1/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}
    ],"routes":[
      {"capability":"single","targets":[{"provider":"a","model":"m1"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"anthropic","targets":[{"provider":"anth","model":"claude"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"chain","targets":[{"provider":"a","model":"m2"},{"provider":"b","model":"claude"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"dead","targets":[{"provider":"dead","model":"m"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"dead-chain","targets":[{"provider":"dead","model":"m"},{"provider":"b","model":"claude"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"slow-chain","targets":[{"provider":"slow","model":"m"},{"provider":"b","model":"claude"}],"allowUnauthenticated":true,
       "timeouts":{"firstTokenMs":300}},
      {"capability":"breaker","targets":[{"provider":"a","model":"brk"},{"provider":"b","model":"claude"}],"allowUnauthenticated":true,
       "retry":{"maxAttemptsPerTarget":1},
       "circuitBreaker":{"consecutiveFailures":3,"baseEjectionMs":600,"maxEjectionMs":5000,"probeTimeoutMs":300}},
      {"capability":"storm","targets":[{"provider":"a","model":"storm"}],"allowUnauthenticated":true,)",
        fast, R"(},
      {"capability":"patient","targets":[{"provider":"a","model":"patient"}],"allowUnauthenticated":true,
       "retry":{"baseBackoffMs":2000,"maxBackoffMs":2000}},
      {"capability":"full","targets":[{"provider":"a","model":"full"},{"provider":"b","model":"full"}],"allowUnauthenticated":true,
       "retry":{"baseBackoffMs":20,"maxBackoffMs":100},
       "cache":{"mode":"CACHE_MODE_FALLBACK","ttlMs":300},
       "degradation":{"mode":"DEGRADATION_MODE_STATIC_RESPONSE","staticResponse":"The assistant is busy; please try again in a minute."}},
      {"capability":"first","targets":[{"provider":"a","model":"first"}],"allowUnauthenticated":true,
       "cache":{"mode":"CACHE_MODE_FIRST"}},
      {"capability":"strict","targets":[{"provider":"a","model":"strict"}],"allowUnauthenticated":true,
       "degradation":{"mode":"DEGRADATION_MODE_UNAVAILABLE"}}
    ]})");
  }

  static StreamCompletionRequest Request(const std::string& capability, const std::string& text) {
    StreamCompletionRequest request;
    request.set_capability(capability);
    auto* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    return request;
  }

  Result Stream(const StreamCompletionRequest& request,
                milliseconds deadline = milliseconds(20000)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    Result result;
    const auto begin = Clock::now();
    auto reader = stub_->StreamCompletion(&ctx, request);
    StreamCompletionResponse response;
    while (reader->Read(&response)) result.messages.push_back(response);
    result.status = reader->Finish();
    result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
    return result;
  }
  Result Stream(const std::string& capability, const std::string& text,
                milliseconds deadline = milliseconds(20000)) {
    return Stream(Request(capability, text), deadline);
  }

  // Queues faults at a fake provider, consumed one per upstream request.
  static void Queue(FakeProvider& fake, const std::string& json) {
    ASSERT_EQ(HttpRequest("POST", fake.base() + "/_fake/faults", json).status, 200) << json;
  }
  static void ClearQueue(FakeProvider& fake) {
    HttpRequest("DELETE", fake.base() + "/_fake/faults");
  }
  long PrimaryRequests() { return FakeStat(primary_->port(), "requests"); }
  long SecondaryRequests() { return FakeStat(secondary_->port(), "requests"); }

  TempDir primary_dir_;
  TempDir secondary_dir_;
  std::unique_ptr<FakeProvider> primary_;
  std::unique_ptr<FakeProvider> secondary_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<CompletionService::Stub> stub_;
};

// ---- 429 with retry-after -------------------------------------------------------------------

TEST_F(ResilienceTest, RateLimitWithRetryAfterIsWaitedOutThenRetried) {
  Queue(*primary_, R"([{"status":429,"retry_after":"1"}])");
  Result r = Stream("single", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  EXPECT_GE(r.elapsed, milliseconds(1000)) << Describe(r);  // retry-after honoured
  EXPECT_EQ(r.start().attempt(), 2);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u) << Describe(r);
  EXPECT_EQ(attempts[0].http_status(), 429);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  // The wait the gateway chose is the retry-after itself (the route's own backoff, at most
  // 100 ms, is shorter): not less, and not some longer wait on top of it.
  EXPECT_EQ(attempts[0].backoff_ms(), 1000) << Describe(r);
  EXPECT_EQ(attempts[1].disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
}

TEST_F(ResilienceTest, RateLimitPastTheDeadlineFailsOverAtOnce) {
  Queue(*primary_, R"([{"status":429,"retry_after":"5"}])");
  // The client allows 2 s, less than the 5 s retry-after: a reply at all (rather than
  // DEADLINE_EXCEEDED) shows the gateway did not wait for the retry-after before failing over.
  Result r = Stream("chain", "hello", milliseconds(2000));
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(SecondaryRequests(), 1);
  EXPECT_EQ(r.start().provider(), "b");
  EXPECT_EQ(r.start().fallback_position(), 1);
  ASSERT_EQ(r.attempts().size(), 2u) << Describe(r);
  EXPECT_EQ(r.attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  EXPECT_EQ(r.attempts()[0].http_status(), 429);
  EXPECT_EQ(r.attempts()[1].disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
}

TEST_F(ResilienceTest, RateLimitPastTheDeadlineWithNoFallbackReturnsRetryInfoAtOnce) {
  // As above: RESOURCE_EXHAUSTED rather than DEADLINE_EXCEEDED within the 2 s the client allows
  // means the gateway answered instead of sleeping; the attempt says it decided not to wait.
  Result r = Stream("single", "hello [[fake status=429 retry_after=5]]", milliseconds(2000));
  ASSERT_EQ(r.status.error_code(), grpc::RESOURCE_EXHAUSTED) << Describe(r);
  ASSERT_EQ(r.attempts().size(), 1u) << Describe(r);
  EXPECT_EQ(r.attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_FINAL);
  EXPECT_NE(r.attempts()[0].reason().find("would pass the deadline"), std::string::npos)
      << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  auto retry = Detail<google::rpc::RetryInfo>(r.status);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 5);
  // The upstream now cools down: the next request does not reach it before its deadline.
  Result again = Stream("single", "hello again", milliseconds(1000));
  EXPECT_EQ(again.status.error_code(), grpc::UNAVAILABLE) << Describe(again);
  EXPECT_EQ(PrimaryRequests(), 1);
  ASSERT_TRUE(Detail<google::rpc::RetryInfo>(again.status).has_value());
  EXPECT_EQ(again.attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
}

TEST_F(ResilienceTest, QuotaExhaustedIsNeverRetried) {
  Result r = Stream("single", "hi [[fake status=429 error_type=insufficient_quota]]");
  EXPECT_EQ(r.status.error_code(), grpc::FAILED_PRECONDITION) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_FALSE(Detail<google::rpc::RetryInfo>(r.status).has_value());
}

TEST_F(ResilienceTest, DegradationModeUnavailableAnswersUnavailableWhateverTheCause) {
  Result quota = Stream("strict", "hi [[fake status=429 error_type=insufficient_quota]]");
  EXPECT_EQ(quota.status.error_code(), grpc::UNAVAILABLE) << Describe(quota);
  ASSERT_TRUE(Detail<v1::ProviderError>(quota.status).has_value());
  EXPECT_EQ(Detail<v1::ProviderError>(quota.status)->http_status(), 429);
  // The caller's own mistakes keep their code.
  Result bad = Stream("strict", "hi [[fake status=400]]");
  EXPECT_EQ(bad.status.error_code(), grpc::INVALID_ARGUMENT) << Describe(bad);
}

TEST_F(ResilienceTest, InvalidRequestIsNeverRetriedOrFailedOver) {
  Result r = Stream("chain", "hi [[fake status=400]]");
  EXPECT_EQ(r.status.error_code(), grpc::INVALID_ARGUMENT) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(SecondaryRequests(), 0);
}

// ---- 500, 503, 529 ---------------------------------------------------------------------------

struct StatusCase {
  std::string name;
  std::string capability;
  int http_status;
};

class ServerErrors : public ResilienceTest, public ::testing::WithParamInterface<StatusCase> {};

TEST_P(ServerErrors, TransientFailureIsRetriedOnceAfterBackoff) {
  Queue(*primary_, absl::StrCat(R"([{"status":)", GetParam().http_status, "}]"));
  Result r = Stream(GetParam().capability, "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].http_status(), GetParam().http_status);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  // The only wait between the attempts is the backoff the gateway chose and reports.
  EXPECT_LT(attempts[0].backoff_ms(), 20) << Describe(r);  // first retry: U(0, base)
  EXPECT_EQ(r.text(), "Hello from the fake provider");
}

TEST_P(ServerErrors, PersistentFailureStopsAfterTwoAttempts) {
  Result r = Stream(GetParam().capability,
                    absl::StrCat("hello [[fake status=", GetParam().http_status, "]]"));
  ASSERT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  auto provider_error = Detail<v1::ProviderError>(r.status);
  ASSERT_TRUE(provider_error.has_value());
  EXPECT_EQ(provider_error->http_status(), GetParam().http_status);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1].disposition(), v1::ATTEMPT_DISPOSITION_FINAL);
  EXPECT_NE(attempts[1].reason().find("2 attempts on this target"), std::string::npos)
      << Describe(r);
}

INSTANTIATE_TEST_SUITE_P(Matrix, ServerErrors,
                         ::testing::Values(StatusCase{"Http500", "single", 500},
                                           StatusCase{"Http503", "single", 503},
                                           StatusCase{"Http529", "anthropic", 529}),
                         [](const auto& info) { return info.param.name; });

TEST_F(ResilienceTest, PrimaryExhaustedFailsOverToTheSecondary) {
  Queue(*primary_, R"([{"status":503},{"status":503}])");
  Result r = Stream("chain", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  EXPECT_EQ(SecondaryRequests(), 1);
  EXPECT_EQ(r.start().provider(), "b");
  EXPECT_EQ(r.start().fallback_position(), 1);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  EXPECT_EQ(attempts[1].disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  EXPECT_EQ(attempts[2].disposition(), v1::ATTEMPT_DISPOSITION_SERVED);
}

// ---- Connection refused, resets -------------------------------------------------------------

TEST_F(ResilienceTest, ConnectionRefusedFailsOverAtOnce) {
  Result r = Stream("dead-chain", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(SecondaryRequests(), 1);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].provider(), "dead");
  EXPECT_EQ(attempts[0].http_status(), 0);
  // Ended by the refused connect, not by waiting out the 400 ms first-token timeout, and not
  // retried on the dead target first (a failover step has no delay).
  EXPECT_EQ(attempts[0].outcome(), "UNAVAILABLE") << Describe(r);
  EXPECT_EQ(attempts[0].attempt(), 1);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
  EXPECT_NE(attempts[0].reason().find("connect failure"), std::string::npos) << Describe(r);
}

TEST_F(ResilienceTest, ConnectionRefusedOnTheOnlyTargetIsRetriedOnce) {
  Result r = Stream("dead", "hello");
  ASSERT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u) << Describe(r);
  // Each attempt ends on the refused connect (no first-token timeout), and the one wait between
  // them is the reported first-retry backoff, U(0, 20 ms).
  EXPECT_EQ(attempts[0].outcome(), "UNAVAILABLE") << Describe(r);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  EXPECT_LT(attempts[0].backoff_ms(), 20) << Describe(r);
  EXPECT_EQ(attempts[1].outcome(), "UNAVAILABLE") << Describe(r);
  EXPECT_EQ(attempts[1].disposition(), v1::ATTEMPT_DISPOSITION_FINAL);
}

TEST_F(ResilienceTest, ResetBeforeTheFirstByteIsRetried) {
  Queue(*primary_, R"([{"reset_after_chunks":0}])");
  Result r = Stream("single", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  EXPECT_EQ(r.text(), "Hello from the fake provider");
  EXPECT_EQ(r.attempts()[0].outcome(), "UNAVAILABLE");
}

TEST_F(ResilienceTest, ResetMidStreamEndsTheStreamWithPartialUsage) {
  Result r = Stream("chain", "hello [[fake reset_after_chunks=2]]");
  ASSERT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);  // committed: no retry, no failover
  EXPECT_EQ(SecondaryRequests(), 0);
  EXPECT_FALSE(r.text().empty());
  auto partial = Detail<v1::PartialCompletion>(r.status);
  ASSERT_TRUE(partial.has_value());
  EXPECT_GT(partial->usage().output_tokens(), 0);
  EXPECT_GT(partial->usage().input_tokens(), 0);
  ASSERT_EQ(partial->attempts_size(), 1);
  EXPECT_NE(partial->attempts(0).reason().find("already started"), std::string::npos);
}

// ---- Timeouts --------------------------------------------------------------------------------

TEST_F(ResilienceTest, SlowFirstBytePastTheFirstTokenTimeoutFailsOver) {
  Result r = Stream("slow-chain", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_GE(r.elapsed, milliseconds(300)) << Describe(r);  // the first-token timeout
  // Did not wait for the slow reply: the gateway's own timer ended the attempt (the outcome), the
  // secondary served, and all of it well before the reply was due.
  EXPECT_LT(r.elapsed, kHung) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(SecondaryRequests(), 1);
  EXPECT_EQ(r.start().provider(), "b");
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome(), "DEADLINE_EXCEEDED");
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_FAILED_OVER);
}

TEST_F(ResilienceTest, IdleStallMidStreamEndsTheStream) {
  Result r = Stream("single", "hello [[fake stall_after_chunks=2]]");
  ASSERT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  // "stalled" is the gateway's idle timer: the fake holds the stream for 60 s and the client
  // allows 20 s, so neither of them ended it.
  EXPECT_NE(r.status.error_message().find("stalled"), std::string::npos) << Describe(r);
  EXPECT_GE(r.elapsed, milliseconds(400));  // the idle timeout
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(r.text(), "Hello from");
}

// ---- Bad streams -----------------------------------------------------------------------------

TEST_F(ResilienceTest, MalformedSseAfterTheFirstTokenEndsTheStreamAsInternal) {
  Result r = Stream("chain", "hello [[fake malformed=1]]");
  ASSERT_EQ(r.status.error_code(), grpc::INTERNAL) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(SecondaryRequests(), 0);
  EXPECT_FALSE(r.text().empty());
}

TEST_F(ResilienceTest, ErrorEventBeforeContentIsRetried) {
  Queue(*primary_, R"([{"stream_error_after":0}])");
  Result r = Stream("anthropic", "hello");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 2);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].http_status(), 200);  // the error came inside a 200 stream
  EXPECT_EQ(attempts[0].outcome(), "UNAVAILABLE");
  EXPECT_NE(attempts[0].detail().find("overloaded"), std::string::npos) << Describe(r);
}

TEST_F(ResilienceTest, ErrorEventAfterContentEndsTheStream) {
  Result r = Stream("anthropic", "hello [[fake stream_error_after=1]]");
  ASSERT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  EXPECT_EQ(PrimaryRequests(), 1);
  EXPECT_EQ(r.text(), "Hello");
  ASSERT_TRUE(Detail<v1::PartialCompletion>(r.status).has_value());
}

// ---- Circuit breaker -------------------------------------------------------------------------

TEST_F(ResilienceTest, BreakerOpensAfterNFailuresAndRecoversThroughHalfOpen) {
  Queue(*primary_, R"([{"status":500},{"status":500},{"status":500}])");
  auto opened = Clock::now();  // no later than the moment the circuit opens
  for (int i = 0; i < 3; ++i) {
    opened = Clock::now();
    Result r = Stream("breaker", "hello");
    ASSERT_TRUE(r.status.ok()) << Describe(r);
    EXPECT_EQ(r.start().provider(), "b");
  }
  EXPECT_EQ(PrimaryRequests(), 3);
  // Open: a is skipped, not called.
  Result skipped = Stream("breaker", "hello");
  ASSERT_TRUE(skipped.status.ok()) << Describe(skipped);
  EXPECT_EQ(PrimaryRequests(), 3);
  ASSERT_GE(skipped.attempts().size(), 2u);
  EXPECT_EQ(skipped.attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED);
  EXPECT_NE(skipped.attempts()[0].reason().find("circuit open"), std::string::npos)
      << Describe(skipped);
  // Keep sending: once the ejection (600 ms) is over a probe goes to a, succeeds and closes it.
  Result probe;
  ASSERT_TRUE(WaitFor(
      [&] {
        probe = Stream("breaker", "hello");
        return probe.status.ok() && probe.start().provider() == "a";
      },
      milliseconds(5000)))
      << Describe(probe);
  EXPECT_GE(Clock::now() - opened, milliseconds(600));
  EXPECT_EQ(PrimaryRequests(), 4);
  Result closed = Stream("breaker", "hello");
  EXPECT_EQ(closed.start().provider(), "a") << Describe(closed);
  EXPECT_EQ(closed.attempts().size(), 1u);
}

TEST_F(ResilienceTest, AHungProbeTimesOutFailsOverAndReopensTheCircuit) {
  Queue(*primary_,
        absl::StrCat(R"([{"status":500},{"status":500},{"status":500},{"first_byte_delay_ms":)",
                     kHung.count(), "}]"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Stream("breaker", "hello").status.ok());
  Result probe;
  ASSERT_TRUE(WaitFor(
      [&] {
        probe = Stream("breaker", "hello");
        return PrimaryRequests() == 4;  // the probe went out
      },
      milliseconds(5000)));
  ASSERT_TRUE(probe.status.ok()) << Describe(probe);
  EXPECT_EQ(probe.start().provider(), "b");  // the probe timed out and the request failed over
  EXPECT_GE(probe.elapsed, milliseconds(300)) << Describe(probe);  // the probe timeout
  EXPECT_LT(probe.elapsed, kHung) << Describe(probe);              // not the hung reply
  EXPECT_EQ(probe.attempts()[0].outcome(), "DEADLINE_EXCEEDED");
  // Open again (for twice as long): a is skipped.
  Result after = Stream("breaker", "hello");
  EXPECT_EQ(after.attempts()[0].disposition(), v1::ATTEMPT_DISPOSITION_SKIPPED) << Describe(after);
  EXPECT_EQ(PrimaryRequests(), 4);
}

// ---- Storm -----------------------------------------------------------------------------------

TEST_F(ResilienceTest, StormWhereEveryRequestFailsIsCappedByTheRetryLimits) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 6;
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto stub = CompletionService::NewStub(
          grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
      for (int i = 0; i < kPerThread; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        auto reader = stub->StreamCompletion(&ctx, Request("storm", "hi [[fake status=503]]"));
        StreamCompletionResponse response;
        while (reader->Read(&response)) {
        }
        if (reader->Finish().error_code() == grpc::UNAVAILABLE) ++unavailable;
      }
    });
  }
  for (auto& t : threads) t.join();
  constexpr int kRequests = kThreads * kPerThread;
  EXPECT_EQ(unavailable.load(), kRequests);
  // The token bucket allows a retry only while it holds more than 5 of its 10 tokens: at most 4
  // retries in all, however many requests fail.
  const long upstream = PrimaryRequests();
  EXPECT_GE(upstream, kRequests);
  EXPECT_LE(upstream, kRequests + 4);
}

// ---- Deadlines -------------------------------------------------------------------------------

TEST_F(ResilienceTest, ClientDeadlineShorterThanTheBackoffIsNeverSleptPast) {
  // The retry would wait at least 1 s (retry-after) on a route whose backoff is up to 2 s; the
  // client allows 600 ms, so the gateway answers at once with the upstream error. Had it slept
  // (even only until the deadline) the client would see DEADLINE_EXCEEDED, not the upstream's
  // UNAVAILABLE; and the one attempt is FINAL, so no wait was scheduled after it.
  Result r = Stream("patient", "hi [[fake status=503 retry_after=1]]", milliseconds(600));
  EXPECT_EQ(r.status.error_code(), grpc::UNAVAILABLE) << Describe(r);
  ASSERT_TRUE(Detail<v1::ProviderError>(r.status).has_value()) << Describe(r);
  EXPECT_EQ(Detail<v1::ProviderError>(r.status)->http_status(), 503);
  EXPECT_EQ(PrimaryRequests(), 1);
  auto attempts = r.attempts();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].disposition(), v1::ATTEMPT_DISPOSITION_FINAL);
  EXPECT_NE(attempts[0].reason().find("would pass the deadline"), std::string::npos) << Describe(r);
}

// ---- Fallback chain: primary -> secondary -> cache -> degradation ----------------------------

TEST_F(ResilienceTest, ChainWalksPrimarySecondaryCacheThenDegradation) {
  const StreamCompletionRequest question = Request("full", "what is the claim status?");
  // 1. The primary serves (and the reply is cached).
  Result primary = Stream(question);
  ASSERT_TRUE(primary.status.ok()) << Describe(primary);
  EXPECT_EQ(primary.start().provider(), "a");
  EXPECT_FALSE(primary.start().cache_hit());
  EXPECT_EQ(PrimaryRequests(), 1);

  // 2. The primary fails twice: the secondary serves.
  Queue(*primary_, R"([{"status":500},{"status":500}])");
  Result secondary = Stream(question);
  ASSERT_TRUE(secondary.status.ok()) << Describe(secondary);
  EXPECT_EQ(secondary.start().provider(), "b");
  EXPECT_EQ(secondary.start().fallback_position(), 1);
  EXPECT_EQ(PrimaryRequests(), 3);
  EXPECT_EQ(SecondaryRequests(), 1);

  // 3. Everything fails: the cached reply, marked as such (fresh: younger than the 300 ms TTL).
  Queue(*primary_, R"([{"status":500},{"status":500}])");
  Queue(*secondary_, R"([{"status":500}])");
  Result cached = Stream(question);
  ASSERT_TRUE(cached.status.ok()) << Describe(cached);
  EXPECT_TRUE(cached.start().cache_hit());
  EXPECT_EQ(cached.start().fallback_position(), 2);
  EXPECT_EQ(cached.text(), secondary.text());
  EXPECT_EQ(cached.finish().usage().cost_usd_micros(), 0);
  EXPECT_EQ(PrimaryRequests(), 5);
  EXPECT_EQ(SecondaryRequests(), 2);
  EXPECT_EQ(cached.attempts().size(), 3u) << Describe(cached);  // a, a, b
  ClearQueue(*primary_);
  ClearQueue(*secondary_);

  // 4. A question never answered before: nothing cached, so the degradation response.
  Queue(*primary_, R"([{"status":500},{"status":500}])");
  Queue(*secondary_, R"([{"status":500},{"status":500}])");
  Result degraded = Stream("full", "something new");
  ASSERT_TRUE(degraded.status.ok()) << Describe(degraded);
  EXPECT_TRUE(degraded.start().degraded());
  EXPECT_FALSE(degraded.start().cache_hit());
  EXPECT_EQ(degraded.start().fallback_position(), 3);
  EXPECT_EQ(degraded.text(), "The assistant is busy; please try again in a minute.");
  EXPECT_EQ(degraded.finish().finish_reason(), v1::FINISH_REASON_OTHER);
  ClearQueue(*primary_);
  ClearQueue(*secondary_);

  // 5. Past the TTL the cached reply is still the last resort, now marked stale.
  const auto stored = Clock::now();
  WaitFor([&] { return Clock::now() - stored > milliseconds(350); }, milliseconds(1000));
  Queue(*primary_, R"([{"status":500},{"status":500}])");
  Queue(*secondary_, R"([{"status":500},{"status":500}])");
  Result stale = Stream(question);
  ASSERT_TRUE(stale.status.ok()) << Describe(stale);
  EXPECT_TRUE(stale.start().cache_hit());
  EXPECT_TRUE(stale.start().stale());
}

TEST_F(ResilienceTest, ErrorsAndPartialStreamsAreNeverCached) {
  // A reply cut off mid-stream must not become the fallback answer.
  Queue(*primary_, R"([{"reset_after_chunks":2}])");
  Result cut = Stream("full", "q");
  ASSERT_FALSE(cut.status.ok());
  Queue(*primary_, R"([{"status":500},{"status":500}])");
  Queue(*secondary_, R"([{"status":500},{"status":500}])");
  Result r = Stream("full", "q");
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_FALSE(r.start().cache_hit());
  EXPECT_TRUE(r.start().degraded());
}

TEST_F(ResilienceTest, FirstLineCacheServesARepeatWithoutCallingTheProvider) {
  Result first = Stream("first", "same question");
  ASSERT_TRUE(first.status.ok()) << Describe(first);
  EXPECT_FALSE(first.start().cache_hit());
  Result second = Stream("first", "same question");
  ASSERT_TRUE(second.status.ok()) << Describe(second);
  EXPECT_TRUE(second.start().cache_hit());
  EXPECT_FALSE(second.start().stale());
  EXPECT_EQ(second.start().fallback_position(), 0);
  EXPECT_EQ(second.text(), first.text());
  EXPECT_EQ(second.finish().usage().input_tokens(), 0);
  EXPECT_TRUE(second.finish().attempts().empty());
  EXPECT_EQ(PrimaryRequests(), 1);
  // A different question still goes upstream.
  ASSERT_TRUE(Stream("first", "another question").status.ok());
  EXPECT_EQ(PrimaryRequests(), 2);
}

// ---- Unary and embeddings share the policy ---------------------------------------------------

TEST_F(ResilienceTest, UnaryCompleteRetriesToo) {
  Queue(*primary_, R"([{"status":503}])");
  grpc::ClientContext ctx;
  v1::CompleteRequest request;
  request.ParseFromString(Request("single", "one two").SerializeAsString());
  v1::CompleteResponse response;
  grpc::Status status = stub_->Complete(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "Hello from the fake provider");
  EXPECT_EQ(response.finish().attempts_size(), 2);
  EXPECT_EQ(PrimaryRequests(), 2);
}

TEST_F(ResilienceTest, EmbeddingsRetryAndListAttempts) {
  Queue(*primary_, R"([{"status":503}])");
  auto embed = v1::EmbeddingService::NewStub(
      grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::EmbedRequest request;
  request.set_capability("single");
  request.add_inputs("text");
  v1::EmbedResponse response;
  grpc::Status status = embed->Embed(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.embeddings_size(), 1);
  ASSERT_EQ(response.attempts_size(), 2);
  EXPECT_EQ(response.attempts(0).http_status(), 503);
  EXPECT_EQ(response.attempts(0).disposition(), v1::ATTEMPT_DISPOSITION_RETRIED);
  EXPECT_EQ(PrimaryRequests(), 2);
}

TEST_F(ResilienceTest, ClientCancelDuringBackoffEndsAtOnce) {
  // The retry waits for a 9 s retry-after; the client cancels after the first attempt.
  constexpr milliseconds kRetryAfter(9000);
  const std::string finished_cancelled =
      R"(turnpike_requests_total{method="StreamCompletion",capability="single",code="CANCELLED"})";
  ASSERT_EQ(MetricValue(gateway_->Metrics(), finished_cancelled), -1);
  grpc::ClientContext ctx;
  auto reader = stub_->StreamCompletion(
      &ctx,
      Request("single",
              absl::StrCat("hi [[fake status=503 retry_after=", kRetryAfter.count() / 1000, "]]")));
  ASSERT_TRUE(WaitFor([&] { return PrimaryRequests() == 1; }, milliseconds(5000)));
  const auto cancelled = Clock::now();
  ctx.TryCancel();
  StreamCompletionResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::CANCELLED);
  // The client library ends a cancelled call locally, so the client's clock says nothing about
  // the gateway. The gateway's own count of finished requests does: it records the call as
  // CANCELLED when it abandons the backoff, which must happen long before the retry-after is over
  // (half of it leaves seconds of margin for a loaded machine).
  EXPECT_TRUE(WaitFor([&] { return MetricValue(gateway_->Metrics(), finished_cancelled) == 1; },
                      kRetryAfter / 2))
      << "not recorded as cancelled "
      << std::chrono::duration_cast<milliseconds>(Clock::now() - cancelled).count()
      << " ms after the cancel\n"
      << gateway_->Metrics();
  EXPECT_EQ(PrimaryRequests(), 1);  // and the retry never went out
}

}  // namespace
}  // namespace turnpike::testing
