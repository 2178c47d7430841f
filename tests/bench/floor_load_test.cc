// The gRPC load driver against an in-process floor server on an ephemeral port: every call is
// counted, the floor's per-call chunk override works, and open loop keeps its schedule.
#include <memory>

#include "gtest/gtest.h"
#include "tools/bench/floor_server.h"
#include "tools/bench/grpc_load.h"

namespace turnpike::bench {
namespace {

class FloorLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FloorServer::Options options;
    options.threads = 2;
    options.chunks = 3;
    auto server = FloorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_.address = "127.0.0.1:" + std::to_string(server_->port());
    target_.channels = 2;
    target_.request.set_capability("bench");
    target_.request.add_messages()->set_content("hello");
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  LoadOptions Requests(int n, int concurrency) {
    LoadOptions o;
    o.concurrency = concurrency;
    o.max_requests = n;
    o.warmup = absl::ZeroDuration();
    o.duration = absl::Seconds(20);
    o.threads = 2;
    return o;
  }

  std::unique_ptr<FloorServer> server_;
  GrpcTarget target_;
};

TEST_F(FloorLoadTest, ClosedLoopStreams) {
  absl::StatusOr<Recorder> r = RunGrpcLoad(Requests(40, 4), target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->started, 40);
  EXPECT_EQ(r->ok, 40);
  EXPECT_EQ(r->errors, 0);
  EXPECT_EQ(r->ttft_ns.size(), 40u);
  EXPECT_EQ(r->gap_ns.size(), 40u * 2);  // 3 deltas, 2 gaps each
}

TEST_F(FloorLoadTest, MetadataOverridesChunks) {
  target_.metadata = {{"x-fake-chunks", "7"}};
  absl::StatusOr<Recorder> r = RunGrpcLoad(Requests(5, 1), target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ok, 5);
  EXPECT_EQ(r->gap_ns.size(), 5u * 6);
}

TEST_F(FloorLoadTest, Unary) {
  target_.unary = true;
  absl::StatusOr<Recorder> r = RunGrpcLoad(Requests(30, 8), target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ok, 30);
  EXPECT_EQ(r->latency_ns.size(), 30u);
  EXPECT_TRUE(r->ttft_ns.empty());
}

TEST_F(FloorLoadTest, OpenLoopStartsEveryScheduledArrival) {
  LoadOptions o;
  o.rate = 200;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(250);
  o.threads = 2;
  absl::StatusOr<Recorder> r = RunGrpcLoad(o, target_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->started, 50);
  EXPECT_EQ(r->ok, 50);
}

TEST(GrpcLoadTest, UnreachableTargetIsUnavailable) {
  GrpcTarget target;
  target.address = "127.0.0.1:1";
  LoadOptions o;
  o.max_requests = 1;
  target.connect_timeout = absl::Milliseconds(300);
  absl::StatusOr<Recorder> r = RunGrpcLoad(o, target);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace turnpike::bench
