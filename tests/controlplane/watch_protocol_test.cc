// The Watch protocol driven by a raw gRPC stream, so every message is under the test's control:
// full snapshot + nonce on connect, ACK/NACK bookkeeping, unique nonces, stale nonces ignored,
// coalescing while a response is unanswered, the NACK hold, and shutdown.
#include <chrono>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using config::v1::WatchRequest;
using config::v1::WatchResponse;
using ::turnpike::testing::WaitFor;

class RawWatch {
 public:
  // `channel` carries the node token the stream authenticates with.
  RawWatch(const std::shared_ptr<grpc::Channel>& channel, const std::string& node)
      : node_(node), stub_(config::v1::ConfigDiscoveryService::NewStub(channel)) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Watch(&context_);
  }
  bool Hello(const std::string& version = "") {
    WatchRequest r;
    r.set_node_id(node_);
    r.set_version_info(version);
    r.set_build_version("test-build");
    return stream_->Write(r);
  }
  WatchResponse Read() {
    WatchResponse r;
    EXPECT_TRUE(stream_->Read(&r));
    return r;
  }
  bool Ack(const WatchResponse& r) { return Reply(r.version_info(), r.nonce(), ""); }
  bool Nack(const WatchResponse& r, const std::string& previous, const std::string& why) {
    return Reply(previous, r.nonce(), why);
  }
  bool Reply(const std::string& version, const std::string& nonce, const std::string& error) {
    WatchRequest r;
    r.set_node_id(node_);
    r.set_version_info(version);
    r.set_response_nonce(nonce);
    if (!error.empty()) {
      r.mutable_error_detail()->set_code(3);
      r.mutable_error_detail()->set_message(error);
    }
    return stream_->Write(r);
  }
  grpc::Status Close() {
    stream_->WritesDone();
    WatchResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    return stream_->Finish();
  }
  grpc::ClientReaderWriter<WatchRequest, WatchResponse>& stream() { return *stream_; }

 private:
  std::string node_;
  std::unique_ptr<config::v1::ConfigDiscoveryService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<WatchRequest, WatchResponse>> stream_;
};

int64_t V(const WatchResponse& r) {
  int64_t v = 0;
  EXPECT_TRUE(absl::SimpleAtoi(r.version_info(), &v)) << r.version_info();
  return v;
}

class WatchProtocolTest : public ControlPlaneFixture {
 protected:
  void SetUp() override { ControlPlaneFixture::SetUp(); }
};

TEST_F(WatchProtocolTest, ConnectGetsFullSnapshotWithVersionAndNonce) {
  Change();
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello());
  WatchResponse r = w.Read();
  EXPECT_EQ(V(r), CurrentVersion());
  EXPECT_EQ(r.snapshot().version(), r.version_info());
  EXPECT_FALSE(r.nonce().empty());
  EXPECT_EQ(r.snapshot().providers_size(), 1);
  ASSERT_TRUE(w.Ack(r));
  ASSERT_TRUE(WaitFor([&] {
    auto d = cp_->registry().Get("gw-1");
    return d.has_value() && d->acked_version() == r.version_info();
  }));
  auto d = *cp_->registry().Get("gw-1");
  EXPECT_TRUE(d.connected());
  EXPECT_EQ(d.build_version(), "test-build");
  EXPECT_TRUE(d.last_nack().empty());
  EXPECT_TRUE(w.Close().ok());
  EXPECT_TRUE(WaitFor([&] { return !cp_->registry().Get("gw-1")->connected(); }));
}

TEST_F(WatchProtocolTest, EveryCommittedChangeIsPushedWithAFreshNonce) {
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello());
  WatchResponse r1 = w.Read();
  ASSERT_TRUE(w.Ack(r1));
  int64_t v2 = Change();
  WatchResponse r2 = w.Read();
  EXPECT_EQ(V(r2), v2);
  EXPECT_NE(r2.nonce(), r1.nonce());
  ASSERT_TRUE(w.Ack(r2));
  int64_t v3 = Change();
  WatchResponse r3 = w.Read();
  EXPECT_EQ(V(r3), v3);
  EXPECT_NE(r3.nonce(), r2.nonce());
  EXPECT_NE(r3.nonce(), r1.nonce());
}

TEST_F(WatchProtocolTest, ChangesWhileAResponseIsUnansweredCoalesce) {
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello());
  WatchResponse r1 = w.Read();
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = Change();
  ASSERT_TRUE(w.Ack(r1));
  WatchResponse r2 = w.Read();
  EXPECT_EQ(V(r2), last);  // straight to the newest: no intermediate versions
  ASSERT_TRUE(w.Ack(r2));
  int64_t next = Change();
  EXPECT_EQ(V(w.Read()), next);  // and nothing else was queued
}

TEST_F(WatchProtocolTest, NackHoldsTheNodeUntilANewerVersion) {
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello("7"));
  WatchResponse r1 = w.Read();
  ASSERT_TRUE(w.Nack(r1, "7", "route demo: unknown provider"));
  ASSERT_TRUE(WaitFor([&] { return !cp_->registry().Get("gw-1")->last_nack().empty(); }));
  auto d = *cp_->registry().Get("gw-1");
  EXPECT_EQ(d.last_nack(), "route demo: unknown provider");
  EXPECT_EQ(d.nacked_version(), r1.version_info());
  EXPECT_EQ(d.acked_version(), "7");  // what it still runs
  // No resend of the rejected version: the next message is the next version.
  int64_t v2 = Change();
  WatchResponse r2 = w.Read();
  EXPECT_EQ(V(r2), v2);
  ASSERT_TRUE(w.Ack(r2));
  ASSERT_TRUE(
      WaitFor([&] { return cp_->registry().Get("gw-1")->acked_version() == r2.version_info(); }));
  EXPECT_TRUE(cp_->registry().Get("gw-1")->last_nack().empty());
}

TEST_F(WatchProtocolTest, RepliesWithStaleNoncesAreIgnored) {
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello());
  WatchResponse r1 = w.Read();
  int64_t v2 = Change();
  // An "ACK" for a nonce the server never sent must not count...
  ASSERT_TRUE(w.Reply(r1.version_info(), "not-a-nonce", ""));
  // ...so this NACK, for the real nonce, is the reply that counts.
  ASSERT_TRUE(w.Nack(r1, "", "rejected"));
  WatchResponse r2 = w.Read();
  EXPECT_EQ(V(r2), v2);
  auto d = *cp_->registry().Get("gw-1");
  EXPECT_EQ(d.nacked_version(), r1.version_info());
  EXPECT_EQ(d.acked_version(), "");
}

TEST_F(WatchProtocolTest, FirstRequestMustNameTheNode) {
  RawWatch w(NodeChannel("gw-1"), "");
  ASSERT_TRUE(w.Hello());
  grpc::Status s = w.Close();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(WatchProtocolTest, TwoNodesAreTrackedSeparately) {
  RawWatch a(NodeChannel("gw-a"), "gw-a");
  RawWatch b(NodeChannel("gw-b"), "gw-b");
  ASSERT_TRUE(a.Hello());
  ASSERT_TRUE(b.Hello());
  WatchResponse ra = a.Read();
  WatchResponse rb = b.Read();
  EXPECT_NE(ra.nonce(), rb.nonce());
  ASSERT_TRUE(a.Ack(ra));
  ASSERT_TRUE(b.Nack(rb, "", "nope"));
  ASSERT_TRUE(WaitFor([&] {
    auto x = cp_->registry().Get("gw-a");
    auto y = cp_->registry().Get("gw-b");
    return x && y && x->acked_version() == ra.version_info() && !y->last_nack().empty();
  }));
  auto list = cp_->registry().List("", 0);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].node_id(), "gw-a");
  EXPECT_EQ(list[1].node_id(), "gw-b");
}

TEST_F(WatchProtocolTest, ShutdownEndsStreamsWithUnavailable) {
  RawWatch w(NodeChannel("gw-1"), "gw-1");
  ASSERT_TRUE(w.Hello());
  w.Read();
  cp_->Shutdown(absl::Seconds(1));
  WatchResponse ignored;
  EXPECT_FALSE(w.stream().Read(&ignored));
  EXPECT_EQ(w.stream().Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
