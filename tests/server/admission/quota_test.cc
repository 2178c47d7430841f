// Quota against the local lease ledger on a simulated clock: the lock-free reservation path, the
// manager's leases (open, top-up, rollover, release), waiters, refusals with their details, and
// failing open or closed when the source is unreachable.
#include "server/admission/quota.h"

#include <cstdio>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "common/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/admission/local_lease_source.h"

namespace turnpike {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

// A lease source that can be switched off (the control plane unreachable) and counts calls.
class SwitchableSource : public LeaseSource {
 public:
  explicit SwitchableSource(LeaseSource& inner) : inner_(inner) {}
  absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request) override {
    ++acquires;
    last_acquire = request;
    if (down) return absl::UnavailableError("control plane unreachable");
    return inner_.Acquire(request);
  }
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request) override {
    ++releases;
    last_release = request;
    if (down) return absl::UnavailableError("control plane unreachable");
    return inner_.Release(request);
  }
  bool down = false;
  int acquires = 0;
  int releases = 0;
  budget::v1::AcquireLeaseRequest last_acquire;
  budget::v1::ReleaseLeaseRequest last_release;

 private:
  LeaseSource& inner_;
};

class QuotaTest : public ::testing::Test {
 protected:
  QuotaTest()
      : clock_(Utc(2026, 12, 6, 10, 30, 10)),
        local_(
            [this](const budget::v1::Quota& q, absl::Time now) -> absl::StatusOr<QuotaSpec> {
              QuotaSpec spec;
              spec.limit = limit_;
              spec.window = q.budget().empty() ? MinuteWindowAt(now)
                            : q.budget() == "total"
                                ? BudgetWindowAt(config::v1::BUDGET_WINDOW_TOTAL, now)
                                : BudgetWindowAt(config::v1::BUDGET_WINDOW_DAILY, now);
              return spec;
            },
            clock_),
        source_(local_) {}

  std::unique_ptr<Quota> MakeRequestsQuota(int64_t limit, bool fail_open = false) {
    limit_ = limit;
    budget::v1::Quota id;
    id.set_rate_limit("rpm");
    id.set_unit(budget::v1::QUOTA_UNIT_REQUESTS);
    auto quota = std::make_unique<Quota>(id, Quota::Kind::kRequests,
                                         "rate limit \"rpm\" (requests per minute)", [] {});
    quota->set_settings({.limit = limit, .fail_open = fail_open});
    return quota;
  }

  // Runs one manager pass and then the callbacks it produced.
  void Maintain(Quota& quota) {
    std::vector<std::function<void()>> callbacks;
    quota.Maintain(source_, clock_, &callbacks);
    for (auto& callback : callbacks) callback();
  }

  // Adds a waiter that records its answer.
  struct Answer {
    bool done = false;
    absl::StatusOr<Quota::Reservation> result = absl::UnknownError("unset");
  };
  std::shared_ptr<Answer> Wait(Quota& quota, int64_t need, bool queue,
                               absl::Duration max_wait = absl::Seconds(5)) {
    auto answer = std::make_shared<Answer>();
    Quota::Waiter waiter;
    waiter.need = need;
    waiter.queue = queue;
    waiter.give_up = clock_.MonotonicNow() + max_wait;
    waiter.done = [answer](absl::StatusOr<Quota::Reservation> r) {
      answer->done = true;
      answer->result = std::move(r);
    };
    EXPECT_TRUE(quota.AddWaiter(std::move(waiter), 100));
    return answer;
  }

  SimulatedClock clock_;
  int64_t limit_ = 0;
  LocalLeaseSource local_;
  SwitchableSource source_;
};

TEST_F(QuotaTest, NoLeaseMeansTheFastPathDeclinesAndAWaiterGetsOneRoundTripLater) {
  auto quota = MakeRequestsQuota(600);
  Quota::Reservation r;
  EXPECT_FALSE(quota->TryReserve(1, clock_.MonotonicNow(), &r));
  auto answer = Wait(*quota, 1, /*queue=*/false);
  Maintain(*quota);
  ASSERT_TRUE(answer->done);
  ASSERT_TRUE(answer->result.ok()) << answer->result.status();
  EXPECT_EQ(answer->result->amount, 1);
  EXPECT_EQ(source_.acquires, 1);
  // The slice is a sixteenth of the limit: the next requests need no round trip.
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(quota->TryReserve(1, clock_.MonotonicNow(), &r)) << i;
  }
  EXPECT_EQ(source_.acquires, 1);
}

TEST_F(QuotaTest, NeverAdmitsMoreThanTheLimitInAMinuteAndRefusesWithWhenCapacityReturns) {
  auto quota = MakeRequestsQuota(10);
  int admitted = 0;
  for (int i = 0; i < 40; ++i) {
    Quota::Reservation r;
    if (quota->TryReserve(1, clock_.MonotonicNow(), &r)) {
      ++admitted;
      continue;
    }
    auto answer = Wait(*quota, 1, /*queue=*/false);
    Maintain(*quota);
    ASSERT_TRUE(answer->done);
    if (answer->result.ok()) {
      ++admitted;
      continue;
    }
    const absl::Status& s = answer->result.status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_THAT(s.message(), HasSubstr("rate limit \"rpm\""));
    std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(s);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->reason(), "RATE_LIMITED");
    EXPECT_EQ(info->metadata().at("rate_limit"), "rpm");
    std::optional<google::rpc::RetryInfo> retry = GetDetail<google::rpc::RetryInfo>(s);
    ASSERT_TRUE(retry.has_value());
    // 10:30:10 now: capacity returns with the next minute, 50 s away.
    EXPECT_EQ(retry->retry_delay().seconds(), 50);
  }
  EXPECT_EQ(admitted, 10);
}

TEST_F(QuotaTest, ANewMinuteBringsANewLeaseAndTheOldOneIsReleasedOnceItsRequestsSettle) {
  auto quota = MakeRequestsQuota(4);
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  const Quota::Reservation held = *first->result;  // still in flight at the rollover
  clock_.Advance(absl::Seconds(50));               // 10:31:00
  Quota::Reservation r;
  EXPECT_FALSE(quota->TryReserve(1, clock_.MonotonicNow(), &r)) << "the old minute's lease";
  auto second = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(second->result.ok()) << second->result.status();
  EXPECT_NE(second->result->slot, held.slot);
  EXPECT_EQ(source_.releases, 0) << "a request of the old lease is still in flight";
  quota->Settle(held, 1);
  Maintain(*quota);
  EXPECT_EQ(source_.releases, 1);
  EXPECT_EQ(source_.last_release.spent(), 1);
}

TEST_F(QuotaTest, QueuedWaiterIsServedWhenAnotherRequestReleasesItsHold) {
  auto quota = MakeRequestsQuota(1);
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  auto queued = Wait(*quota, 1, /*queue=*/true);
  Maintain(*quota);
  EXPECT_FALSE(queued->done) << "a queued request waits while the limit is used up";
  quota->Settle(*first->result, 0);  // failed before the provider: its hold returns
  Maintain(*quota);
  ASSERT_TRUE(queued->done);
  EXPECT_TRUE(queued->result.ok()) << queued->result.status();
}

TEST_F(QuotaTest, QueuedWaiterIsRefusedWhenItsWaitIsOver) {
  auto quota = MakeRequestsQuota(1);
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  auto queued = Wait(*quota, 1, /*queue=*/true, absl::Seconds(2));
  clock_.Advance(absl::Seconds(1));
  Maintain(*quota);
  EXPECT_FALSE(queued->done);
  clock_.Advance(absl::Seconds(1));
  Maintain(*quota);
  ASSERT_TRUE(queued->done);
  EXPECT_EQ(queued->result.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(QuotaTest, KeepsSpendingItsLeaseWhileTheSourceIsDownThenFailsClosed) {
  auto quota = MakeRequestsQuota(160);  // slices of 10
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  source_.down = true;
  Quota::Reservation r;
  EXPECT_TRUE(quota->TryReserve(1, clock_.MonotonicNow(), &r)) << "the lease is still good";
  // The lease lapses (30 s TTL, a second's margin) without renewal.
  clock_.Advance(absl::Seconds(29));
  Maintain(*quota);
  EXPECT_FALSE(quota->TryReserve(1, clock_.MonotonicNow(), &r));
  auto refused = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(refused->done);
  EXPECT_EQ(refused->result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused->result.status().message(), HasSubstr("fail closed"));
  EXPECT_EQ(quota->fail_closed_refusals(), 1);
}

TEST_F(QuotaTest, FailsOpenWhenTheLimitSaysSo) {
  auto quota = MakeRequestsQuota(160, /*fail_open=*/true);
  source_.down = true;
  auto answer = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(answer->done);
  ASSERT_TRUE(answer->result.ok());
  EXPECT_EQ(answer->result->slot, -1) << "nothing held";
  EXPECT_EQ(quota->fail_open_admissions(), 1);
  quota->Settle(*answer->result, 1);  // settling a hold of nothing is a no-op
}

TEST_F(QuotaTest, HeartbeatsReportSpentAndReservedAndKeepTheLeaseAlive) {
  auto quota = MakeRequestsQuota(160);
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  quota->Settle(*first->result, 1);
  Quota::Reservation in_flight;
  ASSERT_TRUE(quota->TryReserve(1, clock_.MonotonicNow(), &in_flight));
  for (int i = 0; i < 12; ++i) {  // two minutes... of one minute window: stay within it
    clock_.Advance(absl::Seconds(4));
    Maintain(*quota);
  }
  EXPECT_GE(source_.acquires, 2) << "a heartbeat every TTL/3 (10 s)";
  EXPECT_EQ(source_.last_acquire.spent(), 1);
  // Reported ahead: the one in flight and the 8 more the slice of 10 could still admit.
  EXPECT_EQ(source_.last_acquire.reserved(), 10 - 1);
  Quota::Reservation r;
  EXPECT_TRUE(quota->TryReserve(1, clock_.MonotonicNow(), &r)) << "still usable at 10:30:58";
}

TEST_F(QuotaTest, ALoweredLimitAppliesToNewRequestsAtOnce) {
  auto quota = MakeRequestsQuota(160);  // a slice of 10 requests
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  limit_ = 2;
  quota->set_settings({.limit = 2, .fail_open = false});
  Quota::Reservation r;
  EXPECT_FALSE(quota->TryReserve(1, clock_.MonotonicNow(), &r))
      << "the lease was carved under the old limit";
  // The first request (1 of the new 2) still holds its old lease: one more fits, once that lease
  // is released with what it spent.
  quota->Settle(*first->result, 1);
  auto second = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(second->done);
  ASSERT_TRUE(second->result.ok()) << second->result.status();
  auto third = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(third->done);
  EXPECT_EQ(third->result.status().code(), absl::StatusCode::kResourceExhausted);
}

// A total budget's window ends in year 9999 on the wire, past int64 nanoseconds: its lease is
// usable, and a refusal carries no RetryInfo (capacity never returns by itself).
TEST_F(QuotaTest, TotalBudgetLeaseIsUsableAndItsRefusalHasNoRetry) {
  limit_ = 100;
  budget::v1::Quota id;
  id.set_budget("total");
  id.set_unit(budget::v1::QUOTA_UNIT_USD_MICROS);
  Quota quota(id, Quota::Kind::kUsdMicros, "budget \"total\"", [] {});
  quota.set_settings({.limit = 100, .fail_open = false});
  auto first = Wait(quota, 60, false);
  Maintain(quota);
  ASSERT_TRUE(first->done);
  ASSERT_TRUE(first->result.ok()) << first->result.status();
  auto second = Wait(quota, 60, false);
  Maintain(quota);
  ASSERT_TRUE(second->done);
  EXPECT_EQ(second->result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(GetDetail<google::rpc::RetryInfo>(second->result.status()).has_value());
  std::optional<google::rpc::ErrorInfo> info =
      GetDetail<google::rpc::ErrorInfo>(second->result.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "BUDGET_EXHAUSTED");
}

// What a lease that lapsed now would be charged, per lease, from what the gateway told the
// source: its last report (spent + reserved) plus everything granted since.
class CoverageSource : public LeaseSource {
 public:
  explicit CoverageSource(LeaseSource& inner) : inner_(inner) {}
  absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request) override {
    ++round_trips;
    absl::StatusOr<budget::v1::AcquireLeaseResponse> response = inner_.Acquire(request);
    if (!response.ok() || response->lease_id().empty()) return response;
    int64_t& covered = charge[response->lease_id()];
    if (!request.lease_id().empty()) covered = request.spent() + request.reserved();
    covered += response->granted();
    return response;
  }
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request) override {
    ++round_trips;
    return inner_.Release(request);
  }
  std::map<std::string, int64_t> charge;
  int round_trips = 0;

 private:
  LeaseSource& inner_;
};

// The gap a dead gateway used to leave: what it admitted after its last report. Reported ahead,
// the charge at expiry always covers what was admitted (settled plus in flight), and exceeds it
// by at most the hot part (a quarter slice): the parked rest of the grant would return.
TEST_F(QuotaTest, ABudgetsLeaseIsAlwaysCoveredByItsLastReportAndKeepsTheRestParked) {
  constexpr int64_t kLimit = 640'000;    // slices of 40,000
  constexpr int64_t kHot = kLimit / 64;  // a quarter slice; requests hold 1 to 400
  limit_ = kLimit;
  budget::v1::Quota id;
  id.set_budget("total");
  id.set_unit(budget::v1::QUOTA_UNIT_USD_MICROS);
  Quota quota(id, Quota::Kind::kUsdMicros, "budget \"total\"", [] {});
  quota.set_settings({.limit = kLimit, .fail_open = false});
  CoverageSource source(local_);
  auto maintain = [&] {
    std::vector<std::function<void()>> callbacks;
    quota.Maintain(source, clock_, &callbacks);
    for (auto& callback : callbacks) callback();
  };
  std::mt19937_64 gen(42);
  std::vector<Quota::Reservation> in_flight;
  int64_t settled = 0;
  int admitted = 0;
  bool refused = false;
  for (int step = 0; step < 50'000 && !refused; ++step) {
    clock_.Advance(absl::Milliseconds(5));
    const int64_t amount = std::uniform_int_distribution<int64_t>(1, 400)(gen);
    Quota::Reservation r;
    if (!quota.TryReserve(amount, clock_.MonotonicNow(), &r)) {
      auto answer = Wait(quota, amount, /*queue=*/false);
      maintain();
      ASSERT_TRUE(answer->done);
      if (!answer->result.ok()) {
        EXPECT_EQ(answer->result.status().code(), absl::StatusCode::kResourceExhausted);
        refused = true;
        continue;
      }
      r = *answer->result;
    }
    ++admitted;
    in_flight.push_back(r);
    if (in_flight.size() > 5 || std::bernoulli_distribution(0.5)(gen)) {
      const size_t i = std::uniform_int_distribution<size_t>(0, in_flight.size() - 1)(gen);
      const int64_t actual = std::uniform_int_distribution<int64_t>(0, in_flight[i].amount)(gen);
      quota.Settle(in_flight[i], actual);
      settled += actual;
      in_flight.erase(in_flight.begin() + static_cast<long>(i));
    }
    const bool maintained = step % 7 == 0;
    if (maintained) maintain();
    ASSERT_EQ(source.charge.size(), 1u) << "one lease for the whole run";
    int64_t exposure = settled;
    for (const Quota::Reservation& h : in_flight) exposure += h.amount;
    const int64_t charge = source.charge.begin()->second;
    ASSERT_GE(charge, exposure) << "step " << step << ": admitted past the last report";
    // Right after the manager's pass, at most twice the hot part is at stake (requests settling
    // below their holds give money back to it between passes).
    if (maintained) {
      ASSERT_LE(charge - exposure, 2 * kHot) << "step " << step << ": the parked part is reported";
    }
  }
  std::printf("[parked budget] limit=%lld admitted=%d lease_round_trips=%d\n",
              static_cast<long long>(kLimit), admitted, source.round_trips);
  EXPECT_TRUE(refused) << "the run spent the budget down";
  EXPECT_GT(admitted, 3000);
  EXPECT_LT(source.round_trips * 20, admitted)
      << "lease traffic is per quarter slice, not per request";
}

TEST_F(QuotaTest, ConcurrentReservationsNeverExceedTheLease) {
  auto quota = MakeRequestsQuota(16000);  // one slice of 1,000
  auto first = Wait(*quota, 1, false);
  Maintain(*quota);
  ASSERT_TRUE(first->result.ok());
  std::atomic<int64_t> admitted{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        Quota::Reservation r;
        if (quota->TryReserve(1, clock_.MonotonicNow(), &r)) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000) << "exactly the lease, no more, no less";
}

// A budget that holds one worst case at a time (the integration test's "slow-queue": 10,063 of
// 12,000): the queued request's need is larger than the hot part, so its admission needs the
// manager to unpark what the first request gave back and top the lease up. Whatever the first
// request really cost, the queued one is admitted within a few manager passes (100 ms apart, as
// the gateway ticks) of the first settling: after the 250 ms pause a refusal imposes at most.
TEST_F(QuotaTest, AQueuedWaiterLargerThanTheHotPartIsAdmittedSoonAfterTheCapacityReturns) {
  constexpr int64_t kLimit = 12'000;
  constexpr int64_t kNeed = 10'063;
  for (int64_t actual : {int64_t{0}, int64_t{1}, int64_t{100}, int64_t{1'000}, int64_t{1'937},
                         int64_t{1'938}, int64_t{5'000}, int64_t{10'000}}) {
    SCOPED_TRACE(absl::StrCat("the first request cost ", actual));
    limit_ = kLimit;
    budget::v1::Quota id;
    id.set_budget(absl::StrCat("total-", actual));
    id.set_unit(budget::v1::QUOTA_UNIT_USD_MICROS);
    Quota quota(id, Quota::Kind::kUsdMicros, "budget \"one-at-a-time\"", [] {});
    quota.set_settings({.limit = kLimit, .fail_open = false});
    auto first = Wait(quota, kNeed, /*queue=*/true);
    Maintain(quota);
    ASSERT_TRUE(first->done);
    ASSERT_TRUE(first->result.ok()) << first->result.status();
    auto second = Wait(quota, kNeed, /*queue=*/true, absl::Seconds(10));
    for (int pass = 0; pass < 5; ++pass) {
      clock_.Advance(absl::Milliseconds(100));
      Maintain(quota);
    }
    ASSERT_FALSE(second->done) << "it waits while the first holds the budget";
    quota.Settle(*first->result, actual);
    int passes = 0;
    while (!second->done && passes < 100) {
      clock_.Advance(absl::Milliseconds(100));
      Maintain(quota);
      ++passes;
    }
    ASSERT_TRUE(second->done) << "not admitted within 10 s of simulated time";
    if (actual <= kLimit - kNeed) {
      ASSERT_TRUE(second->result.ok()) << second->result.status();
      EXPECT_LE(passes, 4) << "admitted " << passes
                           << " manager passes after the capacity returned";
      quota.Settle(*second->result, 0);
    } else {
      EXPECT_EQ(second->result.status().code(), absl::StatusCode::kResourceExhausted)
          << second->result.status();
    }
  }
}

// A clock that runs a hook the first time Now() (wall time) is read: Maintain reads wall time
// once, after deciding what to ask the source and before serving waiters, so the hook can add a
// waiter exactly where a request thread racing with the manager's pass would.
class HookedClock : public Clock {
 public:
  explicit HookedClock(SimulatedClock& inner) : inner_(inner) {}
  absl::Time Now() override {
    if (hook_) std::exchange(hook_, nullptr)();
    return inner_.Now();
  }
  absl::Time MonotonicNow() override { return inner_.MonotonicNow(); }
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return inner_.AwaitWithDeadline(mu, cond, deadline);
  }
  std::function<void()> hook_;

 private:
  SimulatedClock& inner_;
};

// The source said "no capacity" a minute ago; a new window has begun since. A request that
// would rather be refused than queue, arriving while the manager's pass is under way (after it
// looked at the waiters), is not refused on that old answer: the next pass asks the source, and
// the new window admits it. (Seen end to end: a request served degraded right after a budget's
// holds had settled.)
TEST_F(QuotaTest, AnOldRefusalNeverRefusesARequestThatArrivesDuringAPass) {
  auto quota = MakeRequestsQuota(1);
  auto first = Wait(*quota, 1, /*queue=*/false);
  Maintain(*quota);
  ASSERT_TRUE(first->done);
  ASSERT_TRUE(first->result.ok()) << first->result.status();
  auto refused = Wait(*quota, 1, /*queue=*/false);
  Maintain(*quota);
  ASSERT_TRUE(refused->done);
  ASSERT_EQ(refused->result.status().code(), absl::StatusCode::kResourceExhausted)
      << refused->result.status();
  quota->Settle(*first->result, 1);

  clock_.Advance(absl::Minutes(1));  // a new minute: the limit's full capacity is back
  Maintain(*quota);                  // the old lease lapses and is released; nobody waits
  const int acquires = source_.acquires;

  HookedClock hooked(clock_);
  std::shared_ptr<Answer> late;
  hooked.hook_ = [&] { late = Wait(*quota, 1, /*queue=*/false); };
  std::vector<std::function<void()>> callbacks;
  quota->Maintain(source_, hooked, &callbacks);
  for (auto& callback : callbacks) callback();
  ASSERT_NE(late, nullptr) << "the pass never read wall time";
  EXPECT_FALSE(late->done && !late->result.ok())
      << "refused on a minute-old answer without asking: " << late->result.status();

  Maintain(*quota);  // the pass the new waiter's kick asks for
  ASSERT_TRUE(late->done);
  ASSERT_TRUE(late->result.ok()) << late->result.status();
  EXPECT_GT(source_.acquires, acquires);
}

}  // namespace
}  // namespace turnpike
