// Alerting in a real in-process control plane: rules and channels through the gRPC AlertService
// (with its access rules), the real signals (registry, lease ledger, usage ledger), and webhooks
// to a real local receiver. Four gateways reporting the same open breaker make one alert and one
// notification; a budget's spend crossing 80 % through real leases notifies exactly once.
#include <map>

#include "absl/strings/str_cat.h"
#include "common/bearer_channel.h"
#include "controlplane/caller_keys.h"
#include "controlplane/control_plane.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/alerts/webhook_receiver.h"
#include "tests/controlplane/test_util.h"
#include "tests/controlplane/usage_test_util.h"
#include "turnpike/alert/v1/alert.grpc.pb.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::WebhookReceiver;
using turnpike::testing::WaitFor;

class AlertEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_token_ = GenerateKeyWithPrefix(kAdminTokenPrefix)->key;
    Start();
  }

  // Starts (or, after cp_.reset(), restarts) the control plane on the same database.
  void Start() {
    ControlPlane::Options o;
    o.db_path = dir_.File("cp.db");
    o.listen_address = "127.0.0.1:0";
    o.bootstrap_admin_token = admin_token_;
    o.auth_throttle.max_delay = absl::ZeroDuration();
    o.alerts.eval_interval = absl::ZeroDuration();  // the test evaluates
    o.alerts.notifier.backoff_base = absl::Milliseconds(20);
    o.alerts.notifier.backoff_cap = absl::Milliseconds(100);
    auto cp = ControlPlane::Start(o, *MasterKey::Parse(testing::kTestMasterKey), Clock::Real());
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = *std::move(cp);
    if (!tokens_.empty()) return;  // tokens live in the database
    for (auto [name, role] : {std::pair{"viewer", admin::v1::ADMIN_ROLE_VIEWER},
                              std::pair{"operator", admin::v1::ADMIN_ROLE_OPERATOR}}) {
      auto t = cp_->identities().CreateAdminToken(name, role, "test");
      ASSERT_TRUE(t.ok()) << t.status();
      tokens_[name] = t->token();
    }
    tokens_["admin"] = admin_token_;
  }

  std::unique_ptr<a::AlertService::Stub> Stub(const std::string& role) {
    return a::AlertService::NewStub(CreateChannelWithBearerToken(
        absl::StrCat("127.0.0.1:", cp_->port()), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), tokens_[role]));
  }

  void CreateWebhook(const std::string& url) {
    grpc::ClientContext ctx;
    a::CreateAlertChannelRequest req;
    req.mutable_channel()->set_name("ops");
    req.mutable_channel()->set_kind(a::CHANNEL_KIND_WEBHOOK);
    req.mutable_channel()->set_url(url);
    a::CreateAlertChannelResponse resp;
    grpc::Status s = Stub("admin")->CreateAlertChannel(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.channel().url(), "");
    EXPECT_THAT(resp.channel().url_redacted(), Not(HasSubstr("SECRET")));
  }

  void CreateRule(const a::AlertRule& rule) {
    grpc::ClientContext ctx;
    a::CreateAlertRuleRequest req;
    *req.mutable_rule() = rule;
    a::CreateAlertRuleResponse resp;
    grpc::Status s = Stub("operator")->CreateAlertRule(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::vector<a::Alert> ListAlerts() {
    grpc::ClientContext ctx;
    a::ListAlertsResponse resp;
    grpc::Status s = Stub("viewer")->ListAlerts(&ctx, a::ListAlertsRequest{}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.alerts().begin(), resp.alerts().end()};
  }

  void ReportBreaker(const std::string& node, config::v1::BreakerState state) {
    config::v1::ReportHealthRequest r;
    r.set_node_id(node);
    config::v1::UpstreamHealth* u = r.add_upstreams();
    u->set_provider("openai");
    u->set_model("gpt-4o");
    u->set_breaker_state(state);
    ASSERT_TRUE(cp_->registry().ReportedHealth(r).ok());
  }

  turnpike::testing::TempDir dir_;
  std::string admin_token_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<ControlPlane> cp_;
};

TEST_F(AlertEngineTest, FourGatewaysSeeingOneOpenBreakerMakeOneAlert) {
  WebhookReceiver receiver(/*fail_first=*/1);
  CreateWebhook(receiver.Url("/hook/SECRETPATH"));
  a::AlertRule rule;
  rule.set_name("breakers");
  rule.set_kind(a::ALERT_KIND_CIRCUIT_OPEN);
  rule.add_channels("ops");
  CreateRule(rule);
  for (int i = 1; i <= 4; ++i) {
    const std::string node = absl::StrCat("gw-", i);
    cp_->registry().Connected(node, "127.0.0.1:1", "test");
    ReportBreaker(node, config::v1::BREAKER_STATE_OPEN);
  }
  absl::StatusOr<int> queued = cp_->alerts().EvaluateOnce();
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(*queued, 1);
  ASSERT_TRUE(WaitFor([&] { return receiver.delivered() == 1; }));
  EXPECT_EQ(receiver.requests().size(), 2u) << "one failed try, one retry";
  EXPECT_EQ(*cp_->alerts().EvaluateOnce(), 0) << "still firing: nothing new to send";

  std::vector<a::Alert> alerts = ListAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].subject(), "openai/gpt-4o");
  EXPECT_EQ(alerts[0].state(), a::ALERT_STATE_FIRING);
  EXPECT_DOUBLE_EQ(alerts[0].value(), 4);
  ASSERT_EQ(alerts[0].deliveries_size(), 1);
  EXPECT_EQ(alerts[0].deliveries(0).status(), a::DELIVERY_STATUS_DELIVERED);
  EXPECT_EQ(alerts[0].deliveries(0).attempts(), 2);

  for (int i = 1; i <= 4; ++i)
    ReportBreaker(absl::StrCat("gw-", i), config::v1::BREAKER_STATE_CLOSED);
  EXPECT_EQ(*cp_->alerts().EvaluateOnce(), 1);
  ASSERT_TRUE(WaitFor([&] { return receiver.delivered() == 2; }));
  EXPECT_THAT(receiver.requests().back().body, HasSubstr(R"("status":"resolved")"));
  alerts = ListAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].state(), a::ALERT_STATE_RESOLVED);
}

TEST_F(AlertEngineTest, BudgetCrossing80PercentThroughLeasesNotifiesOnce) {
  WebhookReceiver receiver;
  CreateWebhook(receiver.Url());
  admin::v1::Budget bud;
  bud.mutable_spec()->set_name("monthly");
  bud.mutable_spec()->set_capability("demo");
  bud.mutable_spec()->set_limit_usd_micros(20000000);
  bud.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_MONTHLY);
  ASSERT_TRUE(cp_->admin().CreateResource(bud, "test").ok());
  a::AlertRule rule;
  rule.set_name("monthly-spend");
  rule.set_kind(a::ALERT_KIND_BUDGET_THRESHOLD);
  rule.set_budget("monthly");
  rule.add_budget_percents(80);
  rule.add_channels("ops");
  CreateRule(rule);
  // $0.50 at a time up to $19, evaluating after every release (as if after every request).
  int notified = 0;
  for (int i = 0; i < 38; ++i) {
    budget::v1::AcquireLeaseRequest acq;
    acq.set_node_id("gw-1");
    acq.mutable_quota()->set_budget("monthly");
    acq.set_requested(500000);
    auto lease = cp_->leases().Acquire(acq);
    ASSERT_TRUE(lease.ok()) << lease.status();
    budget::v1::ReleaseLeaseRequest rel;
    rel.set_node_id("gw-1");
    rel.set_lease_id(lease->lease_id());
    rel.set_spent_usd_micros(500000);
    ASSERT_TRUE(cp_->leases().Release(rel).ok());
    absl::StatusOr<int> queued = cp_->alerts().EvaluateOnce();
    ASSERT_TRUE(queued.ok()) << queued.status();
    notified += *queued;
    // $16 of $20 is the 32nd release: the crossing.
    EXPECT_EQ(notified, i + 1 >= 32 ? 1 : 0) << "after release " << i + 1;
  }
  ASSERT_TRUE(WaitFor([&] { return receiver.delivered() == 1; }));
  EXPECT_THAT(receiver.requests()[0].body, HasSubstr(R"("subject":"80%")"));
  EXPECT_EQ(receiver.requests().size(), 1u);

  // A restarted control plane remembers the alert (and its delivery): it does not notify again.
  ASSERT_TRUE(WaitFor([&] {
    std::vector<a::Alert> alerts = ListAlerts();
    return alerts.size() == 1 && alerts[0].deliveries_size() == 1 &&
           alerts[0].deliveries(0).status() == a::DELIVERY_STATUS_DELIVERED;
  }));
  cp_.reset();
  Start();
  EXPECT_EQ(*cp_->alerts().EvaluateOnce(), 0);
  std::vector<a::Alert> alerts = ListAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].state(), a::ALERT_STATE_FIRING);
  ASSERT_EQ(alerts[0].deliveries_size(), 1);
  EXPECT_EQ(alerts[0].deliveries(0).status(), a::DELIVERY_STATUS_DELIVERED);
  EXPECT_EQ(receiver.requests().size(), 1u);
}

// The real signals read the `usage` table: a quantile and an error rate over the window, of the
// rule's capability only, refused requests left out.
TEST_F(AlertEngineTest, LatencyAndErrorRateComeFromTheUsageLedger) {
  WebhookReceiver receiver;
  CreateWebhook(receiver.Url());
  const absl::Time now = absl::Now();
  google::protobuf::RepeatedPtrField<usage::v1::UsageRecord> batch;
  for (int i = 0; i < 100; ++i) {
    usage::v1::UsageRecord r = testing::Record(absl::StrCat("in-", i), now - absl::Seconds(30));
    r.set_latency_us(i < 85 ? 100000 : 900000);  // p80 100 ms, p90 900 ms
    if (i < 10) r.set_status("UNAVAILABLE");     // 10 % failed
    *batch.Add() = r;
  }
  for (int i = 0; i < 50; ++i) {
    // Outside the window, another capability, or refused: none of them count.
    usage::v1::UsageRecord old = testing::Record(absl::StrCat("old-", i), now - absl::Minutes(10));
    old.set_latency_us(9000000);
    old.set_status("INTERNAL");
    *batch.Add() = old;
    usage::v1::UsageRecord other =
        testing::Record(absl::StrCat("other-", i), now - absl::Seconds(30), "chat");
    other.set_latency_us(9000000);
    other.set_status("INTERNAL");
    *batch.Add() = other;
    usage::v1::UsageRecord refused =
        testing::Record(absl::StrCat("refused-", i), now - absl::Seconds(30));
    refused.set_refused(true);
    refused.set_status("RESOURCE_EXHAUSTED");
    refused.set_latency_us(9000000);
    *batch.Add() = refused;
  }
  ASSERT_TRUE(cp_->ledger().Ingest(batch).ok());

  auto rule = [](const std::string& name, a::AlertKind kind, double quantile, double threshold) {
    a::AlertRule r;
    r.set_name(name);
    r.set_kind(kind);
    r.set_capability("summaries");
    r.set_quantile(quantile);
    r.set_threshold(threshold);
    r.mutable_window()->set_seconds(300);
    r.set_min_requests(100);
    r.add_channels("ops");
    return r;
  };
  CreateRule(rule("p90-high", a::ALERT_KIND_LATENCY, 0.9, 500));
  CreateRule(rule("p80-fine", a::ALERT_KIND_LATENCY, 0.8, 500));
  CreateRule(rule("errors-9", a::ALERT_KIND_ERROR_RATE, 0, 9));
  CreateRule(rule("errors-11", a::ALERT_KIND_ERROR_RATE, 0, 11));
  EXPECT_EQ(*cp_->alerts().EvaluateOnce(), 2);
  std::map<std::string, a::Alert> by_rule;
  for (const a::Alert& alert : ListAlerts()) by_rule[alert.rule()] = alert;
  ASSERT_EQ(by_rule.size(), 2u);
  EXPECT_EQ(by_rule["p90-high"].state(), a::ALERT_STATE_FIRING);
  EXPECT_DOUBLE_EQ(by_rule["p90-high"].value(), 900);
  EXPECT_EQ(by_rule["errors-9"].state(), a::ALERT_STATE_FIRING);
  EXPECT_DOUBLE_EQ(by_rule["errors-9"].value(), 10);
  ASSERT_TRUE(WaitFor([&] { return receiver.delivered() == 2; }));
}

TEST_F(AlertEngineTest, EachAlertRpcHasItsRole) {
  a::AlertRule rule;
  rule.set_name("nacks");
  rule.set_kind(a::ALERT_KIND_SNAPSHOT_NACK);
  {
    grpc::ClientContext ctx;
    a::CreateAlertRuleRequest req;
    *req.mutable_rule() = rule;
    a::CreateAlertRuleResponse resp;
    EXPECT_EQ(Stub("viewer")->CreateAlertRule(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    a::CreateAlertChannelRequest req;
    req.mutable_channel()->set_name("ops");
    req.mutable_channel()->set_kind(a::CHANNEL_KIND_WEBHOOK);
    req.mutable_channel()->set_url("https://example.com/x");
    a::CreateAlertChannelResponse resp;
    EXPECT_EQ(Stub("operator")->CreateAlertChannel(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    a::ListAlertChannelsResponse resp;
    EXPECT_EQ(Stub("operator")->ListAlertChannels(&ctx, {}, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    a::ListAlertsResponse resp;
    EXPECT_TRUE(Stub("viewer")->ListAlerts(&ctx, {}, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    a::ListAlertRulesResponse resp;
    EXPECT_TRUE(Stub("viewer")->ListAlertRules(&ctx, {}, &resp).ok());
  }
}

}  // namespace
}  // namespace turnpike::controlplane
