// Admission over a real RuntimeConfig and the local lease ledger, on a simulated clock: which
// limits apply to a request (capability, caller, tier, per-key counters), the worst-case cost a
// budget reserves and settles, degrade and refusal details, and the response metadata.
#include "server/admission/admission.h"

#include <ctime>

#include "absl/synchronization/notification.h"
#include "common/quota_window.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/admission/local_lease_source.h"
#include "tests/server/config/test_resilience.h"

namespace turnpike {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

// gpt-big: $2.50 in, $10 out per Mtok; gpt-small: $0.15 / $0.60; "unpriced" has no price.
constexpr char kConfig[] = R"({"version":"v1",
  "providers":[{"name":"oa","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:1/v1"}],
  "routes":[
    {"capability":"summaries","targets":[{"provider":"oa","model":"gpt-big"}],"defaultMaxTokens":1000},
    {"capability":"summaries-cheap","targets":[{"provider":"oa","model":"gpt-small"}],"defaultMaxTokens":1000},
    {"capability":"chat","targets":[{"provider":"oa","model":"gpt-small"}],"defaultMaxTokens":100,
     "onRateLimited":"OVER_LIMIT_ACTION_QUEUE","admissionQueue":{"maxWaitMs":2000}},
    {"capability":"mystery","targets":[{"provider":"oa","model":"unpriced"}]},
    {"capability":"chat-free","targets":[{"provider":"oa","model":"gpt-small"}]}],
  "prices":[
    {"provider":"oa","model":"gpt-big","inputUsdMicrosPerMtok":"2500000","outputUsdMicrosPerMtok":"10000000"},
    {"provider":"oa","model":"gpt-small","inputUsdMicrosPerMtok":"150000","outputUsdMicrosPerMtok":"600000"}],
  "rateLimits":[
    {"name":"bench-rpm","capability":"summaries-cheap","requestsPerMinute":"1000000000"},
    {"name":"per-user","capability":"chat","requestsPerMinute":"2","key":"RATE_LIMIT_KEY_PER_END_USER"},
    {"name":"free-tpm","tier":"free","tokensPerMinute":"5000"}],
  "budgets":[
    {"name":"summaries-daily","capability":"summaries","limitUsdMicros":"50000","window":"BUDGET_WINDOW_DAILY",
     "onExhausted":"OVER_LIMIT_ACTION_DEGRADE","degradeTo":"summaries-cheap"},
    {"name":"mystery-total","capability":"mystery","limitUsdMicros":"1000000","window":"BUDGET_WINDOW_TOTAL"},
    {"name":"cheap-total","capability":"summaries-cheap","limitUsdMicros":"1000000000000000","window":"BUDGET_WINDOW_TOTAL"}]})";

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(kConfig);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    auto built = RuntimeConfig::Build(
        *snapshot, [](const std::string&) { return std::optional<std::string>(); },
        TestResilience());
    ASSERT_TRUE(built.ok()) << built.status();
    config_ = *built;
    auto source = std::make_unique<LocalLeaseSource>(
        [this](const budget::v1::Quota& q, absl::Time now) -> absl::StatusOr<QuotaSpec> {
          const bool budget = !q.budget().empty();
          const LimitRule* rule =
              config_->FindLimit(budget ? LimitRule::Kind::kBudget : LimitRule::Kind::kRateLimit,
                                 budget ? q.budget() : q.rate_limit());
          if (rule == nullptr) return absl::NotFoundError("no such limit");
          QuotaSpec spec;
          spec.limit = budget                                      ? rule->limit_usd_micros
                       : q.unit() == budget::v1::QUOTA_UNIT_TOKENS ? rule->tokens_per_minute
                                                                   : rule->requests_per_minute;
          spec.window = budget ? BudgetWindowAt(rule->window, now) : MinuteWindowAt(now);
          return spec;
        },
        clock_);
    admission_ = std::make_unique<Admission>(std::move(source), clock_, Admission::Options());
  }

  AdmissionRequest Ask(const std::string& capability, const std::string& user = "",
                       const std::string& tier = "") {
    AdmissionRequest r;
    r.route = config_->FindRoute(capability);
    r.caller = "svc";
    r.tier = tier;
    r.end_user = user;
    r.input_tokens = InputTokensUpperBound(400, 2);  // 432
    return r;
  }

  // Admits and waits for the answer, advancing the simulated clock so the lease manager runs.
  absl::StatusOr<Admitted> AdmitNow(AdmissionRequest request) {
    struct Answer {
      absl::Notification done;
      absl::StatusOr<Admitted> result = absl::UnknownError("unset");
    };
    auto answer = std::make_shared<Answer>();
    admission_->Admit(std::move(request), [answer](absl::StatusOr<Admitted> r) {
      answer->result = std::move(r);
      answer->done.Notify();
    });
    // Up to 20 simulated seconds, in steps the lease manager (100 ms ticks) can follow.
    for (int i = 0; i < 2000 && !answer->done.HasBeenNotified(); ++i) {
      clock_.Advance(absl::Milliseconds(10));
      answer->done.WaitForNotificationWithTimeout(absl::Milliseconds(2));
    }
    EXPECT_TRUE(answer->done.HasBeenNotified()) << "no answer from admission";
    if (!answer->done.HasBeenNotified()) return absl::DeadlineExceededError("no answer");
    return answer->result;
  }

  SimulatedClock clock_{
      absl::FromCivil(absl::CivilSecond(2026, 12, 6, 10, 0, 0), absl::UTCTimeZone())};
  std::shared_ptr<const RuntimeConfig> config_;
  std::unique_ptr<Admission> admission_;
};

TEST_F(AdmissionTest, RoutesWithoutLimitsAreAdmittedWithoutATicket) {
  auto result = AdmitNow(Ask("chat-free"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->ticket, nullptr);
  EXPECT_FALSE(result->degraded);
}

// The request path with one rate limit and one budget and leases in hand: every request is
// admitted inline (on this thread) and settles. Prints the thread CPU time per admit + settle
// (the figure docs/limits.md quotes; no timing assertion here, the bench has the target).
TEST_F(AdmissionTest, HotPathAdmitsInlineAndPrintsItsCost) {
  ASSERT_TRUE(AdmitNow(Ask("summaries-cheap")).ok());  // the leases are now in hand
  constexpr int kRequests = 100000;
  int inline_admitted = 0;
  timespec start, end;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  for (int i = 0; i < kRequests; ++i) {
    bool done = false;
    admission_->Admit(Ask("summaries-cheap"), [&](absl::StatusOr<Admitted> a) {
      done = a.ok() && a->ticket != nullptr;
      if (done) a->ticket->Settle(100, 5, 1, true);
    });
    if (done) ++inline_admitted;
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  const double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  std::printf("[admission] %.0f ns of thread CPU per admit + settle (one rate limit, one budget)\n",
              ns / kRequests);
  // Top-ups happen on the lease manager's thread ahead of need; a request that finds its lease
  // short waits for one (rare: slices are a sixteenth of these limits).
  EXPECT_GE(inline_admitted, kRequests * 99 / 100);
}

TEST_F(AdmissionTest, PerEndUserKeysRefuseTheNoisyUserAndServeTheOthers) {
  std::vector<std::shared_ptr<AdmissionTicket>> held;
  for (int i = 0; i < 2; ++i) {
    auto a = AdmitNow(Ask("chat", "noisy"));
    ASSERT_TRUE(a.ok()) << a.status();
    held.push_back(a->ticket);
  }
  // chat queues for up to 2 s; the noisy user's minute is used up, so the third waits, then is
  // refused (the clock only reaches the end of its wait, not the next minute).
  auto third = AdmitNow(Ask("chat", "noisy"));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(third.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "RATE_LIMITED");
  EXPECT_EQ(info->metadata().at("rate_limit"), "per-user");
  EXPECT_EQ(info->metadata().at("key"), "noisy");
  // Counted for the health reports, by capability and by the kind of limit (docs/alerts.md).
  const std::map<std::string, Admission::Refusals> refusals = admission_->RefusalsByCapability();
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals.at("chat").rate_limited, 1);
  EXPECT_EQ(refusals.at("chat").budget_exhausted, 0);
  auto other = AdmitNow(Ask("chat", "quiet"));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(other->metadata, ::testing::Contains(Pair("x-turnpike-remaining-requests", "1")));
}

TEST_F(AdmissionTest, TierNarrowedLimitAppliesOnlyToThatTierAndRefusesAnUnboundedRequest) {
  AdmissionRequest gold = Ask("summaries", "", "gold");
  gold.max_tokens = 10000;  // 10,432 tokens: more than free-tpm's 5,000, but gold is not free
  auto a = AdmitNow(gold);
  ASSERT_TRUE(a.ok()) << a.status();
  AdmissionRequest free = Ask("summaries-cheap", "", "free");
  free.max_tokens = 10000;
  auto b = AdmitNow(free);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("free-tpm"));
}

TEST_F(AdmissionTest, BudgetReservesTheWorstCaseSettlesTheRealCostThenDegrades) {
  // Worst case on gpt-big: 432 input tokens at $2.50/M (1,080 micros) + 1,000 output tokens at
  // $10/M (10,000 micros) = 11,080 micros. The daily budget of 50,000 holds four of them.
  std::vector<std::shared_ptr<AdmissionTicket>> held;
  for (int i = 0; i < 4; ++i) {
    auto a = AdmitNow(Ask("summaries"));
    ASSERT_TRUE(a.ok()) << i << ": " << a.status();
    EXPECT_FALSE(a->degraded);
    held.push_back(a->ticket);
  }
  // The fifth does not fit: the budget degrades it to summaries-cheap.
  auto fifth = AdmitNow(Ask("summaries"));
  ASSERT_TRUE(fifth.ok()) << fifth.status();
  EXPECT_TRUE(fifth->degraded);
  EXPECT_EQ(fifth->route, config_->FindRoute("summaries-cheap"));
  // Two requests end having really cost 1,000 micros each: 2 x 10,080 returns to the budget.
  held[0]->Settle(100, 75, 1000, true);
  held[1]->Settle(100, 75, 1000, true);
  auto again = AdmitNow(Ask("summaries"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->degraded) << "capacity came back from the settled requests";
  EXPECT_THAT(again->metadata,
              ::testing::Contains(Pair("x-turnpike-remaining-budget-usd-micros", ::testing::_)));
}

TEST_F(AdmissionTest, BudgetOverAnUnpricedModelIsRefusedNotAdmittedUnbounded) {
  auto a = AdmitNow(Ask("mystery"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(a.status().message(), HasSubstr("has no price"));
  EXPECT_TRUE(admission_->RefusalsByCapability().empty()) << "a config error, not a refusal";
}

TEST_F(AdmissionTest, AnUnsettledTicketReleasesItsHoldWhenDropped) {
  for (int i = 0; i < 20; ++i) {
    auto a = AdmitNow(Ask("summaries"));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_FALSE(a->degraded) << "request " << i << ": every dropped ticket gave its hold back";
  }
}

}  // namespace
}  // namespace turnpike
