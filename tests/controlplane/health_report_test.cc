// ConfigDiscoveryService/ReportHealth over real gRPC, as the admin sees it: a report from a
// watching gateway shows in ListDataPlanes and GetDataPlane; a newer report replaces the older
// one whole; reports from nodes that never watched, or that are malformed, are refused and change
// nothing.
#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using config::v1::ReportHealthRequest;
using config::v1::UpstreamHealth;
using ::testing::ElementsAre;
using ::turnpike::testing::WaitFor;

class HealthReportTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    admin_ = admin::v1::AdminService::NewStub(Channel());
  }
  // The node RPCs of `node`, with its node token (gw-1's for ids no token can be issued for).
  std::unique_ptr<config::v1::ConfigDiscoveryService::Stub> Discovery(const std::string& node) {
    const bool valid = !node.empty() && node.size() <= 100;
    return config::v1::ConfigDiscoveryService::NewStub(NodeChannel(valid ? node : "gw-1"));
  }

  // Opens a watch stream for `node` and waits until the control plane knows it.
  void Watch(const std::string& node) {
    watch_context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    discovery_ = Discovery(node);
    watch_ = discovery_->Watch(&watch_context_);
    config::v1::WatchRequest hello;
    hello.set_node_id(node);
    ASSERT_TRUE(watch_->Write(hello));
    config::v1::WatchResponse first;
    ASSERT_TRUE(watch_->Read(&first));
    ASSERT_TRUE(WaitFor([&] { return cp_->registry().Get(node).has_value(); }));
  }

  grpc::Status Report(const ReportHealthRequest& request) {
    grpc::ClientContext context;
    config::v1::ReportHealthResponse response;
    return Discovery(request.node_id())->ReportHealth(&context, request, &response);
  }

  std::vector<admin::v1::DataPlane> List() {
    grpc::ClientContext context;
    admin::v1::ListDataPlanesResponse response;
    EXPECT_TRUE(admin_->ListDataPlanes(&context, {}, &response).ok());
    return {response.data_planes().begin(), response.data_planes().end()};
  }

  grpc::Status Get(const std::string& node, admin::v1::DataPlane* out) {
    grpc::ClientContext context;
    admin::v1::GetDataPlaneRequest request;
    request.set_node_id(node);
    admin::v1::GetDataPlaneResponse response;
    grpc::Status s = admin_->GetDataPlane(&context, request, &response);
    *out = response.data_plane();
    return s;
  }

  static UpstreamHealth Upstream(const std::string& provider, config::v1::BreakerState state) {
    UpstreamHealth h;
    h.set_provider(provider);
    h.set_model("gpt-4o-mini");
    h.set_credential(provider + "-key@2");
    h.set_breaker_state(state);
    return h;
  }

  std::unique_ptr<config::v1::ConfigDiscoveryService::Stub> discovery_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_;
  grpc::ClientContext watch_context_;
  std::unique_ptr<grpc::ClientReaderWriter<config::v1::WatchRequest, config::v1::WatchResponse>>
      watch_;
};

TEST_F(HealthReportTest, ReportShowsInListAndGetDataPlane) {
  Watch("gw-1");
  ReportHealthRequest report;
  report.set_node_id("gw-1");
  report.mutable_observed()->set_seconds(1'700'000'000);
  UpstreamHealth open = Upstream("openai", config::v1::BREAKER_STATE_OPEN);
  open.mutable_open_until()->set_seconds(1'700'000'030);
  open.set_consecutive_failures(5);
  open.set_ejections(1);
  open.set_open_reason("5 consecutive failures");
  open.set_opened_total(1);
  *report.add_upstreams() = open;
  *report.add_upstreams() = Upstream("claude", config::v1::BREAKER_STATE_CLOSED);
  ASSERT_TRUE(Report(report).ok());

  std::vector<admin::v1::DataPlane> nodes = List();
  ASSERT_EQ(nodes.size(), 1u);
  const admin::v1::DataPlane& d = nodes[0];
  EXPECT_EQ(d.node_id(), "gw-1");
  EXPECT_TRUE(d.connected());
  EXPECT_EQ(d.health_reported().seconds(), 1'700'000'000);
  ASSERT_EQ(d.upstreams_size(), 2);
  EXPECT_EQ(d.upstreams(0).provider(), "openai");
  EXPECT_EQ(d.upstreams(0).credential(), "openai-key@2");
  EXPECT_EQ(d.upstreams(0).breaker_state(), config::v1::BREAKER_STATE_OPEN);
  EXPECT_EQ(d.upstreams(0).open_until().seconds(), 1'700'000'030);
  EXPECT_EQ(d.upstreams(0).open_reason(), "5 consecutive failures");
  EXPECT_EQ(d.upstreams(1).breaker_state(), config::v1::BREAKER_STATE_CLOSED);

  admin::v1::DataPlane one;
  ASSERT_TRUE(Get("gw-1", &one).ok());
  EXPECT_EQ(one.SerializeAsString(), d.SerializeAsString());
}

TEST_F(HealthReportTest, CallerKeyUsesReachTheCallersKeysToTheMinute) {
  admin::v1::Caller caller;
  caller.mutable_spec()->set_name("claims");
  ASSERT_TRUE(cp_->admin().CreateResource(caller, "test").ok());
  ASSERT_TRUE(cp_->admin().CreateCallerKey("claims", "claims-key-1", "test").ok());
  Watch("gw-1");
  const int64_t minute = absl::ToUnixSeconds(absl::Now()) / 60 * 60 - 120;
  ReportHealthRequest report;
  report.set_node_id("gw-1");
  auto* use = report.add_caller_key_uses();
  use->set_key_id("claims-key-1");
  use->set_last_used_unix_seconds(minute + 17);
  ASSERT_TRUE(Report(report).ok());
  auto got = cp_->admin().GetResource<admin::v1::Caller>("claims");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->keys_size(), 1);
  EXPECT_EQ(got->keys(0).last_used_time().seconds(), minute);
  // A node without a watch stream is refused; its report changes nothing.
  use->set_last_used_unix_seconds(minute + 60);
  report.set_node_id("gw-2");
  EXPECT_FALSE(Report(report).ok());
  EXPECT_EQ(cp_->admin().GetResource<admin::v1::Caller>("claims")->keys(0).last_used_time()
                .seconds(),
            minute);
}

TEST_F(HealthReportTest, NewerReportReplacesTheOlderWhole) {
  Watch("gw-1");
  ReportHealthRequest first;
  first.set_node_id("gw-1");
  first.mutable_observed()->set_seconds(100);
  *first.add_upstreams() = Upstream("openai", config::v1::BREAKER_STATE_OPEN);
  *first.add_upstreams() = Upstream("claude", config::v1::BREAKER_STATE_OPEN);
  ASSERT_TRUE(Report(first).ok());
  ReportHealthRequest second;
  second.set_node_id("gw-1");
  second.mutable_observed()->set_seconds(105);
  *second.add_upstreams() = Upstream("openai", config::v1::BREAKER_STATE_CLOSED);
  ASSERT_TRUE(Report(second).ok());

  admin::v1::DataPlane d;
  ASSERT_TRUE(Get("gw-1", &d).ok());
  EXPECT_EQ(d.health_reported().seconds(), 105);
  ASSERT_EQ(d.upstreams_size(), 1);  // claude is gone: not merged with the old report
  EXPECT_EQ(d.upstreams(0).provider(), "openai");
  EXPECT_EQ(d.upstreams(0).breaker_state(), config::v1::BREAKER_STATE_CLOSED);
  EXPECT_FALSE(d.upstreams(0).has_open_until());
}

TEST_F(HealthReportTest, ReportWithoutObservedTimeIsStampedOnArrival) {
  Watch("gw-1");
  ReportHealthRequest report;
  report.set_node_id("gw-1");
  const absl::Time before = absl::Now();
  ASSERT_TRUE(Report(report).ok());
  admin::v1::DataPlane d;
  ASSERT_TRUE(Get("gw-1", &d).ok());
  ASSERT_TRUE(d.has_health_reported());
  EXPECT_GE(d.health_reported().seconds(), absl::ToUnixSeconds(before));
  EXPECT_EQ(d.upstreams_size(), 0);
}

TEST_F(HealthReportTest, UnknownNodeIsRefusedAndNotListed) {
  Watch("gw-1");
  ReportHealthRequest report;
  report.set_node_id("gw-never-watched");
  *report.add_upstreams() = Upstream("openai", config::v1::BREAKER_STATE_OPEN);
  grpc::Status s = Report(report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("gw-never-watched"));
  std::vector<std::string> ids;
  for (const auto& d : List()) ids.push_back(d.node_id());
  EXPECT_THAT(ids, ElementsAre("gw-1"));
  admin::v1::DataPlane d;
  EXPECT_EQ(Get("gw-never-watched", &d).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Get("gw-1", &d).ok());
  EXPECT_EQ(d.upstreams_size(), 0);
  EXPECT_FALSE(d.has_health_reported());
}

TEST_F(HealthReportTest, MalformedReportsAreInvalidArgument) {
  Watch("gw-1");
  ReportHealthRequest no_node;
  *no_node.add_upstreams() = Upstream("openai", config::v1::BREAKER_STATE_OPEN);
  EXPECT_EQ(Report(no_node).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ReportHealthRequest long_node;
  long_node.set_node_id(std::string(257, 'g'));
  EXPECT_EQ(Report(long_node).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ReportHealthRequest flood;
  flood.set_node_id("gw-1");
  for (int i = 0; i < 10001; ++i) flood.add_upstreams()->set_provider("p");
  EXPECT_EQ(Report(flood).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  admin::v1::DataPlane d;
  ASSERT_TRUE(Get("gw-1", &d).ok());
  EXPECT_EQ(d.upstreams_size(), 0);
  EXPECT_EQ(Get("", &d).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(HealthReportTest, ReportKeepsItsNodeSeenAfterTheStreamCloses) {
  Watch("gw-1");
  watch_->WritesDone();
  config::v1::WatchResponse ignored;
  while (watch_->Read(&ignored)) {
  }
  ASSERT_TRUE(watch_->Finish().ok());
  ASSERT_TRUE(WaitFor([&] { return !cp_->registry().Get("gw-1")->connected(); }));
  // A gateway between two watch streams still reports; the control plane still takes it.
  ReportHealthRequest report;
  report.set_node_id("gw-1");
  *report.add_upstreams() = Upstream("openai", config::v1::BREAKER_STATE_HALF_OPEN);
  ASSERT_TRUE(Report(report).ok());
  admin::v1::DataPlane d;
  ASSERT_TRUE(Get("gw-1", &d).ok());
  EXPECT_FALSE(d.connected());
  ASSERT_EQ(d.upstreams_size(), 1);
  EXPECT_EQ(d.upstreams(0).breaker_state(), config::v1::BREAKER_STATE_HALF_OPEN);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
