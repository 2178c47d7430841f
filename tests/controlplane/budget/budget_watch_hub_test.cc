// BudgetWatchHub on a simulated clock and a real SQLite file: the first delivery carries every
// watched budget, a burst of changes within the coalescing interval becomes one delivery per
// budget, window rollovers, lease expiry and admin changes (including deletion) are delivered,
// a name filter holds, and shutdown tells every subscriber.
#include "controlplane/budget/budget_watch_hub.h"

#include <vector>

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

namespace b = ::turnpike::budget::v1;
using turnpike::testing::WaitFor;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

class Recorder : public BudgetWatchHub::Subscriber {
 public:
  struct Delivery {
    std::vector<b::BudgetStatus> budgets;
    std::vector<std::string> removed;
  };
  void OnBudgets(std::vector<b::BudgetStatus> budgets, std::vector<std::string> removed) override {
    absl::MutexLock lock(&mu_);
    deliveries_.push_back({std::move(budgets), std::move(removed)});
  }
  void OnShutdown() override {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return deliveries_.size();
  }
  Delivery at(size_t i) {
    absl::MutexLock lock(&mu_);
    return deliveries_.at(i);
  }
  bool shutdown() {
    absl::MutexLock lock(&mu_);
    return shutdown_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

class BudgetWatchHubTest : public AdminFixture {
 protected:
  void SetUp() override {
    AdminFixture::SetUp();
    clock_.Advance(Utc(2026, 12, 6, 23, 59, 58) - clock_.Now());
    ledger_ = *LeaseLedger::Create(*store_, clock_, LeaseLedger::Options{});
    CreateBudget("a");
    CreateBudget("b");
    hub_ = BudgetWatchHub::Start(*ledger_, cache_, clock_, BudgetWatchHub::Options{});
  }
  void TearDown() override {
    hub_.reset();
    AdminFixture::TearDown();
  }

  void CreateBudget(const std::string& name, int64_t limit = 1000) {
    admin::v1::Budget bud;
    bud.mutable_spec()->set_name(name);
    bud.mutable_spec()->set_capability("demo");
    bud.mutable_spec()->set_limit_usd_micros(limit);
    bud.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_DAILY);
    ASSERT_TRUE(admin_->CreateResource(bud, "test").ok());
    cache_.Publish(LastPublished());
  }
  void Grant(const std::string& budget, int64_t amount) {
    b::AcquireLeaseRequest r;
    r.set_node_id("gw");
    r.mutable_quota()->set_budget(budget);
    r.set_requested(amount);
    ASSERT_TRUE(ledger_->Acquire(r).ok());
  }

  SnapshotCache cache_;
  std::unique_ptr<LeaseLedger> ledger_;
  std::unique_ptr<BudgetWatchHub> hub_;
};

TEST_F(BudgetWatchHubTest, FirstDeliveryThenOneCoalescedDeliveryPerBurst) {
  Recorder all;
  ASSERT_TRUE(hub_->Subscribe(&all, {}));
  ASSERT_TRUE(WaitFor([&] { return all.count() == 1; }));
  Recorder::Delivery first = all.at(0);
  ASSERT_EQ(first.budgets.size(), 2u);
  EXPECT_EQ(first.budgets[0].name(), "a");
  EXPECT_EQ(first.budgets[1].name(), "b");

  for (int i = 0; i < 10; ++i) Grant("a", 10);
  Grant("b", 5);
  // The simulated clock has not moved: the coalescing interval has not passed.
  EXPECT_FALSE(WaitFor([&] { return all.count() > 1; }, absl::Milliseconds(50)));
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return all.count() == 2; }));
  Recorder::Delivery burst = all.at(1);
  ASSERT_EQ(burst.budgets.size(), 2u);  // one state per budget, the newest
  for (const b::BudgetStatus& s : burst.budgets) {
    EXPECT_EQ(s.leases_size(), s.name() == "a" ? 10 : 1) << s.name();
    EXPECT_EQ(s.leased_usd_micros(), s.name() == "a" ? 100 : 5) << s.name();
  }
  hub_->Unsubscribe(&all);
}

TEST_F(BudgetWatchHubTest, RolloverExpiryAdminChangesAndFilters) {
  Recorder only_a, later;
  ASSERT_TRUE(hub_->Subscribe(&only_a, {"a"}));
  ASSERT_TRUE(hub_->Subscribe(&later, {"c"}));  // does not exist yet
  ASSERT_TRUE(WaitFor([&] { return only_a.count() == 1 && later.count() == 1; }));
  EXPECT_EQ(only_a.at(0).budgets.size(), 1u);
  EXPECT_TRUE(later.at(0).budgets.empty());

  // A change to "b" reaches no one; "a" gets a grant.
  Grant("b", 1);
  Grant("a", 300);
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return only_a.count() == 2; }));
  ASSERT_EQ(only_a.at(1).budgets.size(), 1u);
  EXPECT_EQ(only_a.at(1).budgets[0].leased_usd_micros(), 300);

  // Midnight UTC: the window rolls over and the sweep notices.
  clock_.Advance(absl::Seconds(2));  // 2026-12-07T00:00:00.1Z
  ASSERT_TRUE(WaitFor([&] { return only_a.count() == 3; }));
  const b::BudgetStatus rolled = only_a.at(2).budgets.at(0);
  EXPECT_EQ(rolled.window_start().seconds(), absl::ToUnixSeconds(Utc(2026, 12, 7)));
  EXPECT_EQ(rolled.leased_usd_micros(), 0);

  // A lease that is never renewed expires in a sweep.
  Grant("a", 200);
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return only_a.count() == 4; }));
  EXPECT_EQ(only_a.at(3).budgets.at(0).leases_size(), 1);
  clock_.Advance(absl::Seconds(31));
  ASSERT_TRUE(WaitFor([&] { return only_a.count() == 5; }));
  EXPECT_EQ(only_a.at(4).budgets.at(0).leases_size(), 0);
  // The 200 of this window, and the leases of "a" and "b" left in yesterday's window.
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_USD_MICROS).expired, 3);

  // Admin changes: "c" appears for the subscriber that waited for it; "a" is deleted.
  CreateBudget("c", 42);
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Budget>("a", 0, "test").ok());
  cache_.Publish(LastPublished());
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return later.count() == 2 && only_a.count() == 6; }));
  ASSERT_EQ(later.at(1).budgets.size(), 1u);
  EXPECT_EQ(later.at(1).budgets[0].limit_usd_micros(), 42);
  EXPECT_TRUE(only_a.at(5).budgets.empty());
  EXPECT_EQ(only_a.at(5).removed, std::vector<std::string>{"a"});

  hub_->Shutdown();
  EXPECT_TRUE(only_a.shutdown());
  EXPECT_TRUE(later.shutdown());
  Recorder too_late;
  EXPECT_FALSE(hub_->Subscribe(&too_late, {}));
}

}  // namespace
}  // namespace turnpike::controlplane::testing
