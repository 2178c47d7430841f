// The gateway's ConfigWatchClient against a real in-process control plane: apply + ACK + save,
// following changes, NACK without resend, coalescing behind a slow apply, reconnecting across a
// control-plane restart (its backoff on the injected SimulatedClock and random source), starting
// from the cached snapshot, and two gateways converging. No assertion bounds wall-clock time.
#include <sys/stat.h>

#include <deque>
#include <fstream>
#include <limits>
#include <random>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config_watch_client.h"
#include "tests/controlplane/control_plane_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::HasSubstr;
using ::turnpike::testing::WaitFor;

// Records every snapshot the client asks to apply; rejects those the test marks bad.
class Recorder {
 public:
  ConfigWatchClient::ApplyFn Fn() {
    return [this](const config::v1::Snapshot& s) -> absl::Status {
      absl::MutexLock lock(&mu_);
      calls_.push_back(s.version());
      mu_.Await(absl::Condition(
          +[](Recorder* r) { return !r->blocked_; }, this));
      for (const auto& r : s.routes()) {
        if (r.capability() == "bad")
          return absl::InvalidArgumentError("route bad: rejected by test");
      }
      return absl::OkStatus();
    };
  }
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  void Block(bool b) {
    absl::MutexLock lock(&mu_);
    blocked_ = b;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> calls_;
  bool blocked_ = false;
};

// A random source that always draws the top of the range: every backoff is its ceiling.
struct TopOfRange {
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() { return max(); }
};

class WatchClientTest : public ControlPlaneFixture {
 protected:
  // Each client gets its own generator (it is drawn from on the client's thread); all share the
  // simulated clock, which moves only when a test advances it.
  std::unique_ptr<ConfigWatchClient> Client(const std::string& node, Recorder& rec,
                                            const std::string& cache = "",
                                            const std::string& target = "",
                                            absl::Duration backoff = absl::Milliseconds(50)) {
    ConfigWatchClient::Options o;
    o.target = target.empty() ? this->target() : target;
    o.node_id = node;
    o.node_token = NodeToken(node);
    o.snapshot_path = cache;
    o.credentials = grpc::InsecureChannelCredentials();
    o.initial_backoff = backoff;
    o.max_backoff = backoff * 10;
    o.build_version = "test";
    auto c = ConfigWatchClient::Create(o, rec.Fn(), clock_, rngs_.emplace_back(rngs_.size()));
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }
  // Advances the simulated clock by `step` until `cond` holds (or WaitFor's deadline passes):
  // a reconnect waits on the injected clock, whenever the client starts waiting.
  bool AdvanceUntil(const std::function<bool()>& cond, absl::Duration step) {
    return WaitFor([&] {
      if (cond()) return true;
      clock_.Advance(step);
      return false;
    });
  }
  bool Connected(const std::string& node) {
    auto d = cp_->registry().Get(node);
    return d && d->connected();
  }

  SimulatedClock clock_;
  std::deque<std::mt19937_64> rngs_;
  bool Applied(ConfigWatchClient& c, int64_t version) {
    return WaitFor([&] { return c.applied_version() == std::to_string(version); });
  }
};

TEST_F(WatchClientTest, AppliesAcksAndSavesTheSnapshot) {
  int64_t v = Change();
  Recorder rec;
  std::string cache = dir_.File("gw.snapshot");
  auto client = Client("gw-1", rec, cache);
  client->Start();
  ASSERT_TRUE(Applied(*client, v));
  ASSERT_TRUE(WaitFor([&] {
    auto d = cp_->registry().Get("gw-1");
    return d && d->acked_version() == std::to_string(v) && d->connected();
  }));
  struct stat st;
  ASSERT_EQ(stat(cache.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  config::v1::Snapshot saved;
  std::ifstream in(cache, std::ios::binary);
  ASSERT_TRUE(saved.ParseFromIstream(&in));
  EXPECT_EQ(saved.version(), std::to_string(v));
  EXPECT_EQ(client->stats().applied, 1);
  client->Stop();
  client->Stop();  // idempotent
  EXPECT_TRUE(WaitFor([&] { return !cp_->registry().Get("gw-1")->connected(); }));
}

TEST_F(WatchClientTest, FollowsEveryChange) {
  Recorder rec;
  auto client = Client("gw-1", rec);
  client->Start();
  ASSERT_TRUE(Applied(*client, CurrentVersion()));
  for (int i = 0; i < 5; ++i) {
    int64_t v = Change();
    ASSERT_TRUE(Applied(*client, v));
  }
  // Every change came on the first stream: pushed, not picked up by reconnecting (the simulated
  // clock never moved, so no reconnect could have happened anyway).
  EXPECT_EQ(client->stats().streams, 1);
}

TEST_F(WatchClientTest, RejectedSnapshotIsNackedOnceAndPreviousStaysInForce) {
  Recorder rec;
  auto client = Client("gw-1", rec);
  client->Start();
  int64_t good = CurrentVersion();
  ASSERT_TRUE(Applied(*client, good));
  Change();  // provider p1, so that route "bad" is valid for the control plane
  ASSERT_TRUE(Applied(*client, CurrentVersion()));
  good = CurrentVersion();
  ASSERT_TRUE(cp_->admin().CreateResource(MakeRoute("bad", "p1"), "t").ok());
  int64_t bad = CurrentVersion();
  ASSERT_TRUE(WaitFor([&] { return !cp_->registry().Get("gw-1")->last_nack().empty(); }));
  auto d = *cp_->registry().Get("gw-1");
  EXPECT_THAT(d.last_nack(), HasSubstr("route bad"));
  EXPECT_EQ(d.nacked_version(), std::to_string(bad));
  EXPECT_EQ(d.acked_version(), std::to_string(good));
  EXPECT_EQ(client->applied_version(), std::to_string(good));
  // The fix is a newer version; it is applied, and the rejected one was offered exactly once.
  ASSERT_TRUE(cp_->admin().DeleteResource<admin::v1::Route>("bad", 0, "t").ok());
  ASSERT_TRUE(Applied(*client, CurrentVersion()));
  std::vector<std::string> calls = rec.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), std::to_string(bad)), 1);
  EXPECT_TRUE(std::is_sorted(calls.begin(), calls.end(), [](const auto& a, const auto& b) {
    return std::stoll(a) < std::stoll(b);
  }));
  EXPECT_EQ(client->stats().nacked, 1);
  // The ACK of the fix clears the NACK (the client applies before it ACKs, hence the wait).
  EXPECT_TRUE(WaitFor([&] { return cp_->registry().Get("gw-1")->last_nack().empty(); }));
}

TEST_F(WatchClientTest, ChangesDuringASlowApplyCoalesce) {
  Recorder rec;
  auto client = Client("gw-1", rec);
  client->Start();
  ASSERT_TRUE(Applied(*client, CurrentVersion()));
  rec.Block(true);
  Change();  // delivered, stuck in apply
  ASSERT_TRUE(WaitFor([&] { return rec.calls().size() == 2; }));
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = Change();
  rec.Block(false);
  ASSERT_TRUE(Applied(*client, last));
  // Initial, the one stuck in apply, and the newest: never the four in between.
  EXPECT_LE(rec.calls().size(), 3u);
}

TEST_F(WatchClientTest, ReconnectsAfterControlPlaneRestart) {
  Recorder rec;
  auto client = Client("gw-1", rec);
  client->Start();
  ASSERT_TRUE(Applied(*client, Change()));
  RestartControlPlane();
  // The new process knows the node again once it reconnects (after a backoff on the simulated
  // clock), and pushes new changes to it.
  ASSERT_TRUE(AdvanceUntil([&] { return Connected("gw-1"); }, absl::Milliseconds(50)));
  int64_t v = Change();
  ASSERT_TRUE(Applied(*client, v));
  EXPECT_GE(client->stats().streams, 2);
}

// The reconnect backoff is drawn from the injected random source and waited on the injected
// clock: with a one-hour backoff drawn at its ceiling, the client reconnects as soon as the
// simulated hour has passed, which real time would not allow within the test's deadline.
TEST_F(WatchClientTest, ReconnectBackoffRunsOnTheInjectedClockAndRandomSource) {
  Recorder rec;
  ConfigWatchClient::Options o;
  o.target = target();
  o.node_id = "gw-1";
  o.node_token = NodeToken("gw-1");
  o.credentials = grpc::InsecureChannelCredentials();
  o.initial_backoff = absl::Hours(1);
  o.max_backoff = absl::Hours(1);
  TopOfRange top;
  auto client = ConfigWatchClient::Create(o, rec.Fn(), clock_, top);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->Start();
  ASSERT_TRUE(Applied(**client, Change()));
  const absl::Time before = clock_.MonotonicNow();
  RestartControlPlane();
  EXPECT_EQ((*client)->stats().streams, 1);
  ASSERT_TRUE(AdvanceUntil([&] { return Connected("gw-1"); }, absl::Minutes(5)));
  EXPECT_GE((*client)->stats().streams, 2);
  // The wait drawn at the top of [0, 1 h) ended only after (nearly) a simulated hour.
  EXPECT_GE(clock_.MonotonicNow() - before, absl::Minutes(55));
}

TEST_F(WatchClientTest, StartsFromCachedSnapshotWhileControlPlaneIsDown) {
  std::string cache = dir_.File("gw.snapshot");
  int64_t v = Change();
  {
    Recorder rec;
    auto client = Client("gw-1", rec, cache);
    client->Start();
    ASSERT_TRUE(Applied(*client, v));
    client->Stop();
  }
  cp_.reset();  // control plane down
  Recorder rec;
  auto client = Client("gw-1", rec, cache, target());
  ASSERT_TRUE(client->LoadCachedSnapshot().ok());
  EXPECT_EQ(client->applied_version(), std::to_string(v));
  ASSERT_EQ(rec.calls().size(), 1u);
  // Keeps trying in the background; Stop() must not hang. The simulated clock never moves, so
  // only Stop() can end a wait: returning at all is the property.
  client->Start();
  client->Stop();
  // When it comes back with the same version the snapshot is ACKed, not applied again.
  StartControlPlane(target());
  auto again = Client("gw-1", rec, cache);
  ASSERT_TRUE(again->LoadCachedSnapshot().ok());
  again->Start();
  ASSERT_TRUE(WaitFor([&] {
    auto d = cp_->registry().Get("gw-1");
    return d && d->connected() && d->acked_version() == std::to_string(v);
  }));
  EXPECT_EQ(rec.calls().size(), 2u);  // the two cache loads only
}

TEST_F(WatchClientTest, CachedSnapshotErrors) {
  Recorder rec;
  std::string cache = dir_.File("gw.snapshot");
  auto client = Client("gw-1", rec, cache);
  EXPECT_EQ(client->LoadCachedSnapshot().code(), absl::StatusCode::kNotFound);
  std::ofstream(cache) << "\xff\xff\xff garbage";
  EXPECT_EQ(client->LoadCachedSnapshot().code(), absl::StatusCode::kDataLoss);
  config::v1::Snapshot bad;
  bad.set_version("3");
  bad.add_routes()->set_capability("bad");
  std::ofstream(cache, std::ios::trunc | std::ios::binary) << bad.SerializeAsString();
  absl::Status s = client->LoadCachedSnapshot();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->applied_version(), "");
  auto no_cache = Client("gw-2", rec);
  EXPECT_EQ(no_cache->LoadCachedSnapshot().code(), absl::StatusCode::kNotFound);
}

TEST_F(WatchClientTest, TwoGatewaysConverge) {
  Recorder ra, rb;
  auto a = Client("gw-a", ra);
  auto b = Client("gw-b", rb);
  a->Start();
  b->Start();
  int64_t v = Change();
  ASSERT_TRUE(Applied(*a, v));
  ASSERT_TRUE(Applied(*b, v));
  ASSERT_TRUE(
      WaitFor([&] { return cp_->registry().Count(std::to_string(v)) == std::make_pair(2, 2); }));
}

TEST_F(WatchClientTest, CreateRejectsBadOptions) {
  Recorder rec;
  ConfigWatchClient::Options o;
  o.target = target();
  o.node_id = "n";
  o.credentials = grpc::InsecureChannelCredentials();
  std::mt19937_64 gen(1);
  EXPECT_TRUE(ConfigWatchClient::Create(o, rec.Fn(), clock_, gen).ok());
  auto bad = o;
  bad.target.clear();
  EXPECT_EQ(ConfigWatchClient::Create(bad, rec.Fn(), clock_, gen).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.node_id.clear();
  EXPECT_FALSE(ConfigWatchClient::Create(bad, rec.Fn(), clock_, gen).ok());
  bad = o;
  bad.credentials = nullptr;
  EXPECT_FALSE(ConfigWatchClient::Create(bad, rec.Fn(), clock_, gen).ok());
  bad = o;
  bad.max_backoff = absl::Milliseconds(1);
  EXPECT_FALSE(ConfigWatchClient::Create(bad, rec.Fn(), clock_, gen).ok());
  EXPECT_FALSE(ConfigWatchClient::Create(o, nullptr, clock_, gen).ok());
}

}  // namespace
}  // namespace turnpike::controlplane::testing
