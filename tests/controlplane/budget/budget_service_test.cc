// BudgetService over real gRPC against a real control plane (SQLite file in a temp dir, loopback
// port chosen by the kernel): Get/List with pagination and errors, leases acquired and released
// over the wire with their rich error details, and WatchBudgets: the first message, changes
// coalesced into few messages, a name filter, deletion, client cancel and server shutdown.
#include "controlplane/budget/budget_service.h"

#include <thread>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace b = ::turnpike::budget::v1;
using turnpike::testing::WaitFor;

std::string ReasonOf(const grpc::Status& s) {
  google::rpc::Status details;
  if (!details.ParseFromString(s.error_details())) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

// Reads a stream on its own thread, keeping every message.
class StreamReader {
 public:
  StreamReader(b::BudgetService::Stub& stub, const b::WatchBudgetsRequest& request) {
    reader_ = stub.WatchBudgets(&context_, request);
    thread_ = std::thread([this] {
      b::WatchBudgetsResponse msg;
      while (reader_->Read(&msg)) {
        absl::MutexLock lock(&mu_);
        messages_.push_back(msg);
      }
      grpc::Status s = reader_->Finish();
      absl::MutexLock lock(&mu_);
      status_ = s;
    });
  }
  ~StreamReader() {
    context_.TryCancel();
    thread_.join();
  }
  void Cancel() { context_.TryCancel(); }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }
  b::WatchBudgetsResponse at(size_t i) {
    absl::MutexLock lock(&mu_);
    return messages_.at(i);
  }
  std::optional<grpc::Status> status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<b::WatchBudgetsResponse>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<b::WatchBudgetsResponse> messages_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> status_ ABSL_GUARDED_BY(mu_);
};

class BudgetServiceTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    stub_ = b::BudgetService::NewStub(Channel());
  }

  void CreateBudget(const std::string& name, int64_t limit) {
    admin::v1::Budget bud;
    bud.mutable_spec()->set_name(name);
    bud.mutable_spec()->set_capability("summaries");
    bud.mutable_spec()->set_limit_usd_micros(limit);
    bud.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_MONTHLY);
    bud.mutable_spec()->set_tier("gold");
    auto out = cp_->admin().CreateResource(bud, "test");
    ASSERT_TRUE(out.ok()) << out.status();
  }

  grpc::Status Acquire(const std::string& node, const std::string& budget, int64_t amount,
                       b::AcquireLeaseResponse* out) {
    grpc::ClientContext ctx;
    b::AcquireLeaseRequest r;
    r.set_node_id(node);
    r.mutable_quota()->set_budget(budget);
    r.set_requested(amount);
    // Lease calls are a gateway's: they carry that node's token.
    return b::BudgetService::NewStub(NodeChannel(node))->AcquireLease(&ctx, r, out);
  }
  grpc::Status Release(const std::string& node, const std::string& lease_id, int64_t spent,
                       b::ReleaseLeaseResponse* out) {
    grpc::ClientContext ctx;
    b::ReleaseLeaseRequest r;
    r.set_node_id(node);
    r.set_lease_id(lease_id);
    r.set_spent(spent);
    return b::BudgetService::NewStub(NodeChannel(node))->ReleaseLease(&ctx, r, out);
  }
  grpc::Status Get(const std::string& name, b::GetBudgetResponse* out) {
    grpc::ClientContext ctx;
    b::GetBudgetRequest r;
    r.set_name(name);
    return stub_->GetBudget(&ctx, r, out);
  }

  std::unique_ptr<b::BudgetService::Stub> stub_;
};

TEST_F(BudgetServiceTest, GetListAcquireRelease) {
  CreateBudget("alpha", 5'000'000);
  CreateBudget("beta", 1'000);
  CreateBudget("gamma", 2'000);

  b::AcquireLeaseResponse lease;
  ASSERT_TRUE(Acquire("gw-1", "alpha", 1'500'000, &lease).ok());
  EXPECT_EQ(lease.granted_usd_micros(), 1'500'000);
  EXPECT_EQ(lease.remaining(), 3'500'000);

  b::GetBudgetResponse got;
  ASSERT_TRUE(Get("alpha", &got).ok());
  const b::BudgetStatus& s = got.budget();
  EXPECT_EQ(s.capability(), "summaries");
  EXPECT_EQ(s.tier(), "gold");
  EXPECT_EQ(s.limit_usd_micros(), 5'000'000);
  EXPECT_EQ(s.spent_usd_micros(), 0);
  EXPECT_EQ(s.leased_usd_micros(), 1'500'000);
  EXPECT_EQ(s.remaining_usd_micros(), 3'500'000);
  EXPECT_LT(s.window_start().seconds(), s.window_end().seconds());
  ASSERT_EQ(s.leases_size(), 1);
  EXPECT_EQ(s.leases(0).node_id(), "gw-1");
  EXPECT_EQ(s.leases(0).lease_id(), lease.lease_id());

  b::ReleaseLeaseResponse released;
  grpc::Status other = Release("gw-2", lease.lease_id(), 0, &released);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(other), "LEASE_NOT_OWNED");
  ASSERT_TRUE(Release("gw-1", lease.lease_id(), 400'000, &released).ok());
  EXPECT_EQ(released.budget().spent_usd_micros(), 400'000);
  EXPECT_EQ(released.remaining(), 4'600'000);

  grpc::Status missing = Get("nope", &got);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("bad name", &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status bad_ask = Acquire("gw-1", "alpha", 0, &lease);  // a new lease must ask for some
  EXPECT_EQ(bad_ask.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A gateway's token does not lease for another node id.
  b::AcquireLeaseRequest as_other;
  as_other.set_node_id("gw-2");
  as_other.mutable_quota()->set_budget("alpha");
  as_other.set_requested(1);
  grpc::ClientContext ctx;
  b::AcquireLeaseResponse ignored;
  EXPECT_EQ(b::BudgetService::NewStub(NodeChannel("gw-1"))->AcquireLease(&ctx, as_other, &ignored)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Paginated by name, like the admin List RPCs.
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    b::ListBudgetsRequest r;
    r.set_page_size(2);
    r.set_page_token(token);
    b::ListBudgetsResponse page;
    ASSERT_TRUE(stub_->ListBudgets(&ctx, r, &page).ok());
    for (const auto& bs : page.budgets()) names.push_back(bs.name());
    token = page.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "gamma"}));
}

TEST_F(BudgetServiceTest, WatchSendsAllFirstThenCoalescedChanges) {
  CreateBudget("alpha", 10'000'000);
  CreateBudget("beta", 1'000);
  StreamReader all(*stub_, b::WatchBudgetsRequest());
  ASSERT_TRUE(WaitFor([&] { return all.count() == 1; }));
  ASSERT_EQ(all.at(0).budgets_size(), 2);
  EXPECT_EQ(all.at(0).budgets(0).name(), "alpha");

  // A burst of grants: far fewer messages than changes, the last with the final state.
  const absl::Time start = absl::Now();
  constexpr int kGrants = 40;
  for (int i = 0; i < kGrants; ++i) {
    b::AcquireLeaseResponse lease;
    ASSERT_TRUE(Acquire("gw-1", "alpha", 1'000, &lease).ok());
  }
  const absl::Duration burst = absl::Now() - start;
  ASSERT_TRUE(WaitFor([&] {
    size_t n = all.count();
    if (n < 2) return false;
    const b::WatchBudgetsResponse last = all.at(n - 1);
    return last.budgets_size() >= 1 && last.budgets(0).name() == "alpha" &&
           last.budgets(0).leases_size() == kGrants;
  })) <<
      [&] {
        std::string out;
        for (size_t i = 0; i < all.count(); ++i) out += all.at(i).DebugString() + "\n---\n";
        return out;
      }();
  const size_t burst_messages = all.count() - 1;
  // At most one message per 100 ms interval (plus the interval the burst started in).
  EXPECT_LE(burst_messages, static_cast<size_t>(burst / absl::Milliseconds(100)) + 2)
      << "burst of " << kGrants << " grants took " << burst;
  EXPECT_LT(burst_messages, static_cast<size_t>(kGrants));
  // Only alpha changed (beta may repeat once, unchanged, if its creation was still being
  // coalesced when the stream opened).
  for (size_t i = 1; i < all.count(); ++i) {
    const b::WatchBudgetsResponse msg = all.at(i);
    for (const auto& bs : msg.budgets()) {
      if (bs.name() == "beta") {
        EXPECT_EQ(bs.DebugString(), all.at(0).budgets(1).DebugString());
      } else {
        EXPECT_EQ(bs.name(), "alpha");
      }
    }
  }

  // A new budget reaches a watch of everything; a deleted one is named in `removed`.
  const size_t before = all.count();
  CreateBudget("delta", 7);
  ASSERT_TRUE(WaitFor([&] {
    return all.count() > before && all.at(all.count() - 1).budgets_size() == 1 &&
           all.at(all.count() - 1).budgets(0).name() == "delta";
  }));
  ASSERT_TRUE(cp_->admin().DeleteResource<admin::v1::Budget>("beta", 0, "test").ok());
  ASSERT_TRUE(WaitFor([&] {
    const b::WatchBudgetsResponse last = all.at(all.count() - 1);
    return last.removed_size() == 1 && last.removed(0) == "beta";
  }));
}

TEST_F(BudgetServiceTest, WatchFiltersByNameAndEndsOnCancelAndShutdown) {
  CreateBudget("alpha", 10'000);
  CreateBudget("beta", 10'000);
  b::WatchBudgetsRequest only_beta;
  only_beta.add_names("beta");
  auto watch = std::make_unique<StreamReader>(*stub_, only_beta);
  ASSERT_TRUE(WaitFor([&] { return watch->count() == 1; }));
  ASSERT_EQ(watch->at(0).budgets_size(), 1);
  EXPECT_EQ(watch->at(0).budgets(0).name(), "beta");
  b::AcquireLeaseResponse lease;
  ASSERT_TRUE(Acquire("gw-1", "alpha", 10, &lease).ok());
  ASSERT_TRUE(Acquire("gw-1", "beta", 20, &lease).ok());
  ASSERT_TRUE(WaitFor([&] { return watch->count() >= 2; }));
  for (size_t i = 1; i < watch->count(); ++i) {
    ASSERT_EQ(watch->at(i).budgets_size(), 1);
    EXPECT_EQ(watch->at(i).budgets(0).name(), "beta");
  }
  EXPECT_EQ(watch->at(watch->count() - 1).budgets(0).leased_usd_micros(), 20);

  // Client cancel: the stream ends CANCELLED and the hub forgets it.
  ASSERT_EQ(cp_->budget_hub().subscribers(), 1);
  watch->Cancel();
  ASSERT_TRUE(WaitFor([&] { return watch->status().has_value(); }));
  EXPECT_EQ(watch->status()->error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitFor([&] { return cp_->budget_hub().subscribers() == 0; }));
  watch.reset();

  b::WatchBudgetsRequest bad;
  bad.add_names("not a name");
  StreamReader refused(*stub_, bad);
  ASSERT_TRUE(WaitFor([&] { return refused.status().has_value(); }));
  EXPECT_EQ(refused.status()->error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Server shutdown ends an open watch promptly with UNAVAILABLE.
  StreamReader open(*stub_, b::WatchBudgetsRequest());
  ASSERT_TRUE(WaitFor([&] { return open.count() == 1; }));
  const absl::Time start = absl::Now();
  cp_->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ASSERT_TRUE(WaitFor([&] { return open.status().has_value(); }));
  EXPECT_EQ(open.status()->error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
