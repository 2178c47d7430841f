// Config propagation latency: from an admin RPC sent through a real gRPC client to the moment a
// ConfigWatchClient (the gateway's) has applied the resulting snapshot, over 100 changes.
// Prints p50/p99/max and requires every change to arrive within 1 s.
//   controlplane_tests --gtest_filter=PropagationLatency*
#include <algorithm>
#include <cstdio>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/config/config_watch_client.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

class PropagationLatencyTest : public ControlPlaneFixture {};

TEST_F(PropagationLatencyTest, HundredChangesP50P99) {
  absl::Mutex mu;
  int64_t applied = 0;
  absl::Time applied_at;
  absl::BitGen gen;  // the watch client's; drawn from on its thread only
  ConfigWatchClient::Options o;
  o.target = target();
  o.node_id = "gw-latency";
  o.node_token = NodeToken("gw-latency");
  o.credentials = grpc::InsecureChannelCredentials();
  auto client = ConfigWatchClient::Create(
      o,
      [&](const config::v1::Snapshot& s) {
        int64_t v = 0;
        if (!absl::SimpleAtoi(s.version(), &v)) return absl::InvalidArgumentError("version");
        absl::MutexLock lock(&mu);
        applied = v;
        applied_at = absl::Now();
        return absl::OkStatus();
      },
      Clock::Real(), gen);
  ASSERT_TRUE(client.ok());
  (*client)->Start();

  auto stub = admin::v1::AdminService::NewStub(Channel());
  {
    grpc::ClientContext ctx;
    admin::v1::CreateProviderRequest req;
    *req.mutable_provider() = MakeProvider("fake");
    admin::v1::CreateProviderResponse resp;
    ASSERT_TRUE(stub->CreateProvider(&ctx, req, &resp).ok());
  }
  // The watch is connected and current before the clock starts: the figure is propagation, not
  // the first connection (which, on a loaded machine, can take a reconnect backoff).
  {
    const int64_t want = CurrentVersion();
    struct Target {
      int64_t* applied;
      int64_t want;
    } target{&applied, want};
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](Target* t) { return *t->applied >= t->want; }, &target),
                                    absl::Seconds(30)))
        << "the watch never caught up with version " << want;
  }
  std::vector<absl::Duration> latencies;
  for (int i = 0; i < 100; ++i) {
    admin::v1::Route route = MakeRoute("latency", "fake");
    route.mutable_spec()->set_default_max_tokens(100 + i);
    absl::Time start = absl::Now();
    grpc::ClientContext ctx;
    grpc::Status s;
    if (i == 0) {
      admin::v1::CreateRouteRequest req;
      *req.mutable_route() = route;
      admin::v1::CreateRouteResponse resp;
      s = stub->CreateRoute(&ctx, req, &resp);
    } else {
      admin::v1::UpdateRouteRequest req;
      *req.mutable_route() = route;
      admin::v1::UpdateRouteResponse resp;
      s = stub->UpdateRoute(&ctx, req, &resp);
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    int64_t want = CurrentVersion();
    struct Target {
      int64_t* applied;
      int64_t want;
    } target{&applied, want};
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](Target* t) { return *t->applied >= t->want; }, &target),
                                    absl::Seconds(5)))
        << "change " << i << " not applied within 5 s";
    latencies.push_back(applied_at - start);
  }
  (*client)->Stop();
  auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
  std::string each;
  for (size_t i = 0; i < latencies.size(); ++i)
    absl::StrAppend(&each, i, ":", ms(latencies[i]), " ");
  std::sort(latencies.begin(), latencies.end());
  // Nearest-rank percentiles: over 100 changes p99 is the 99th, not the largest.
  auto percentile = [&](size_t p) { return latencies[(latencies.size() * p + 99) / 100 - 1]; };
  std::printf(
      "config propagation over %zu changes (admin RPC -> gateway applied): p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms\n",
      latencies.size(), ms(percentile(50)), ms(percentile(99)), ms(latencies.back()));
  RecordProperty("p50_ms", std::to_string(ms(percentile(50))));
  RecordProperty("p99_ms", std::to_string(ms(percentile(99))));
  // The promise in docs/control-plane.md: p99 under 1 s. (The max is printed, not asserted: one
  // change delayed by a scheduler stall on a loaded 2-core machine is not a propagation fault.)
  EXPECT_LT(percentile(99), absl::Seconds(1)) << "per change (ms): " << each;
}

}  // namespace
}  // namespace turnpike::controlplane::testing
