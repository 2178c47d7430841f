// The lease ledger on a simulated clock and a real SQLite file: grants (whole, partial, none,
// minimum), renewals with reports, idempotent releases, expiry charging the last reported
// spent + reserved, windows rolling over at UTC midnight, month ends and minutes, limits changed
// mid-window, and the invariant settled + live granted <= limit under many threads on two
// connections to one file.
#include "controlplane/budget/lease_ledger.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/random/random.h"
#include "absl/time/civil_time.h"
#include "common/quota_window.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

namespace b = ::turnpike::budget::v1;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}
absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}
std::string Reason(const absl::Status& s) {
  std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(s);
  return info.has_value() ? info->reason() : "";
}

b::AcquireLeaseRequest Ask(const std::string& node, const std::string& budget, int64_t requested,
                           int64_t minimum = 0) {
  b::AcquireLeaseRequest r;
  r.set_node_id(node);
  r.mutable_quota()->set_budget(budget);
  r.set_requested(requested);
  r.set_minimum(minimum);
  return r;
}
b::AcquireLeaseRequest AskLimit(const std::string& node, const std::string& limit,
                                b::QuotaUnit unit, const std::string& key, int64_t requested) {
  b::AcquireLeaseRequest r;
  r.set_node_id(node);
  r.mutable_quota()->set_rate_limit(limit);
  r.mutable_quota()->set_unit(unit);
  r.mutable_quota()->set_key(key);
  r.set_requested(requested);
  return r;
}
b::AcquireLeaseRequest Renew(const std::string& node, const std::string& lease_id, int64_t spent,
                             int64_t reserved, int64_t requested = 0) {
  b::AcquireLeaseRequest r;
  r.set_node_id(node);
  r.set_lease_id(lease_id);
  r.set_spent(spent);
  r.set_reserved(reserved);
  r.set_requested(requested);
  return r;
}
b::ReleaseLeaseRequest Release(const std::string& node, const std::string& lease_id,
                               int64_t spent) {
  b::ReleaseLeaseRequest r;
  r.set_node_id(node);
  r.set_lease_id(lease_id);
  r.set_spent(spent);
  return r;
}

// settled + live granted of every window, minus its limit: never positive. One consistent read.
absl::StatusOr<int64_t> WorstHeadroomViolation(Store& store, int64_t limit) {
  int64_t worst = INT64_MIN;
  absl::Status s = store.Read([&](SqliteDb& db) -> absl::Status {
    absl::StatusOr<SqliteStatement> st = db.Prepare(
        "SELECT q.settled + coalesce((SELECT sum(granted) FROM leases l WHERE "
        "l.quota_key = q.quota_key AND l.window_start = q.window_start AND l.state = 1), 0) "
        "FROM quota_windows q");
    if (!st.ok()) return st.status();
    while (true) {
      absl::StatusOr<bool> row = st->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      worst = std::max(worst, st->ColumnInt(0) - limit);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return worst;
}

class LeaseLedgerTest : public AdminFixture {
 protected:
  void SetUp() override {
    AdminFixture::SetUp();
    AdvanceTo(Utc(2026, 12, 6, 12, 0, 0));
    auto ledger = LeaseLedger::Create(*store_, clock_, LeaseLedger::Options{});
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  void AdvanceTo(absl::Time t) { clock_.Advance(t - clock_.Now()); }

  void CreateBudget(const std::string& name, int64_t limit,
                    config::v1::BudgetWindow window = config::v1::BUDGET_WINDOW_DAILY) {
    admin::v1::Budget bud;
    bud.mutable_spec()->set_name(name);
    bud.mutable_spec()->set_capability("demo");
    bud.mutable_spec()->set_limit_usd_micros(limit);
    bud.mutable_spec()->set_window(window);
    auto out = admin_->CreateResource(bud, "test");
    ASSERT_TRUE(out.ok()) << out.status();
  }
  void SetBudgetLimit(const std::string& name, int64_t limit) {
    admin::v1::Budget bud;
    bud.mutable_spec()->set_name(name);
    bud.mutable_spec()->set_limit_usd_micros(limit);
    google::protobuf::FieldMask mask;
    mask.add_paths("spec.limit_usd_micros");
    auto out = admin_->UpdateResource(bud, mask, "test");
    ASSERT_TRUE(out.ok()) << out.status();
  }

  b::AcquireLeaseResponse MustAcquire(const b::AcquireLeaseRequest& r) {
    absl::StatusOr<b::AcquireLeaseResponse> out = ledger_->Acquire(r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : b::AcquireLeaseResponse();
  }
  b::BudgetStatus Status(const std::string& name) {
    absl::StatusOr<b::BudgetStatus> s = ledger_->GetBudget(name);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : b::BudgetStatus();
  }
  void ExpectInvariant(int64_t limit) {
    absl::StatusOr<int64_t> worst = WorstHeadroomViolation(*store_, limit);
    ASSERT_TRUE(worst.ok()) << worst.status();
    EXPECT_LE(*worst, 0);
  }

  std::unique_ptr<LeaseLedger> ledger_;
};

TEST_F(LeaseLedgerTest, GrantsWholePartialNoneAndRespectsMinimum) {
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-a", "daily", 400));
  EXPECT_FALSE(a.lease_id().empty());
  EXPECT_EQ(a.granted(), 400);
  EXPECT_EQ(a.granted_usd_micros(), 400);
  EXPECT_EQ(a.lease_total(), 400);
  EXPECT_EQ(a.limit(), 1000);
  EXPECT_EQ(a.remaining(), 600);
  EXPECT_EQ(FromTs(a.expires_at()), clock_.Now() + absl::Seconds(30));
  EXPECT_EQ(FromTs(a.window_start()), Utc(2026, 12, 6));
  EXPECT_EQ(FromTs(a.window_end()), Utc(2026, 12, 7));

  b::AcquireLeaseResponse partial = MustAcquire(Ask("gw-b", "daily", 700));
  EXPECT_EQ(partial.granted(), 600);
  EXPECT_EQ(partial.remaining(), 0);

  // Nothing left: no lease, but the limit and window say when capacity returns.
  b::AcquireLeaseResponse none = MustAcquire(Ask("gw-c", "daily", 100));
  EXPECT_TRUE(none.lease_id().empty());
  EXPECT_EQ(none.granted(), 0);
  EXPECT_EQ(none.limit(), 1000);
  EXPECT_EQ(FromTs(none.window_end()), Utc(2026, 12, 7));
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_USD_MICROS).refused, 1);
  ExpectInvariant(1000);

  // gw-a spent 100 of its 400: 300 returns.
  ASSERT_TRUE(ledger_->Release(Release("gw-a", a.lease_id(), 100)).ok());
  EXPECT_EQ(MustAcquire(Ask("gw-c", "daily", 350, 350)).granted(), 0);  // 300 < minimum
  b::AcquireLeaseResponse fit = MustAcquire(Ask("gw-c", "daily", 350, 200));
  EXPECT_EQ(fit.granted(), 300);
  EXPECT_EQ(fit.remaining(), 0);
  ExpectInvariant(1000);

  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(s.limit_usd_micros(), 1000);
  EXPECT_EQ(s.spent_usd_micros(), 100);
  EXPECT_EQ(s.leased_usd_micros(), 900);
  EXPECT_EQ(s.remaining_usd_micros(), 0);
  EXPECT_EQ(s.leases_size(), 2);
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_USD_MICROS).grants, 3);
}

TEST_F(LeaseLedgerTest, RefusesMalformedRequestsAndUnknownQuotas) {
  CreateBudget("daily", 1000);
  auto bad = [&](b::AcquireLeaseRequest r, const char* field) {
    absl::StatusOr<b::AcquireLeaseResponse> out = ledger_->Acquire(r);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    EXPECT_THAT(ViolatedFields(out.status()), ::testing::Contains(field)) << out.status();
  };
  bad(Ask("", "daily", 10), "node_id");
  bad(Ask("gw", "daily", 0), "requested");
  bad(Ask("gw", "daily", -5), "requested");
  bad(Ask("gw", "daily", 10, 20), "minimum");
  b::AcquireLeaseRequest both = Ask("gw", "daily", 10);
  both.mutable_quota()->set_rate_limit("rpm");
  bad(both, "quota");
  b::AcquireLeaseRequest wrong_unit = Ask("gw", "daily", 10);
  wrong_unit.mutable_quota()->set_unit(b::QUOTA_UNIT_TOKENS);
  bad(wrong_unit, "quota.unit");
  bad(AskLimit("gw", "rpm", b::QUOTA_UNIT_USD_MICROS, "", 1), "quota.unit");

  absl::StatusOr<b::AcquireLeaseResponse> missing = ledger_->Acquire(Ask("gw", "nope", 10));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  // The legacy form: `budget` and `requested_usd_micros`.
  b::AcquireLeaseRequest legacy;
  legacy.set_node_id("gw");
  legacy.set_budget("daily");
  legacy.set_requested_usd_micros(250);
  b::AcquireLeaseResponse out = MustAcquire(legacy);
  EXPECT_EQ(out.granted_usd_micros(), 250);
}

TEST_F(LeaseLedgerTest, RenewReportsExtendsAndTopsUp) {
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-a", "daily", 300));
  clock_.Advance(absl::Seconds(20));
  // A heartbeat with a report: nothing more granted, the expiry moves.
  b::AcquireLeaseResponse hb = MustAcquire(Renew("gw-a", a.lease_id(), 120, 60));
  EXPECT_EQ(hb.lease_id(), a.lease_id());
  EXPECT_EQ(hb.granted(), 0);
  EXPECT_EQ(hb.lease_total(), 300);
  EXPECT_EQ(FromTs(hb.expires_at()), clock_.Now() + absl::Seconds(30));
  EXPECT_EQ(hb.remaining(), 700);
  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(s.spent_usd_micros(), 120);
  EXPECT_EQ(s.leased_usd_micros(), 180);
  EXPECT_EQ(s.remaining_usd_micros(), 700);
  ASSERT_EQ(s.leases_size(), 1);
  EXPECT_EQ(s.leases(0).node_id(), "gw-a");
  EXPECT_EQ(s.leases(0).reserved_usd_micros(), 60);

  // A top-up.
  b::AcquireLeaseResponse up = MustAcquire(Renew("gw-a", a.lease_id(), 200, 0, 500));
  EXPECT_EQ(up.granted(), 500);
  EXPECT_EQ(up.lease_total(), 800);
  EXPECT_EQ(up.remaining(), 200);
  ExpectInvariant(1000);

  absl::StatusOr<b::AcquireLeaseResponse> other =
      ledger_->Acquire(Renew("gw-b", a.lease_id(), 0, 0));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  absl::StatusOr<b::AcquireLeaseResponse> unknown =
      ledger_->Acquire(Renew("gw-a", "0123456789abcdef", 0, 0));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  b::AcquireLeaseRequest wrong_quota = Renew("gw-a", a.lease_id(), 0, 0);
  wrong_quota.mutable_quota()->set_budget("other");
  EXPECT_EQ(ledger_->Acquire(wrong_quota).status().code(), absl::StatusCode::kInvalidArgument);

  clock_.Advance(absl::Seconds(30));  // not renewed in time
  absl::StatusOr<b::AcquireLeaseResponse> late =
      ledger_->Acquire(Renew("gw-a", a.lease_id(), 0, 0));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Reason(late.status()), "LEASE_EXPIRED");
}

TEST_F(LeaseLedgerTest, ReleaseIsIdempotentAndCountsOverruns) {
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-a", "daily", 400));
  EXPECT_EQ(ledger_->Release(Release("gw-b", a.lease_id(), 0)).status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::StatusOr<b::ReleaseLeaseResponse> first =
      ledger_->Release(Release("gw-a", a.lease_id(), 150));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->remaining(), 850);
  EXPECT_EQ(first->budget().spent_usd_micros(), 150);
  absl::StatusOr<b::ReleaseLeaseResponse> again =
      ledger_->Release(Release("gw-a", a.lease_id(), 999));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->remaining(), 850);
  EXPECT_EQ(Status("daily").spent_usd_micros(), 150);
  absl::StatusOr<b::AcquireLeaseResponse> renew =
      ledger_->Acquire(Renew("gw-a", a.lease_id(), 0, 0));
  EXPECT_EQ(Reason(renew.status()), "LEASE_RELEASED");
  EXPECT_EQ(ledger_->Release(Release("gw-a", "feedfacefeedface", 1)).status().code(),
            absl::StatusCode::kNotFound);

  // The provider overran the bound: recorded as is, counted, and nothing more is granted.
  b::AcquireLeaseResponse b2 = MustAcquire(Ask("gw-a", "daily", 850));
  ASSERT_TRUE(ledger_->Release(Release("gw-a", b2.lease_id(), 900)).ok());
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_USD_MICROS).overrun, 50);
  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(s.spent_usd_micros(), 1050);
  EXPECT_EQ(s.remaining_usd_micros(), 0);
  EXPECT_EQ(MustAcquire(Ask("gw-a", "daily", 1)).granted(), 0);
}

TEST_F(LeaseLedgerTest, ExpiryChargesReportedSpentPlusReservedAndReturnsTheRest) {
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-dead", "daily", 500));
  MustAcquire(Renew("gw-dead", a.lease_id(), 100, 50));
  clock_.Advance(absl::Seconds(29));
  ASSERT_EQ(*ledger_->ExpireDue(), 0);
  clock_.Advance(absl::Seconds(1));  // expires_at <= now
  // Before the sweep, the state already counts the lease as the sweep will.
  b::BudgetStatus before = Status("daily");
  EXPECT_EQ(before.spent_usd_micros(), 150);
  EXPECT_EQ(before.leases_size(), 0);
  ASSERT_EQ(*ledger_->ExpireDue(), 1);
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_USD_MICROS).expired, 1);
  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(s.spent_usd_micros(), 150);
  EXPECT_EQ(s.leased_usd_micros(), 0);
  EXPECT_EQ(s.remaining_usd_micros(), 850);
  EXPECT_EQ(MustAcquire(Ask("gw-live", "daily", 2000)).granted(), 850);

  // The dead gateway comes back and releases with the truth: the charge is corrected, once.
  ASSERT_TRUE(ledger_->Release(Release("gw-dead", a.lease_id(), 120)).ok());
  EXPECT_EQ(Status("daily").spent_usd_micros(), 120);
  ASSERT_TRUE(ledger_->Release(Release("gw-dead", a.lease_id(), 10)).ok());
  EXPECT_EQ(Status("daily").spent_usd_micros(), 120);
  ExpectInvariant(1000);
}

// A gateway reports ahead (docs/budgets.md, "A gateway that dies"): until its next report, what
// the control plane granted may all have been admitted against, so a lapse charges it in full.
TEST_F(LeaseLedgerTest, AGrantCountsInFullUntilTheNextReport) {
  CreateBudget("daily", 10'000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-dead", "daily", 1'000));
  EXPECT_EQ(Status("daily").leases(0).reserved_usd_micros(), 1'000) << "nothing reported yet";
  // The report: 100 spent, 150 more it may use before its next report; the rest is parked.
  MustAcquire(Renew("gw-dead", a.lease_id(), 100, 150));
  // A top-up of 2,000 in the same kind of call counts in full on top of that report.
  b::AcquireLeaseResponse up = MustAcquire(Renew("gw-dead", a.lease_id(), 100, 150, 2'000));
  EXPECT_EQ(up.granted(), 2'000);
  EXPECT_EQ(Status("daily").leases(0).reserved_usd_micros(), 2'150);
  clock_.Advance(absl::Seconds(31));
  ASSERT_EQ(*ledger_->ExpireDue(), 1);
  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(s.spent_usd_micros(), 100 + 2'150) << "the report plus the unreported top-up";
  EXPECT_EQ(s.remaining_usd_micros(), 10'000 - 2'250) << "the parked 750 returned";
  ExpectInvariant(10'000);
}

TEST_F(LeaseLedgerTest, LazyExpiryOnTheNextGrant) {
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw-dead", "daily", 1000));
  MustAcquire(Renew("gw-dead", a.lease_id(), 0, 300));
  EXPECT_EQ(MustAcquire(Ask("gw-b", "daily", 10)).granted(), 0);
  clock_.Advance(absl::Seconds(31));
  b::AcquireLeaseResponse b2 = MustAcquire(Ask("gw-b", "daily", 1000));
  EXPECT_EQ(b2.granted(), 700);  // the reserved 300 stays charged
  ExpectInvariant(1000);
}

TEST_F(LeaseLedgerTest, DailyWindowRollsOverAtUtcMidnightExactly) {
  CreateBudget("daily", 1000);
  AdvanceTo(Utc(2026, 12, 6, 23, 59, 59) + absl::Microseconds(999999));
  b::AcquireLeaseResponse old = MustAcquire(Ask("gw", "daily", 1000));
  EXPECT_EQ(old.granted(), 1000);
  EXPECT_EQ(FromTs(old.window_end()), Utc(2026, 12, 7));
  clock_.Advance(absl::Microseconds(1));  // 2026-12-07T00:00:00Z
  b::AcquireLeaseResponse fresh = MustAcquire(Ask("gw", "daily", 1000));
  EXPECT_EQ(fresh.granted(), 1000);
  EXPECT_EQ(FromTs(fresh.window_start()), Utc(2026, 12, 7));
  absl::StatusOr<b::AcquireLeaseResponse> topup =
      ledger_->Acquire(Renew("gw", old.lease_id(), 0, 0, 1));
  EXPECT_EQ(topup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Reason(topup.status()), "LEASE_WINDOW_ENDED");
  // A heartbeat still reports on it while its requests settle; nothing more is granted.
  b::AcquireLeaseResponse hb = MustAcquire(Renew("gw", old.lease_id(), 600, 100));
  EXPECT_EQ(hb.granted(), 0);
  EXPECT_EQ(hb.remaining(), 0);
  EXPECT_EQ(FromTs(hb.window_end()), Utc(2026, 12, 7));
  EXPECT_EQ(FromTs(hb.expires_at()), clock_.Now() + absl::Seconds(30));
  // The old lease settles in its own window; the new window does not see it.
  ASSERT_TRUE(ledger_->Release(Release("gw", old.lease_id(), 700)).ok());
  b::BudgetStatus s = Status("daily");
  EXPECT_EQ(FromTs(s.window_start()), Utc(2026, 12, 7));
  EXPECT_EQ(s.spent_usd_micros(), 0);
  EXPECT_EQ(s.leased_usd_micros(), 1000);
  ExpectInvariant(1000);
}

TEST_F(LeaseLedgerTest, WindowsAtMonthEndsLeapDaysAndMinutes) {
  using config::v1::BUDGET_WINDOW_DAILY;
  using config::v1::BUDGET_WINDOW_MONTHLY;
  using config::v1::BUDGET_WINDOW_TOTAL;
  QuotaWindow feb = BudgetWindowAt(BUDGET_WINDOW_MONTHLY, Utc(2028, 2, 29, 23, 59, 59));
  EXPECT_EQ(feb.start, Utc(2028, 2, 1));
  EXPECT_EQ(feb.end, Utc(2028, 3, 1));
  QuotaWindow dec = BudgetWindowAt(BUDGET_WINDOW_MONTHLY, Utc(2026, 12, 31, 23, 59, 59));
  EXPECT_EQ(dec.end, Utc(2027, 1, 1));
  EXPECT_EQ(BudgetWindowAt(BUDGET_WINDOW_MONTHLY, Utc(2027, 1, 1)).start, Utc(2027, 1, 1));
  EXPECT_EQ(BudgetWindowAt(BUDGET_WINDOW_DAILY, Utc(2028, 2, 29, 5)).end, Utc(2028, 3, 1));
  EXPECT_EQ(BudgetWindowAt(BUDGET_WINDOW_TOTAL, Utc(2028, 2, 29)).start, absl::UnixEpoch());
  QuotaWindow minute = MinuteWindowAt(Utc(2026, 12, 6, 10, 59, 59) + absl::Milliseconds(999));
  EXPECT_EQ(minute.start, Utc(2026, 12, 6, 10, 59, 0));
  EXPECT_EQ(minute.end, Utc(2026, 12, 6, 11, 0, 0));

  CreateBudget("monthly", 500, BUDGET_WINDOW_MONTHLY);
  AdvanceTo(Utc(2026, 12, 31, 23, 59, 59));
  b::AcquireLeaseResponse a = MustAcquire(Ask("gw", "monthly", 500));
  ASSERT_TRUE(ledger_->Release(Release("gw", a.lease_id(), 500)).ok());
  EXPECT_EQ(MustAcquire(Ask("gw", "monthly", 1)).granted(), 0);
  clock_.Advance(absl::Seconds(1));
  b::AcquireLeaseResponse jan = MustAcquire(Ask("gw", "monthly", 500));
  EXPECT_EQ(jan.granted(), 500);
  EXPECT_EQ(FromTs(jan.window_start()), Utc(2027, 1, 1));
  EXPECT_EQ(FromTs(jan.window_end()), Utc(2027, 2, 1));
}

TEST_F(LeaseLedgerTest, RateLimitsLeasePerMinuteAndPerKey) {
  admin::v1::RateLimit shared;
  shared.mutable_spec()->set_name("rpm");
  shared.mutable_spec()->set_requests_per_minute(10);
  ASSERT_TRUE(admin_->CreateResource(shared, "t").ok());
  admin::v1::RateLimit per_user;
  per_user.mutable_spec()->set_name("tpm-user");
  per_user.mutable_spec()->set_tokens_per_minute(1000);
  per_user.mutable_spec()->set_key(config::v1::RATE_LIMIT_KEY_PER_END_USER);
  ASSERT_TRUE(admin_->CreateResource(per_user, "t").ok());
  AdvanceTo(Utc(2026, 12, 6, 12, 0, 30));

  // A shared limit ignores a key: one counter.
  EXPECT_EQ(MustAcquire(AskLimit("gw-a", "rpm", b::QUOTA_UNIT_REQUESTS, "", 6)).granted(), 6);
  b::AcquireLeaseResponse r = MustAcquire(AskLimit("gw-b", "rpm", b::QUOTA_UNIT_REQUESTS, "x", 6));
  EXPECT_EQ(r.granted(), 4);
  EXPECT_EQ(FromTs(r.window_start()), Utc(2026, 12, 6, 12, 0, 0));
  EXPECT_EQ(FromTs(r.window_end()), Utc(2026, 12, 6, 12, 1, 0));
  EXPECT_EQ(ledger_->counters(b::QUOTA_UNIT_REQUESTS).grants, 2);
  absl::StatusOr<b::AcquireLeaseResponse> no_tokens =
      ledger_->Acquire(AskLimit("gw-a", "rpm", b::QUOTA_UNIT_TOKENS, "", 6));
  EXPECT_EQ(Reason(no_tokens.status()), "QUOTA_UNIT_NOT_LIMITED");
  // The next minute is a new window.
  AdvanceTo(Utc(2026, 12, 6, 12, 1, 0));
  EXPECT_EQ(MustAcquire(AskLimit("gw-a", "rpm", b::QUOTA_UNIT_REQUESTS, "", 20)).granted(), 10);

  // Per end user: one counter each.
  EXPECT_EQ(MustAcquire(AskLimit("gw", "tpm-user", b::QUOTA_UNIT_TOKENS, "alice", 1000)).granted(),
            1000);
  EXPECT_EQ(MustAcquire(AskLimit("gw", "tpm-user", b::QUOTA_UNIT_TOKENS, "alice", 1)).granted(), 0);
  EXPECT_EQ(MustAcquire(AskLimit("gw", "tpm-user", b::QUOTA_UNIT_TOKENS, "bob", 1000)).granted(),
            1000);
  ExpectInvariant(1000);
}

TEST_F(LeaseLedgerTest, ChangedLimitAppliesToTheNextGrant) {
  CreateBudget("daily", 1000);
  MustAcquire(Ask("gw", "daily", 800));
  SetBudgetLimit("daily", 500);  // below what is already leased: nothing more is granted
  b::AcquireLeaseResponse none = MustAcquire(Ask("gw", "daily", 1));
  EXPECT_EQ(none.granted(), 0);
  EXPECT_EQ(none.limit(), 500);
  EXPECT_EQ(none.remaining(), 0);
  EXPECT_EQ(Status("daily").remaining_usd_micros(), 0);
  SetBudgetLimit("daily", 2000);
  b::AcquireLeaseResponse more = MustAcquire(Ask("gw", "daily", 5000));
  EXPECT_EQ(more.granted(), 1200);
  ExpectInvariant(2000);
}

TEST_F(LeaseLedgerTest, OptionsAreValidated) {
  LeaseLedger::Options o;
  o.lease_ttl = absl::Milliseconds(10);
  EXPECT_EQ(LeaseLedger::Create(*store_, clock_, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.lease_ttl = absl::Hours(2);
  EXPECT_FALSE(LeaseLedger::Create(*store_, clock_, o).ok());
}

TEST_F(LeaseLedgerTest, PrunesClosedLeasesAndOldMinuteWindows) {
  admin::v1::RateLimit rpm;
  rpm.mutable_spec()->set_name("rpm");
  rpm.mutable_spec()->set_requests_per_minute(10);
  ASSERT_TRUE(admin_->CreateResource(rpm, "t").ok());
  CreateBudget("daily", 1000);
  b::AcquireLeaseResponse r = MustAcquire(AskLimit("gw", "rpm", b::QUOTA_UNIT_REQUESTS, "", 5));
  b::AcquireLeaseResponse d = MustAcquire(Ask("gw", "daily", 5));
  ASSERT_TRUE(ledger_->Release(Release("gw", r.lease_id(), 5)).ok());
  ASSERT_TRUE(ledger_->Release(Release("gw", d.lease_id(), 5)).ok());
  EXPECT_EQ(*ledger_->PruneClosed(), 0);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(*ledger_->PruneClosed(), 3);  // two leases and the minute window; the day is kept
  EXPECT_EQ(*ledger_->PruneClosed(), 0);
}

// Many threads on two connections to one file (two Stores, as two control-plane processes would
// have), opening, reporting, topping up and releasing leases of one budget while the clock jumps
// so that some leases expire: every committed state keeps settled + live granted <= limit, and
// what was released never exceeds the limit.
TEST_F(LeaseLedgerTest, InvariantHoldsUnderConcurrentAcquireAndRelease) {
  constexpr int64_t kLimit = 100'000;
  constexpr int kRounds = 150;
  CreateBudget("total", kLimit, config::v1::BUDGET_WINDOW_TOTAL);
  // The Store's advisory lock is per path; a second path to the same file stands in for a
  // second process (SQLite resolves the link, so both share the WAL and its locks).
  const std::string alias = dir_.File("alias.db");
  ASSERT_EQ(symlink(dir_.File("admin.db").c_str(), alias.c_str()), 0);
  Store::Options o;
  o.path = alias;
  auto second = Store::Open(o, EmbeddedMigrations());
  ASSERT_TRUE(second.ok()) << second.status();
  auto ledger2 = LeaseLedger::Create(**second, clock_, LeaseLedger::Options{});
  ASSERT_TRUE(ledger2.ok());
  LeaseLedger* ledgers[2] = {ledger_.get(), ledger2->get()};

  std::atomic<bool> stop{false};
  std::atomic<int64_t> granted_total{0}, released_spend{0}, ops{0}, violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      absl::BitGen gen;
      LeaseLedger& ledger = *ledgers[t % 2];
      const std::string node = absl::StrCat("gw-", t);
      // Each thread abandons its first granted lease, so that some lease always expires (with
      // only the random one in ten, a run whose budget ran out after a few dozen grants could
      // abandon none: about one run in 25).
      bool abandoned_one = false;
      for (int i = 0; i < kRounds; ++i) {
        int64_t want = absl::Uniform<int64_t>(gen, 1, 20'000);
        absl::StatusOr<b::AcquireLeaseResponse> a =
            ledger.Acquire(Ask(node, "total", want, absl::Uniform<int64_t>(gen, 0, want)));
        ASSERT_TRUE(a.ok()) << a.status();
        ops.fetch_add(1);
        if (a->granted() == 0) continue;
        granted_total.fetch_add(a->granted());
        // The gateway admits requests against the lease and reports them (spent + reserved) at a
        // renewal, which may also top the lease up. What it finally spends is at most what it
        // last reported: the contract under which an expired lease's charge (spent + reserved)
        // is exact (docs/budgets.md).
        const int64_t total = a->lease_total();
        const int64_t spent = absl::Uniform<int64_t>(gen, 0, total + 1);
        const int64_t reserved = absl::Uniform<int64_t>(gen, 0, total - spent + 1);
        absl::StatusOr<b::AcquireLeaseResponse> up = ledger.Acquire(
            Renew(node, a->lease_id(), spent, reserved, absl::Uniform<int64_t>(gen, 0, 5000)));
        const int64_t covered = up.ok() ? spent + reserved : 0;
        if (!up.ok()) {
          ASSERT_EQ(up.status().code(), absl::StatusCode::kFailedPrecondition) << up.status();
        }
        if (!abandoned_one || absl::Bernoulli(gen, 0.1)) {  // abandoned: it will expire
          abandoned_one = true;
          continue;
        }
        const int64_t final_spent = absl::Uniform<int64_t>(gen, 0, covered + 1);
        absl::StatusOr<b::ReleaseLeaseResponse> rel =
            ledger.Release(Release(node, a->lease_id(), final_spent));
        ASSERT_TRUE(rel.ok()) << rel.status();
        released_spend.fetch_add(final_spent);
      }
    });
  }
  // Jumps the clock so that abandoned leases expire mid-run, and checks the invariant in every
  // state it reads.
  std::thread checker([&] {
    while (!stop.load()) {
      clock_.Advance(absl::Seconds(7));
      ledgers[0]->ExpireDue().IgnoreError();
      absl::StatusOr<int64_t> worst = WorstHeadroomViolation(**second, kLimit);
      if (!worst.ok()) {
        ADD_FAILURE() << worst.status();
      } else if (*worst > 0) {
        ADD_FAILURE() << "settled + live granted exceeds the limit by " << *worst;
        violations.fetch_add(1);
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  for (auto& th : threads) th.join();
  stop.store(true);
  checker.join();
  // Whatever the interleaving, the abandoned leases (about one in ten) lapse once past their TTL.
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(ledgers[0]->ExpireDue().ok());
  EXPECT_EQ(violations.load(), 0);
  ExpectInvariant(kLimit);
  EXPECT_EQ(ops.load(), 8 * kRounds);
  EXPECT_GT(granted_total.load(), kLimit);  // leases were returned and granted again
  EXPECT_GT(ledgers[0]->counters(b::QUOTA_UNIT_USD_MICROS).expired +
                ledgers[1]->counters(b::QUOTA_UNIT_USD_MICROS).expired,
            0);
  EXPECT_GT(ledgers[0]->counters(b::QUOTA_UNIT_USD_MICROS).refused +
                ledgers[1]->counters(b::QUOTA_UNIT_USD_MICROS).refused,
            0);
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(ledger_->ExpireDue().ok());
  b::BudgetStatus s = Status("total");
  EXPECT_EQ(s.leases_size(), 0);
  EXPECT_LE(s.spent_usd_micros(), kLimit);
  EXPECT_GE(s.spent_usd_micros(), released_spend.load());
}

}  // namespace
}  // namespace turnpike::controlplane::testing

namespace turnpike::controlplane::testing {
namespace {

// A database made by a binary that knew 0001 and 0002 gains the lease tables on the next start,
// keeping its budgets, and leases from them at once.
TEST(LeaseMigrationTest, ASchemaTwoDatabaseGainsTheLeaseLedger) {
  turnpike::testing::TempDir dir;
  Store::Options o;
  o.path = dir.File("old.db");
  {
    auto v2 = Store::Open(o, EmbeddedMigrations().subspan(0, 2));
    ASSERT_TRUE(v2.ok()) << v2.status();
    ASSERT_TRUE((*v2)
                    ->Write([](SqliteDb& db) {
                      return db.Exec(
                          "INSERT INTO budgets (name, spec, revision, create_time, update_time) "
                          "VALUES ('kept', '{\"name\":\"kept\",\"capability\":\"demo\","
                          "\"limit_usd_micros\":\"900\",\"window\":\"BUDGET_WINDOW_TOTAL\"}', 1, "
                          "0, 0)");
                    })
                    .ok());
  }
  auto v3 = Store::Open(o, EmbeddedMigrations());
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ((*v3)->schema_version(), static_cast<int64_t>(EmbeddedMigrations().size()));
  SimulatedClock clock;
  auto ledger = LeaseLedger::Create(**v3, clock, LeaseLedger::Options{});
  ASSERT_TRUE(ledger.ok());
  absl::StatusOr<b::AcquireLeaseResponse> lease = (*ledger)->Acquire(Ask("gw", "kept", 1000));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->granted(), 900);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
