// The control plane's budget gauges (docs/metrics.md, "Budgets") on a simulated clock and a real
// SQLite file: limit, spent, reserved and remaining of each budget follow grants, reports and
// releases, add up to the limit, and carry the budget's labels; a deleted budget's series go.
#include "controlplane/budget/budget_metrics.h"

#include <sstream>
#include <string>

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

namespace b = ::turnpike::budget::v1;

// The value of the series `name{labels}` exactly as rendered; -1 if absent.
double Value(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

class BudgetMetricsTest : public AdminFixture {
 protected:
  void SetUp() override {
    AdminFixture::SetUp();
    clock_.Advance(absl::FromCivil(absl::CivilSecond(2026, 12, 6, 12, 0, 0), absl::UTCTimeZone()) -
                   clock_.Now());
    auto ledger = LeaseLedger::Create(*store_, clock_, LeaseLedger::Options{});
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    AddBudgetMetrics(registry_, *ledger_);
  }

  void CreateBudget(const std::string& name, int64_t limit, const std::string& caller = "") {
    admin::v1::Budget bud;
    bud.mutable_spec()->set_name(name);
    bud.mutable_spec()->set_capability("demo");
    bud.mutable_spec()->set_caller(caller);
    bud.mutable_spec()->set_limit_usd_micros(limit);
    bud.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_DAILY);
    auto out = admin_->CreateResource(bud, "test");
    ASSERT_TRUE(out.ok()) << out.status();
  }

  std::unique_ptr<LeaseLedger> ledger_;
  MetricsRegistry registry_;
};

constexpr char kDaily[] = "{budget=\"daily\",capability=\"demo\",caller=\"\",tier=\"\"}";

TEST_F(BudgetMetricsTest, LimitSpentReservedAndRemainingFollowTheLedger) {
  CreateBudget("daily", 1000);
  std::string page = registry_.Render();
  EXPECT_EQ(Value(page, std::string("turnpike_budget_limit_usd_micros") + kDaily), 1000) << page;
  EXPECT_EQ(Value(page, std::string("turnpike_budget_spent_usd_micros") + kDaily), 0);
  EXPECT_EQ(Value(page, std::string("turnpike_budget_reserved_usd_micros") + kDaily), 0);
  EXPECT_EQ(Value(page, std::string("turnpike_budget_remaining_usd_micros") + kDaily), 1000);
  // The daily window ends at the next UTC midnight.
  EXPECT_EQ(Value(page, std::string("turnpike_budget_window_end_timestamp_seconds") + kDaily),
            absl::ToUnixSeconds(absl::FromCivil(absl::CivilDay(2026, 12, 7), absl::UTCTimeZone())));

  // A gateway leases 400 and reports 150 spent: 150 spent, 250 still reserved by its lease.
  b::AcquireLeaseRequest ask;
  ask.set_node_id("gw-a");
  ask.mutable_quota()->set_budget("daily");
  ask.set_requested(400);
  absl::StatusOr<b::AcquireLeaseResponse> lease = ledger_->Acquire(ask);
  ASSERT_TRUE(lease.ok()) << lease.status();
  b::AcquireLeaseRequest renew;
  renew.set_node_id("gw-a");
  renew.set_lease_id(lease->lease_id());
  renew.set_spent(150);
  ASSERT_TRUE(ledger_->Acquire(renew).ok());
  page = registry_.Render();
  const double spent = Value(page, std::string("turnpike_budget_spent_usd_micros") + kDaily);
  const double reserved = Value(page, std::string("turnpike_budget_reserved_usd_micros") + kDaily);
  const double remaining =
      Value(page, std::string("turnpike_budget_remaining_usd_micros") + kDaily);
  EXPECT_EQ(spent, 150);
  EXPECT_EQ(reserved, 250);
  EXPECT_EQ(remaining, 600);
  EXPECT_EQ(spent + reserved + remaining, 1000);

  // Released with 300 spent: the rest of the lease returns.
  b::ReleaseLeaseRequest release;
  release.set_node_id("gw-a");
  release.set_lease_id(lease->lease_id());
  release.set_spent(300);
  ASSERT_TRUE(ledger_->Release(release).ok());
  page = registry_.Render();
  EXPECT_EQ(Value(page, std::string("turnpike_budget_spent_usd_micros") + kDaily), 300);
  EXPECT_EQ(Value(page, std::string("turnpike_budget_reserved_usd_micros") + kDaily), 0);
  EXPECT_EQ(Value(page, std::string("turnpike_budget_remaining_usd_micros") + kDaily), 700);
}

TEST_F(BudgetMetricsTest, EachBudgetIsOneSeriesWithItsLabelsAndADeletedOneGoes) {
  CreateBudget("daily", 1000);
  CreateBudget("alice", 50, "alice");
  std::string page = registry_.Render();
  EXPECT_EQ(Value(page,
                  "turnpike_budget_limit_usd_micros{budget=\"alice\",capability=\"demo\","
                  "caller=\"alice\",tier=\"\"}"),
            50)
      << page;
  EXPECT_EQ(Value(page, std::string("turnpike_budget_limit_usd_micros") + kDaily), 1000);
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Budget>("alice", 0, "test").ok());
  page = registry_.Render();
  EXPECT_EQ(page.find("budget=\"alice\""), std::string::npos) << page;
  EXPECT_EQ(Value(page, std::string("turnpike_budget_remaining_usd_micros") + kDaily), 1000);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
