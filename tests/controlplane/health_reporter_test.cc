// The gateway's HealthReporter against a real in-process control plane, on the real watch
// client's channel, reporting a real Resilience whose circuit breaker is driven through
// UpstreamState on a simulated clock: what the admin API shows (OPEN with its open_until,
// HALF_OPEN, then CLOSED after recovery), prompt reports on change, periodic reports on the
// injected clock, and a control plane that is down (failures counted, nothing blocks, the next
// report after it returns carries everything).
#include <random>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config_watch_client.h"
#include "server/config/health_reporter.h"
#include "server/resilience/resilience.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using config::v1::UpstreamHealth;
using ::testing::HasSubstr;
using ::turnpike::testing::WaitFor;

constexpr char kNode[] = "gw-1";

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Timestamps hold nanoseconds; absl::Time (and a jittered ejection) is finer.
::testing::AssertionResult SameTime(const google::protobuf::Timestamp& ts, absl::Time t) {
  const absl::Duration diff = FromTimestamp(ts) - t;
  if (diff <= absl::ZeroDuration() && diff > -absl::Nanoseconds(1)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << FromTimestamp(ts) << " is not " << t;
}

class HealthReporterTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    admin_ = admin::v1::AdminService::NewStub(Channel());
    // The real watch client: it registers the node and owns the channel reports go on.
    ConfigWatchClient::Options o;
    o.target = target();
    o.node_id = kNode;
    o.node_token = NodeToken(kNode);
    o.credentials = grpc::InsecureChannelCredentials();
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(500);
    auto watch = ConfigWatchClient::Create(
        o, [](const config::v1::Snapshot&) { return absl::OkStatus(); }, Clock::Real(), watch_gen_);
    ASSERT_TRUE(watch.ok()) << watch.status();
    watch_ = *std::move(watch);
    watch_->Start();
    ASSERT_TRUE(Connected());
  }
  void TearDown() override {
    reporter_.reset();
    watch_.reset();
    ControlPlaneFixture::TearDown();
  }

  bool Connected() {
    return WaitFor([&] {
      auto d = cp_ != nullptr ? cp_->registry().Get(kNode) : std::nullopt;
      return d && d->connected();
    });
  }

  void StartReporter(absl::Duration interval) {
    HealthReporter::Options o;
    o.node_id = kNode;
    o.interval = interval;
    o.log_failure = [this](const std::string& message) {
      absl::MutexLock lock(&mu_);
      failures_.push_back(message);
    };
    auto reporter = HealthReporter::Create(
        o, watch_->channel(), [this] { return resilience_.Status(); }, clock_);
    ASSERT_TRUE(reporter.ok()) << reporter.status();
    reporter_ = *std::move(reporter);
    reporter_->Start();
  }

  // The gateway as GetDataPlane shows it.
  admin::v1::DataPlane Shown() {
    grpc::ClientContext context;
    admin::v1::GetDataPlaneRequest request;
    request.set_node_id(kNode);
    admin::v1::GetDataPlaneResponse response;
    grpc::Status s = admin_->GetDataPlane(&context, request, &response);
    return s.ok() ? response.data_plane() : admin::v1::DataPlane();
  }
  // The upstream of `provider` as the admin API shows it, if reported.
  std::optional<UpstreamHealth> ShownUpstream(const std::string& provider) {
    const admin::v1::DataPlane shown = Shown();
    for (const UpstreamHealth& h : shown.upstreams()) {
      if (h.provider() == provider) return h;
    }
    return std::nullopt;
  }
  bool ShownState(const std::string& provider, config::v1::BreakerState state) {
    return WaitFor([&] {
      std::optional<UpstreamHealth> h = ShownUpstream(provider);
      return h && h->breaker_state() == state;
    });
  }
  std::vector<std::string> failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

  SimulatedClock clock_;
  std::mt19937_64 gen_{7};
  std::mt19937_64 watch_gen_{8};  // the watch client's own (drawn from on its thread)
  Resilience resilience_{Resilience::Options(), clock_, gen_};
  BreakerSettings settings_;  // defaults: opens after 5 failures, ejects for 30 s (+ jitter)
  std::unique_ptr<admin::v1::AdminService::Stub> admin_;
  std::unique_ptr<ConfigWatchClient> watch_;
  std::unique_ptr<HealthReporter> reporter_;
  absl::Mutex mu_;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
};

TEST_F(HealthReporterTest, AdminSeesTheBreakerOpenThenHalfOpenThenClosed) {
  UpstreamState& openai = resilience_.Upstream("openai", "gpt-4o-mini", "openai-key@2");
  resilience_.Upstream("claude", "claude-haiku-4-5", "");
  // Periodic reports every simulated hour, which never passes here: every report after the
  // first is one the reporter sent because something changed.
  StartReporter(absl::Hours(1));
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_CLOSED));
  ASSERT_TRUE(ShownState("claude", config::v1::BREAKER_STATE_CLOSED));
  EXPECT_EQ(FromTimestamp(Shown().health_reported()), clock_.Now());

  for (int i = 0; i < settings_.consecutive_failures; ++i) {
    openai.RecordFailure(settings_, clock_.MonotonicNow(), 0);
  }
  const absl::Time open_until = openai.Status(clock_.MonotonicNow()).open_until;
  ASSERT_GT(open_until, clock_.MonotonicNow());
  // Shown although the simulated hour never passes: the change itself was reported.
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_OPEN));
  UpstreamHealth h = *ShownUpstream("openai");
  // SimulatedClock: wall and monotonic time are the same, so open_until shows unchanged.
  EXPECT_TRUE(SameTime(h.open_until(), open_until));
  EXPECT_EQ(h.model(), "gpt-4o-mini");
  EXPECT_EQ(h.credential(), "openai-key@2");
  EXPECT_EQ(h.consecutive_failures(), 0);  // the count starts again when the circuit opens
  EXPECT_EQ(h.ejections(), 1);
  EXPECT_EQ(h.opened_total(), 1);
  EXPECT_THAT(h.open_reason(), HasSubstr("5 consecutive failures"));
  EXPECT_EQ(ShownUpstream("claude")->breaker_state(), config::v1::BREAKER_STATE_CLOSED);

  // The ejection ends: half-open, still showing when it ended.
  clock_.Advance(open_until - clock_.MonotonicNow());
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_HALF_OPEN));
  EXPECT_TRUE(SameTime(ShownUpstream("openai")->open_until(), open_until));

  // A probe succeeds: closed, with no open_until.
  UpstreamState::Admission probe = openai.Admit(settings_, clock_.MonotonicNow());
  ASSERT_EQ(probe.kind, UpstreamState::Admission::Kind::kProbe);
  openai.RecordSuccess(settings_, clock_.MonotonicNow(), probe.probe_id);
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_CLOSED));
  h = *ShownUpstream("openai");
  EXPECT_FALSE(h.has_open_until());
  EXPECT_EQ(h.ejections(), 1);  // decays while it stays healthy
  EXPECT_EQ(h.opened_total(), 1);
  EXPECT_EQ(reporter_->stats().failed, 0) << ::testing::PrintToString(failures());
  // The reporter counts a report once its RPC returns, which can be just after the control
  // plane shows it.
  EXPECT_TRUE(WaitFor([&] { return reporter_->stats().sent >= 4; }))
      << "sent " << reporter_->stats().sent;
}

TEST_F(HealthReporterTest, PeriodicReportFollowsTheInjectedClock) {
  UpstreamState& openai = resilience_.Upstream("openai", "gpt-4o-mini", "openai-key@2");
  StartReporter(absl::Seconds(10));
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_CLOSED));
  const absl::Time first = clock_.Now();
  EXPECT_EQ(FromTimestamp(Shown().health_reported()), first);
  // A request in flight is not a state change; it shows with the next periodic report, once the
  // simulated interval has passed.
  openai.StartFirstAttempt();
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(WaitFor([&] {
    return FromTimestamp(Shown().health_reported()) == first + absl::Seconds(10) &&
           ShownUpstream("openai")->active_requests() == 1;
  }));
  openai.FinishFirstAttempt();
}

TEST_F(HealthReporterTest, ControlPlaneDownCountsFailuresAndTheNextReportCarriesEverything) {
  UpstreamState& openai = resilience_.Upstream("openai", "gpt-4o-mini", "");
  cp_.reset();  // the control plane is down
  StartReporter(absl::Seconds(5));
  ASSERT_TRUE(WaitFor([&] { return reporter_->stats().failed >= 1; }));
  ASSERT_FALSE(failures().empty());
  EXPECT_THAT(failures()[0], HasSubstr("health report"));
  // The breaker opens while nobody listens: that report is lost too.
  for (int i = 0; i < settings_.consecutive_failures; ++i) {
    openai.RecordFailure(settings_, clock_.MonotonicNow(), 0);
  }
  ASSERT_TRUE(WaitFor([&] { return reporter_->stats().failed >= 2; }));
  EXPECT_EQ(reporter_->stats().sent, 0);
  // Back up: the watch client reconnects (the node is known again), and the next periodic
  // report shows the state as it is now.
  StartControlPlane(target());
  ASSERT_TRUE(Connected());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(ShownState("openai", config::v1::BREAKER_STATE_OPEN));
  EXPECT_EQ(ShownUpstream("openai")->credential(), "");
  // Stop does not wait for the next report: the simulated interval never passes from here on, so
  // returning at all is the property.
  reporter_->Stop();
  reporter_->Stop();  // idempotent
}

// A clock whose wall and monotonic times differ, as they do in production.
class SplitClock : public Clock {
 public:
  absl::Time Now() override { return absl::FromUnixSeconds(1'700'000'000); }
  absl::Time MonotonicNow() override { return absl::FromUnixSeconds(5'000); }
};

TEST(HealthReportBuildTest, ConvertsStatesAndTimesAndSorts) {
  SplitClock clock;
  const absl::Time mono = clock.MonotonicNow();
  const absl::Time wall = clock.Now();
  std::vector<UpstreamStatus> status(4);
  status[0].provider = "zeta";
  status[0].model = "m";
  status[0].breaker_state = "open";
  status[0].open_until = mono + absl::Seconds(30) + absl::Milliseconds(250);
  status[0].open_reason = "5 consecutive failures";
  status[0].cooling_until = mono + absl::Seconds(2);
  status[1].provider = "alpha";
  status[1].model = "m";
  status[1].credential = "alpha-key@1";
  status[1].breaker_state = "closed";
  status[1].open_until = mono - absl::Minutes(3);     // an old ejection: not shown when closed
  status[1].cooling_until = mono - absl::Seconds(1);  // over: not shown
  status[1].credential_failing_until = mono + absl::Minutes(5);
  status[2].provider = "alpha";
  status[2].model = "a";
  status[2].breaker_state = "half_open";
  status[2].open_until = mono - absl::Seconds(1);
  status[3].provider = "beta";
  status[3].model = "m";
  status[3].breaker_state = "closed";
  status[3].open_until = absl::InfinitePast();
  status[3].cooling_until = absl::InfinitePast();
  status[3].credential_failing_until = absl::InfinitePast();
  status[3].throttle_tokens = 9.5;
  status[3].retries_total = 7;

  config::v1::ReportHealthRequest r = HealthReporter::BuildReport("gw-9", status, clock);
  EXPECT_EQ(r.node_id(), "gw-9");
  EXPECT_EQ(FromTimestamp(r.observed()), wall);
  ASSERT_EQ(r.upstreams_size(), 4);
  EXPECT_EQ(r.upstreams(0).provider(), "alpha");
  EXPECT_EQ(r.upstreams(0).model(), "a");
  EXPECT_EQ(r.upstreams(0).breaker_state(), config::v1::BREAKER_STATE_HALF_OPEN);
  EXPECT_EQ(FromTimestamp(r.upstreams(0).open_until()), wall - absl::Seconds(1));

  const UpstreamHealth& alpha = r.upstreams(1);
  EXPECT_EQ(alpha.credential(), "alpha-key@1");
  EXPECT_EQ(alpha.breaker_state(), config::v1::BREAKER_STATE_CLOSED);
  EXPECT_FALSE(alpha.has_open_until());
  EXPECT_FALSE(alpha.has_cooling_until());
  EXPECT_EQ(FromTimestamp(alpha.credential_failing_until()), wall + absl::Minutes(5));

  const UpstreamHealth& beta = r.upstreams(2);
  EXPECT_EQ(beta.provider(), "beta");
  EXPECT_FALSE(beta.has_open_until());
  EXPECT_FALSE(beta.has_cooling_until());
  EXPECT_FALSE(beta.has_credential_failing_until());
  EXPECT_DOUBLE_EQ(beta.throttle_tokens(), 9.5);
  EXPECT_EQ(beta.retries_total(), 7);

  const UpstreamHealth& zeta = r.upstreams(3);
  EXPECT_EQ(zeta.breaker_state(), config::v1::BREAKER_STATE_OPEN);
  EXPECT_EQ(FromTimestamp(zeta.open_until()), wall + absl::Seconds(30) + absl::Milliseconds(250));
  EXPECT_EQ(zeta.open_until().nanos(), 250'000'000);
  EXPECT_EQ(FromTimestamp(zeta.cooling_until()), wall + absl::Seconds(2));
  EXPECT_EQ(zeta.open_reason(), "5 consecutive failures");
}

TEST(HealthReportBuildTest, CarriesTheLastMinuteEachCallerKeyWasUsed) {
  SimulatedClock clock;
  config::v1::ReportHealthRequest r =
      HealthReporter::BuildReport("gw-9", {}, clock, {{"claims-key-1", 1800000000 / 60 * 60}});
  ASSERT_EQ(r.caller_key_uses_size(), 1);
  EXPECT_EQ(r.caller_key_uses(0).key_id(), "claims-key-1");
  EXPECT_EQ(r.caller_key_uses(0).last_used_unix_seconds(), 1800000000 / 60 * 60);
  EXPECT_EQ(HealthReporter::BuildReport("gw-9", {}, clock).caller_key_uses_size(), 0);
}

TEST(HealthReportBuildTest, CreateRefusesBadOptions) {
  auto channel = grpc::CreateChannel("127.0.0.1:9", grpc::InsecureChannelCredentials());
  auto source = [] { return std::vector<UpstreamStatus>(); };
  HealthReporter::Options ok;
  ok.node_id = "gw";
  EXPECT_TRUE(HealthReporter::Create(ok, channel, source, Clock::Real()).ok());
  HealthReporter::Options no_node = ok;
  no_node.node_id.clear();
  EXPECT_FALSE(HealthReporter::Create(no_node, channel, source, Clock::Real()).ok());
  HealthReporter::Options zero = ok;
  zero.interval = absl::ZeroDuration();
  EXPECT_FALSE(HealthReporter::Create(zero, channel, source, Clock::Real()).ok());
  EXPECT_FALSE(HealthReporter::Create(ok, nullptr, source, Clock::Real()).ok());
  EXPECT_FALSE(HealthReporter::Create(ok, channel, nullptr, Clock::Real()).ok());
}

}  // namespace
}  // namespace turnpike::controlplane::testing
