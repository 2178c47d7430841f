// The usage shipper against a real gRPC UsageService on loopback: everything spooled reaches the
// ledger exactly once, through failures (the service down, a reply lost after the records were
// stored), and a segment is removed only after its acknowledgement.
#include "server/usage/usage_shipper.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

// A ledger that stores records by request id, and can fail the next calls.
class FakeLedger final : public usage::v1::UsageService::Service {
 public:
  grpc::Status ReportUsage(grpc::ServerContext*, const usage::v1::ReportUsageRequest* request,
                           usage::v1::ReportUsageResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (refuse_next_ > 0) {
      --refuse_next_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "ledger down");
    }
    for (const auto& r : request->records()) {
      if (r.request_id() == invalid_id_) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "records[0].start_time");
      }
    }
    for (const auto& r : request->records()) {
      if (stored_.emplace(r.request_id(), r.cost_usd_micros()).second) {
        response->set_accepted(response->accepted() + 1);
      } else {
        response->set_duplicates(response->duplicates() + 1);
      }
    }
    if (lose_next_reply_ > 0) {  // stored, but the gateway never hears it
      --lose_next_reply_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "reply lost");
    }
    return grpc::Status::OK;
  }
  void RefuseNext(int n) {
    absl::MutexLock lock(&mu_);
    refuse_next_ = n;
  }
  // Batches holding this request id are refused as INVALID_ARGUMENT, every time.
  void RefuseAsInvalid(const std::string& id) {
    absl::MutexLock lock(&mu_);
    invalid_id_ = id;
  }
  void LoseNextReply(int n) {
    absl::MutexLock lock(&mu_);
    lose_next_reply_ = n;
  }
  size_t stored() {
    absl::MutexLock lock(&mu_);
    return stored_.size();
  }
  int64_t total_cost() {
    absl::MutexLock lock(&mu_);
    int64_t sum = 0;
    for (const auto& [id, cost] : stored_) sum += cost;
    return sum;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int64_t> stored_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int refuse_next_ ABSL_GUARDED_BY(mu_) = 0;
  int lose_next_reply_ ABSL_GUARDED_BY(mu_) = 0;
  std::string invalid_id_ ABSL_GUARDED_BY(mu_);
};

template <typename F>
bool Eventually(F cond) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

class UsageShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/turnpike-shipper-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&ledger_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    UsageSpool::Options options;
    options.dir = dir_;
    options.commit_interval = absl::Milliseconds(1);
    options.seal_after = absl::Milliseconds(5);
    options.segment_bytes = 2048;  // several segments for a few dozen records
    auto spool = UsageSpool::Open(options, Clock::Real());
    ASSERT_TRUE(spool.ok()) << spool.status();
    spool_ = *std::move(spool);
  }
  void TearDown() override {
    shipper_.reset();
    spool_.reset();
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }
  void StartShipper() {
    UsageShipper::Options options;
    options.batch_records = 7;
    options.poll_interval = absl::Milliseconds(2);
    options.base_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(20);
    shipper_ = std::make_unique<UsageShipper>(
        *spool_,
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()),
        options, Clock::Real());
  }
  // Appends records 0..n-1 with cost i; returns the total cost.
  int64_t Spool(int n) {
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      usage::v1::UsageRecord r;
      r.set_request_id(absl::StrCat("req-", i));
      r.set_cost_usd_micros(i);
      total += i;
      EXPECT_TRUE(spool_->Append(r));
    }
    spool_->Flush();
    return total;
  }
  // No sealed segment left, and the spool has counted every removal.
  bool SpoolEmpty() {
    auto next = spool_->NextSealed();
    return next.ok() && !next->has_value() && spool_->stats().bytes == 0;
  }

  FakeLedger ledger_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::string dir_;
  std::unique_ptr<UsageSpool> spool_;
  std::unique_ptr<UsageShipper> shipper_;
};

TEST_F(UsageShipperTest, EverythingSpooledReachesTheLedgerOnceAndLeavesTheSpool) {
  const int64_t total = Spool(60);
  StartShipper();
  ASSERT_TRUE(Eventually([&] { return ledger_.stored() == 60 && SpoolEmpty(); }));
  EXPECT_EQ(ledger_.total_cost(), total);
  EXPECT_EQ(shipper_->stats().shipped, 60u);
  EXPECT_EQ(spool_->stats().removed, 60u);
}

TEST_F(UsageShipperTest, ALedgerThatIsDownIsRetriedAndNothingIsLost) {
  ledger_.RefuseNext(5);
  const int64_t total = Spool(30);
  StartShipper();
  ASSERT_TRUE(Eventually([&] { return ledger_.stored() == 30 && SpoolEmpty(); }));
  EXPECT_EQ(ledger_.total_cost(), total);
  EXPECT_GE(shipper_->stats().failures, 5u);
}

TEST_F(UsageShipperTest, ALostReplyResendsAndTheLedgerCountsEachRecordOnce) {
  ledger_.LoseNextReply(2);
  const int64_t total = Spool(20);
  StartShipper();
  ASSERT_TRUE(Eventually([&] { return SpoolEmpty() && shipper_->stats().shipped >= 20; }));
  EXPECT_EQ(ledger_.stored(), 20u);
  EXPECT_EQ(ledger_.total_cost(), total);
  EXPECT_GT(shipper_->stats().duplicates, 0u);  // the resent records were already there
}

TEST_F(UsageShipperTest, RecordsSpooledWhileTheShipperRunsAreShippedToo) {
  StartShipper();
  int64_t total = Spool(10);
  ASSERT_TRUE(Eventually([&] { return ledger_.stored() == 10; }));
  for (int i = 10; i < 25; ++i) {
    usage::v1::UsageRecord r;
    r.set_request_id(absl::StrCat("req-", i));
    r.set_cost_usd_micros(i);
    total += i;
    ASSERT_TRUE(spool_->Append(r));
  }
  // Not flushed: the spool's own commit and seal intervals get them out.
  ASSERT_TRUE(Eventually([&] { return ledger_.stored() == 25 && SpoolEmpty(); }));
  EXPECT_EQ(ledger_.total_cost(), total);
}

// A batch the control plane refuses as invalid would be refused again: its segment is set aside as
// bad-<n>.log (not shipped again, not lost, still counted toward the spool's bound) and the
// segments after it are shipped.
TEST_F(UsageShipperTest, ARefusedSegmentIsSetAsideAndStillCountsTowardTheBound) {
  ledger_.RefuseAsInvalid("req-3");
  Spool(5);  // one segment (flushed together): req-0..req-4
  StartShipper();
  ASSERT_TRUE(Eventually([&] { return shipper_->stats().quarantined == 5; }));
  std::vector<std::string> bad;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (e.path().filename().string().starts_with("bad-")) bad.push_back(e.path().string());
  }
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(spool_->stats().quarantined_bytes, std::filesystem::file_size(bad[0]));
  EXPECT_EQ(spool_->stats().bytes, spool_->stats().quarantined_bytes);
  // Later records still reach the ledger.
  for (int i = 10; i < 13; ++i) {
    usage::v1::UsageRecord r;
    r.set_request_id(absl::StrCat("req-", i));
    ASSERT_TRUE(spool_->Append(r));
  }
  spool_->Flush();
  ASSERT_TRUE(Eventually([&] { return ledger_.stored() == 3; }));
  EXPECT_EQ(shipper_->stats().quarantined, 5u);
}

}  // namespace
}  // namespace turnpike
