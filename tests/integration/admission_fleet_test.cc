// Admission across a fleet, with real processes: one turnpike-control, four turnpike-gateways
// watching it, and the fake provider. What it shows is the promise of docs/limits.md: no number of
// gateways spends past a budget, and a limit means the same with one gateway or four. Also: a
// gateway killed with SIGKILL gives its unspent lease back at expiry, and with the control plane
// gone gateways spend their leases, then fail closed (or open, when the budget says so).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kGateways = 4;
// Each request asks for 5 output tokens and the fake provider sends exactly 5; input is free, so
// a request's worst case and its real cost are the same 50 micro-dollars ($10 per M output).
constexpr int64_t kRequestCost = 50;
// The lease lifetime the control plane is started with, so expiry is quick to observe.
constexpr char kLeaseTtl[] = "--lease_ttl=3s";

std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return "";
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

class AdmissionFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    control_ = std::make_unique<ControlPlane>(dir_, 0, std::vector<std::string>{kLeaseTtl});
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    auto channel = ControlChannel(control_->address(), control_->admin_token());
    admin_ = std::make_unique<Admin>(control_->address(), control_->admin_token());
    admin_stub_ = admin::v1::AdminService::NewStub(channel);
    budgets_ = budget::v1::BudgetService::NewStub(channel);
    ASSERT_TRUE(admin_->SeedDemo(fake_->port(), "model-0").ok());
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreatePriceRequest price;
    price.mutable_price()->mutable_spec()->set_provider("fake");
    price.mutable_price()->mutable_spec()->set_model("model-0");
    price.mutable_price()->mutable_spec()->set_input_usd_micros_per_mtok(0);
    price.mutable_price()->mutable_spec()->set_output_usd_micros_per_mtok(10'000'000);
    admin::v1::CreatePriceResponse created;
    grpc::Status s = admin_stub_->CreatePrice(&ctx, price, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void StartGateways(int n) {
    std::vector<std::string> nodes;
    for (int i = 0; i < n; ++i) {
      WatchSource source;
      source.control_plane = control_->address();
      source.node_id = absl::StrCat("gw-", i);
      source.name = absl::StrCat("gw-", i);
      source.node_token_file = dir_.File(absl::StrCat("gw-", i, ".token"));
      ASSERT_TRUE(admin_->WriteNodeToken(source.node_id, source.node_token_file).ok());
      nodes.push_back(source.node_id);
      gateways_.push_back(std::make_unique<Gateway>(dir_, source));
      ASSERT_GT(gateways_.back()->port(), 0) << gateways_.back()->process().Log();
      clients_.push_back(std::make_unique<GatewayClient>(gateways_.back()->address()));
    }
    ASSERT_TRUE(WaitFor([&] { return admin_->AllAckedCurrent(nodes); }, seconds(20)));
  }

  grpc::Status CreateBudget(const std::string& name, int64_t limit, bool fail_open = false) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateBudgetRequest req;
    config::v1::Budget* spec = req.mutable_budget()->mutable_spec();
    spec->set_name(name);
    spec->set_capability(kCapability);
    spec->set_limit_usd_micros(limit);
    spec->set_window(config::v1::BUDGET_WINDOW_TOTAL);
    spec->set_fail_open(fail_open);
    admin::v1::CreateBudgetResponse resp;
    return admin_stub_->CreateBudget(&ctx, req, &resp);
  }

  grpc::Status DeleteBudget(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::DeleteBudgetRequest req;
    req.set_name(name);
    admin::v1::DeleteBudgetResponse resp;
    return admin_stub_->DeleteBudget(&ctx, req, &resp);
  }

  // Waits until every gateway has the control plane's current snapshot.
  void AwaitFleetCurrent() {
    std::vector<std::string> nodes;
    for (int i = 0; i < static_cast<int>(gateways_.size()); ++i) {
      nodes.push_back(absl::StrCat("gw-", i));
    }
    ASSERT_TRUE(WaitFor([&] { return admin_->AllAckedCurrent(nodes); }, seconds(20)));
  }

  budget::v1::BudgetStatus Budget(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    budget::v1::GetBudgetRequest req;
    req.set_name(name);
    budget::v1::GetBudgetResponse resp;
    grpc::Status s = budgets_->GetBudget(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.budget();
  }

  // One streamed request of 5 output tokens through gateway `g`; the cost the caller was told.
  grpc::Status Stream(int g, int64_t* told, milliseconds deadline = milliseconds(20000)) {
    v1::StreamCompletionRequest request = DemoRequest<v1::StreamCompletionRequest>("hello");
    request.set_max_tokens(5);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    auto reader = clients_[g]->completion().StreamCompletion(&ctx, request);
    v1::StreamCompletionResponse response;
    *told = 0;
    while (reader->Read(&response)) {
      if (response.has_finish()) *told = response.finish().usage().cost_usd_micros();
    }
    return reader->Finish();
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_stub_;
  std::unique_ptr<budget::v1::BudgetService::Stub> budgets_;
  std::vector<std::unique_ptr<Gateway>> gateways_;
  std::vector<std::unique_ptr<GatewayClient>> clients_;
};

TEST_F(AdmissionFleetTest, HundredCallersOnFourGatewaysNeverSpendPastTheBudget) {
  StartGateways(kGateways);
  // Three rounds, each on a fresh budget of 100 requests' worth, against a demand of up to 1,500.
  for (int round = 0; round < 3; ++round) {
    const std::string name = absl::StrCat("fleet-budget-", round);
    constexpr int64_t kLimit = 100 * kRequestCost;
    if (round > 0) {
      ASSERT_TRUE(DeleteBudget(absl::StrCat("fleet-budget-", round - 1)).ok());
    }
    ASSERT_TRUE(CreateBudget(name, kLimit).ok());
    AwaitFleetCurrent();

    std::atomic<int64_t> spent{0};
    std::atomic<int> admitted{0}, refused{0}, admitted_before_first_refusal{-1};
    std::mutex errors_mu;
    std::vector<std::string> errors;
    std::vector<std::thread> callers;
    for (int c = 0; c < 100; ++c) {
      callers.emplace_back([&, c] {
        int refusals_in_a_row = 0;
        for (int i = 0; i < 15 && refusals_in_a_row < 3; ++i) {
          int64_t told = 0;
          grpc::Status s = Stream(c % kGateways, &told);
          if (s.ok()) {
            spent.fetch_add(told);
            admitted.fetch_add(1);
            refusals_in_a_row = 0;
          } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                     ReasonOf(s) == "BUDGET_EXHAUSTED") {
            int expected = -1;
            admitted_before_first_refusal.compare_exchange_strong(expected, admitted.load());
            refused.fetch_add(1);
            ++refusals_in_a_row;
          } else {
            std::lock_guard<std::mutex> lock(errors_mu);
            errors.push_back(absl::StrCat(s.error_code(), " ", s.error_message()));
          }
        }
      });
    }
    for (auto& t : callers) t.join();
    ASSERT_TRUE(errors.empty()) << errors.size() << " unexpected errors, first: " << errors[0];
    EXPECT_LE(spent.load(), kLimit) << "round " << round;
    EXPECT_GT(refused.load(), 0) << "the demand was far larger than the budget";
    // Demand went on after the first refusal: what is left unspent at the end is what leases
    // fragmented. Each gateway was refused only when its lease and the control plane's remainder
    // could not cover one request, so less than one request's worth idles in each lease and at
    // the control plane.
    const int64_t unspent = kLimit - spent.load();
    EXPECT_LT(unspent, (kGateways + 1) * kRequestCost) << "round " << round;

    // The control plane's ledger agrees once the gateways have reported: settled spend equals
    // what the callers were told, and nothing stays reserved once the leases are released.
    budget::v1::BudgetStatus status;
    ASSERT_TRUE(WaitFor(
        [&] {
          status = Budget(name);
          return status.spent_usd_micros() + status.leased_usd_micros() <= kLimit &&
                 status.spent_usd_micros() >= spent.load();
        },
        seconds(20)))
        << status.DebugString();
    int64_t round_trips = 0;
    for (auto& g : gateways_) {
      round_trips +=
          static_cast<int64_t>(MetricValue(g->Metrics(), "turnpike_lease_round_trips_total"));
    }
    std::printf(
        "[fleet round %d] limit=%lld settled_by_callers=%lld admitted=%d refused=%d "
        "admitted_before_first_refusal=%d unspent_at_end=%lld cp_spent=%lld cp_leased=%lld "
        "lease_round_trips_so_far=%lld\n",
        round, static_cast<long long>(kLimit), static_cast<long long>(spent.load()),
        admitted.load(), refused.load(), admitted_before_first_refusal.load(),
        static_cast<long long>(unspent), static_cast<long long>(status.spent_usd_micros()),
        static_cast<long long>(status.leased_usd_micros()), static_cast<long long>(round_trips));
  }
  // Stopped gateways release their leases with what they spent: the ledger is exact.
  const int64_t before_stop = Budget("fleet-budget-2").spent_usd_micros();
  for (auto& g : gateways_) g->process().Signal(SIGTERM);
  for (auto& g : gateways_) ASSERT_TRUE(g->process().Wait(seconds(20)).has_value());
  budget::v1::BudgetStatus final_status = Budget("fleet-budget-2");
  EXPECT_EQ(final_status.leased_usd_micros(), 0) << final_status.DebugString();
  EXPECT_GE(final_status.spent_usd_micros(), before_stop);
  EXPECT_LE(final_status.spent_usd_micros(), 100 * kRequestCost);
}

TEST_F(AdmissionFleetTest, ARequestsPerMinuteLimitIsGlobalAcrossFourGateways) {
  StartGateways(kGateways);
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateRateLimitRequest req;
    config::v1::RateLimit* spec = req.mutable_rate_limit()->mutable_spec();
    spec->set_name("fleet-rpm");
    spec->set_capability(kCapability);
    spec->set_requests_per_minute(20);
    admin::v1::CreateRateLimitResponse resp;
    grpc::Status s = admin_stub_->CreateRateLimit(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  AwaitFleetCurrent();
  // All within one UTC minute: wait for one with at least 30 s left.
  const absl::Time now = absl::Now();
  const absl::Time minute = absl::FromCivil(
      absl::CivilMinute(absl::ToCivilSecond(now, absl::UTCTimeZone())), absl::UTCTimeZone());
  if (now - minute > absl::Seconds(30)) absl::SleepFor(minute + absl::Minutes(1) - now);

  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 12; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < 5; ++i) {
        int64_t told = 0;
        grpc::Status s = Stream((c + i) % kGateways, &told);
        if (s.ok()) {
          ok.fetch_add(1);
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                   ReasonOf(s) == "RATE_LIMITED") {
          limited.fetch_add(1);
        } else {
          other.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_LE(ok.load(), 20) << "one limit for the whole fleet, not one per gateway";
  EXPECT_GE(ok.load(), 16) << "slices of one request leave little idle in other gateways";
  EXPECT_EQ(ok.load() + limited.load(), 60);
}

TEST_F(AdmissionFleetTest, AKilledGatewaysUnspentLeaseReturnsAfterExpiry) {
  ASSERT_TRUE(CreateBudget("kill-budget", 1000 * kRequestCost).ok());
  StartGateways(1);
  int64_t told = 0;
  grpc::Status first = Stream(0, &told);
  ASSERT_TRUE(first.ok()) << first.error_message() << "\n"
                          << gateways_[0]->process().Log() << "\n"
                          << gateways_[0]->Metrics() << control_->process().Log();
  budget::v1::BudgetStatus held = Budget("kill-budget");
  ASSERT_EQ(held.leases_size(), 1) << held.DebugString();
  EXPECT_GT(held.leased_usd_micros(), kRequestCost) << "a slice, not one request";
  gateways_[0]->process().Signal(SIGKILL);
  ASSERT_TRUE(gateways_[0]->process().Wait(seconds(10)).has_value());
  // After the 3 s lifetime the lease is gone; what the gateway had not spent is back.
  budget::v1::BudgetStatus after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Budget("kill-budget");
        return after.leases_size() == 0;
      },
      seconds(15)))
      << after.DebugString();
  EXPECT_EQ(after.leased_usd_micros(), 0);
  // Reported ahead (docs/budgets.md, "A gateway that dies"): the charge covers what it admitted,
  // and exceeds it by at most its hot part, a quarter slice (limit / 64); the parked rest of the
  // slice returned.
  constexpr int64_t kHotPart = 1000 * kRequestCost / 64;
  EXPECT_GE(after.spent_usd_micros(), told) << "what it admitted is charged";
  EXPECT_LE(after.spent_usd_micros(), kHotPart);
  EXPECT_GE(after.remaining_usd_micros(), 1000 * kRequestCost - kHotPart);
}

TEST_F(AdmissionFleetTest, WithTheControlPlaneGoneGatewaysSpendTheirLeasesThenFailClosed) {
  ASSERT_TRUE(CreateBudget("closed-budget", 1000 * kRequestCost).ok());
  StartGateways(1);
  int64_t told = 0;
  ASSERT_TRUE(Stream(0, &told).ok());
  control_->process().Signal(SIGKILL);
  ASSERT_TRUE(control_->process().Wait(seconds(10)).has_value());
  // The lease (3 s, renewed 1 s ago at most) keeps serving for a while...
  grpc::Status s = Stream(0, &told);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // ...then lapses, and the budget fails closed.
  ASSERT_TRUE(WaitFor(
      [&] {
        s = Stream(0, &told, milliseconds(5000));
        return !s.ok();
      },
      seconds(15)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(ReasonOf(s), "QUOTA_UNAVAILABLE");
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricValue(gateways_[0]->Metrics(), "turnpike_admission_fail_closed_total") >= 1;
      },
      seconds(5)));
}

TEST_F(AdmissionFleetTest, WithTheControlPlaneGoneAFailOpenBudgetKeepsServing) {
  ASSERT_TRUE(CreateBudget("open-budget", 1000 * kRequestCost, /*fail_open=*/true).ok());
  StartGateways(1);
  int64_t told = 0;
  ASSERT_TRUE(Stream(0, &told).ok());
  control_->process().Signal(SIGKILL);
  ASSERT_TRUE(control_->process().Wait(seconds(10)).has_value());
  // Past the lease's lifetime, requests are admitted without one, and counted.
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::Status s = Stream(0, &told);
        EXPECT_TRUE(s.ok()) << s.error_message();
        return MetricValue(gateways_[0]->Metrics(), "turnpike_admission_fail_open_total") >= 1;
      },
      seconds(15)));
}

}  // namespace
}  // namespace turnpike::testing
