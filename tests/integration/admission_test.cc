// Admission in a real gateway process run from a config file (its lease ledger is local): what a
// caller sees when a limit or budget says no, and what well-behaved callers read from every
// reply. The fleet-wide properties (no overspend with four gateways, one global limit) are in
// admission_fleet_test.cc.
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// gpt-big: $2.50 / $10 per Mtok; gpt-small: $0.15 / $0.60. "premium" is budgeted at 30,000
// micros a day and degrades to "cheap"; "chat" allows each end user 2 requests a minute;
// "slow-queue" has a budget that holds one worst-case request at a time, and queues.
std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port, "/v1");
  return absl::StrCat(R"({"version":"admission-1","providers":[
    {"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
  "routes":[
    {"capability":"premium","targets":[{"provider":"fake","model":"gpt-big"}],"allowUnauthenticated":true,"defaultMaxTokens":1000},
    {"capability":"cheap","targets":[{"provider":"fake","model":"gpt-small"}],"allowUnauthenticated":true},
    {"capability":"chat","targets":[{"provider":"fake","model":"gpt-small"}],"allowUnauthenticated":true},
    {"capability":"slow-queue","targets":[{"provider":"fake","model":"gpt-big"}],"allowUnauthenticated":true,
     "defaultMaxTokens":1000,"admissionQueue":{"maxWaitMs":10000}}],
  "prices":[
    {"provider":"fake","model":"gpt-big","inputUsdMicrosPerMtok":"2500000","outputUsdMicrosPerMtok":"10000000"},
    {"provider":"fake","model":"gpt-small","inputUsdMicrosPerMtok":"150000","outputUsdMicrosPerMtok":"600000"}],
  "rateLimits":[{"name":"per-user","capability":"chat","requestsPerMinute":"2","key":"RATE_LIMIT_KEY_PER_END_USER"}],
  "budgets":[
    {"name":"premium-daily","capability":"premium","limitUsdMicros":"30000","window":"BUDGET_WINDOW_DAILY",
     "onExhausted":"OVER_LIMIT_ACTION_DEGRADE","degradeTo":"cheap"},
    {"name":"one-at-a-time","capability":"slow-queue","limitUsdMicros":"12000","window":"BUDGET_WINDOW_TOTAL",
     "onExhausted":"OVER_LIMIT_ACTION_QUEUE"}]})");
}

struct Result {
  grpc::Status status;
  v1::CompletionStart start;
  int64_t cost = 0;
  std::multimap<grpc::string_ref, grpc::string_ref> initial;
  std::map<std::string, std::string> metadata;
};

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    gateway_ = std::make_unique<Gateway>(dir_, Config(fake_->port()));
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    stub_ = v1::CompletionService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  Result Stream(const std::string& capability, const std::string& text,
                const std::string& user = "", milliseconds deadline = milliseconds(20000)) {
    v1::StreamCompletionRequest request;
    request.set_capability(capability);
    request.set_user(user);
    auto* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    auto reader = stub_->StreamCompletion(&ctx, request);
    Result result;
    v1::StreamCompletionResponse response;
    while (reader->Read(&response)) {
      if (response.has_start()) result.start = response.start();
      if (response.has_finish()) result.cost = response.finish().usage().cost_usd_micros();
    }
    result.status = reader->Finish();
    for (const auto& [k, v] : ctx.GetServerInitialMetadata()) {
      result.metadata[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
    }
    return result;
  }

  // Waits, if needed, until a UTC minute has at least `needed` left, so a test of a
  // per-minute limit does not straddle two windows.
  static void AwaitFreshMinute(absl::Duration needed) {
    const absl::Duration into =
        absl::Now() -
        absl::FromCivil(absl::CivilMinute(absl::ToCivilSecond(absl::Now(), absl::UTCTimeZone())),
                        absl::UTCTimeZone());
    if (absl::Seconds(60) - into < needed) absl::SleepFor(absl::Seconds(60) - into);
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<v1::CompletionService::Stub> stub_;
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

TEST_F(AdmissionTest, NoisyEndUserIsRefusedWithWhenToRetryWhileOthersAreServed) {
  AwaitFreshMinute(absl::Seconds(10));
  for (int i = 0; i < 2; ++i) {
    Result r = Stream("chat", "hello", "noisy");
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.metadata["x-turnpike-remaining-requests"], absl::StrCat(1 - i));
  }
  const long upstream_before = FakeStat(fake_->port(), "requests");
  Result refused = Stream("chat", "hello", "noisy");
  ASSERT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.status.error_message();
  EXPECT_EQ(FakeStat(fake_->port(), "requests"), upstream_before) << "refused before the provider";
  auto info = Detail<google::rpc::ErrorInfo>(refused.status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "RATE_LIMITED");
  EXPECT_EQ(info->metadata().at("rate_limit"), "per-user");
  auto retry = Detail<google::rpc::RetryInfo>(refused.status);
  ASSERT_TRUE(retry.has_value());
  EXPECT_GT(retry->retry_delay().seconds(), 0);
  EXPECT_LE(retry->retry_delay().seconds(), 60) << "capacity returns with the next minute";

  Result other = Stream("chat", "hello", "quiet");
  EXPECT_TRUE(other.status.ok()) << other.status.error_message();
}

TEST_F(AdmissionTest, ExhaustedBudgetDegradesToTheCheaperRouteMarkedDegraded) {
  // Worst case on gpt-big: (1 + 8 + 16) input tokens -> 63 micros + 1,000 output tokens at
  // $10/M -> 10,000 micros: 10,063. The 30,000 budget holds two at a time, and each really costs
  // 1 input word and 5 output tokens (51 micros), so it never runs out here: hold two in flight.
  Result first = Stream("premium", "hello");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_FALSE(first.start.degraded());
  EXPECT_EQ(first.start.model(), "gpt-big");
  EXPECT_GT(std::stoll(first.metadata["x-turnpike-remaining-budget-usd-micros"]), 0);

  std::vector<std::thread> slow;
  for (int i = 0; i < 2; ++i) {
    slow.emplace_back([&] { Stream("premium", "hold [[fake chunk_delay_ms=400]]"); });
  }
  // While two worst cases are held, the next one is served by "cheap", marked degraded.
  Result degraded;
  ASSERT_TRUE(WaitFor(
      [&] {
        degraded = Stream("premium", "hello");
        return degraded.status.ok() && degraded.start.degraded();
      },
      seconds(10)));
  EXPECT_EQ(degraded.start.model(), "gpt-small");
  for (auto& t : slow) t.join();
  // Settled requests gave their unused holds back: the full model serves again. Usually the very
  // next request does; once in a CI run under ASan it was served degraded with the lease
  // manager's pass still ahead (session 7 note), so what is asserted is that the full model
  // returns within seconds, not that the first request after finds it.
  Result after;
  int degraded_after = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Stream("premium", "hello");
        if (after.status.ok() && after.start.degraded()) ++degraded_after;
        return after.status.ok() && !after.start.degraded();
      },
      seconds(10)))
      << "settled requests never gave their unused holds back (" << degraded_after
      << " requests served degraded meanwhile)";
  EXPECT_EQ(after.start.model(), "gpt-big");
}

TEST_F(AdmissionTest, QueuedRequestWaitsForCapacityThenIsServed) {
  // The budget holds one worst case (10,063 of 12,000): a second request waits in the queue until
  // the first settles at its real cost, then fits.
  std::thread first([&] {
    Result r = Stream("slow-queue", "first [[fake chunk_delay_ms=200]]");
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  });
  ASSERT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "requests") >= 1; }, seconds(10)));
  const auto start = std::chrono::steady_clock::now();
  Result second = Stream("slow-queue", "second");
  first.join();
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300))
      << "it waited for the first request (5 chunks x 200 ms) to settle";
}

TEST_F(AdmissionTest, QueuedRequestNeverWaitsPastTheCallersDeadline) {
  std::thread first([&] { Stream("slow-queue", "first [[fake chunk_delay_ms=600]]"); });
  ASSERT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "requests") >= 1; }, seconds(10)));
  Result second = Stream("slow-queue", "second", "", milliseconds(700));
  // The first stream (4 x 600 ms between its chunks) is still going: the second did not wait for
  // the capacity it would free, but gave up at its own deadline.
  const long completed_when_answered = FakeStat(fake_->port(), "completed_streams");
  first.join();
  EXPECT_TRUE(second.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              second.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      << second.status.error_code() << " " << second.status.error_message();
  EXPECT_EQ(completed_when_answered, 0) << "the queue gave up at the caller's deadline";
  EXPECT_EQ(FakeStat(fake_->port(), "requests"), 1) << "the second never reached the provider";
}

TEST_F(AdmissionTest, AQueuedRequestWhoseClientLeftNeverReachesTheProvider) {
  std::thread first([&] { Stream("slow-queue", "first [[fake chunk_delay_ms=300]]"); });
  ASSERT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "requests") >= 1; }, seconds(10)));
  // A unary call (no writes that could fail) waits in the queue; its client gives up.
  v1::CompleteRequest request;
  request.set_capability("slow-queue");
  auto* m = request.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("second");
  grpc::ClientContext ctx;
  // The first request already counted as queued (it waited for the first lease): cancel only
  // once this one has joined the queue too, or the cancel can reach the gateway before the request
  // does, and nothing is ever queued or admitted.
  const double queued_before = MetricValue(gateway_->Metrics(), "turnpike_admission_queued_total");
  std::thread canceller([&] {
    WaitFor(
        [&] {
          return MetricValue(gateway_->Metrics(), "turnpike_admission_queued_total") >
                 queued_before;
        },
        seconds(10));
    ctx.TryCancel();
  });
  v1::CompleteResponse response;
  grpc::Status status = stub_->Complete(&ctx, request, &response);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  first.join();  // capacity returns: the cancelled request is admitted, then ends at once
  // This test is about where the cancelled request goes, not how soon; a queued request is
  // admitted within a few manager passes of the capacity's return (QuotaTest).
  ASSERT_TRUE(WaitFor(
      [&] { return MetricValue(gateway_->Metrics(), "turnpike_admission_admitted_total") >= 2; },
      seconds(60)))
      << gateway_->Metrics();
  EXPECT_EQ(FakeStat(fake_->port(), "requests"), 1) << "the cancelled request stayed home";
}

}  // namespace
}  // namespace turnpike::testing
