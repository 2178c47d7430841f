// The alert admin API as an admin sees it: every rule and channel change made through it is one
// chained admin change naming the authenticated actor and the action, without a channel's URL or
// routing key (refused calls add nothing, and the chain still verifies); and the three lists come
// in pages like every list of the admin API (same sizes and tokens, a foreign token refused).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/alert/v1/alert.grpc.pb.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace a = ::turnpike::alert::v1;
namespace au = ::turnpike::audit::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecretUrl[] = "https://hooks.example.com/services/T0/B0/SECRETPATH";
constexpr char kRoutingKey[] = "R0UTINGKEYSECRET";

class AlertAdminTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    alerts_ = a::AlertService::NewStub(Channel());
    audit_ = au::AuditService::NewStub(Channel());
    bootstrap_ = "bootstrap-" + admin_token_.substr(4, 8);
  }

  grpc::Status CreateChannel(const std::string& name, a::ChannelKind kind, const std::string& url,
                             const std::string& routing_key = "") {
    grpc::ClientContext ctx;
    a::CreateAlertChannelRequest req;
    req.mutable_channel()->set_name(name);
    req.mutable_channel()->set_kind(kind);
    req.mutable_channel()->set_url(url);
    req.mutable_channel()->set_routing_key(routing_key);
    a::CreateAlertChannelResponse resp;
    return alerts_->CreateAlertChannel(&ctx, req, &resp);
  }

  grpc::Status PutRule(const std::string& name, const std::string& channel, bool update = false) {
    grpc::ClientContext ctx;
    a::AlertRule rule;
    rule.set_name(name);
    rule.set_kind(a::ALERT_KIND_CIRCUIT_OPEN);
    if (!channel.empty()) rule.add_channels(channel);
    if (update) {
      a::UpdateAlertRuleRequest req;
      *req.mutable_rule() = rule;
      req.mutable_rule()->set_description("changed");
      a::UpdateAlertRuleResponse resp;
      return alerts_->UpdateAlertRule(&ctx, req, &resp);
    }
    a::CreateAlertRuleRequest req;
    *req.mutable_rule() = rule;
    a::CreateAlertRuleResponse resp;
    return alerts_->CreateAlertRule(&ctx, req, &resp);
  }

  std::vector<au::AdminChange> Changes() {
    grpc::ClientContext ctx;
    au::ListAdminChangesResponse response;
    grpc::Status s = audit_->ListAdminChanges(&ctx, au::ListAdminChangesRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {response.changes().begin(), response.changes().end()};
  }

  std::unique_ptr<a::AlertService::Stub> alerts_;
  std::unique_ptr<au::AuditService::Stub> audit_;
  std::string bootstrap_;
};

TEST_F(AlertAdminTest, EveryRuleAndChannelChangeIsOneChainedEntryWithoutSecrets) {
  // A viewer token, made first (its creation is the oldest entry, by "t").
  auto viewer = cp_->identities().CreateAdminToken("viewer", admin::v1::ADMIN_ROLE_VIEWER, "t");
  ASSERT_TRUE(viewer.ok());
  ASSERT_TRUE(CreateChannel("hook", a::CHANNEL_KIND_WEBHOOK, kSecretUrl).ok());
  ASSERT_TRUE(CreateChannel("pager", a::CHANNEL_KIND_PAGERDUTY, "", kRoutingKey).ok());
  ASSERT_TRUE(PutRule("breakers", "hook").ok());
  ASSERT_TRUE(PutRule("breakers", "pager", /*update=*/true).ok());
  // Refused calls add nothing: a name taken, no such rule, a channel still named by a rule, a
  // role too weak.
  EXPECT_EQ(PutRule("breakers", "hook").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(PutRule("nope", "", /*update=*/true).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    a::DeleteAlertChannelRequest req;
    req.set_name("pager");
    a::DeleteAlertChannelResponse resp;
    EXPECT_EQ(alerts_->DeleteAlertChannel(&ctx, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    auto as_viewer = a::AlertService::NewStub(ChannelWithToken(viewer->token()));
    grpc::ClientContext ctx;
    a::CreateAlertRuleRequest req;
    req.mutable_rule()->set_name("viewer-rule");
    req.mutable_rule()->set_kind(a::ALERT_KIND_SNAPSHOT_NACK);
    a::CreateAlertRuleResponse resp;
    EXPECT_EQ(as_viewer->CreateAlertRule(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  for (const auto& [method, name] : {std::pair{"rule", "breakers"}, std::pair{"channel", "hook"},
                                     std::pair{"channel", "pager"}}) {
    grpc::ClientContext ctx;
    grpc::Status s;
    if (std::string(method) == "rule") {
      a::DeleteAlertRuleRequest req;
      req.set_name(name);
      a::DeleteAlertRuleResponse resp;
      s = alerts_->DeleteAlertRule(&ctx, req, &resp);
    } else {
      a::DeleteAlertChannelRequest req;
      req.set_name(name);
      a::DeleteAlertChannelResponse resp;
      s = alerts_->DeleteAlertChannel(&ctx, req, &resp);
    }
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
  }

  const std::vector<au::AdminChange> changes = Changes();  // newest first
  std::vector<std::string> what;
  for (const au::AdminChange& c : changes) {
    what.push_back(
        absl::StrCat(c.actor(), " ", c.action(), " ", c.resource_type(), " ", c.resource_name()));
    EXPECT_TRUE(c.has_time());
  }
  EXPECT_THAT(what, ElementsAre(bootstrap_ + " DeleteAlertChannel alert_channel pager",
                                bootstrap_ + " DeleteAlertChannel alert_channel hook",
                                bootstrap_ + " DeleteAlertRule alert_rule breakers",
                                bootstrap_ + " UpdateAlertRule alert_rule breakers",
                                bootstrap_ + " CreateAlertRule alert_rule breakers",
                                bootstrap_ + " CreateAlertChannel alert_channel pager",
                                bootstrap_ + " CreateAlertChannel alert_channel hook",
                                "t CreateAdminToken admin_token viewer"));
  // What changed is in the entry: the rule before and after, the channel as listed.
  EXPECT_THAT(changes[3].before_json(), HasSubstr("\"hook\""));
  EXPECT_THAT(changes[3].after_json(), HasSubstr("\"pager\""));
  EXPECT_THAT(changes[3].after_json(), HasSubstr("changed"));
  EXPECT_TRUE(changes[2].after_json().empty());
  EXPECT_THAT(changes[6].after_json(), HasSubstr("https://hooks.example.com"));
  EXPECT_THAT(changes[0].before_json(), HasSubstr("CHANNEL_KIND_PAGERDUTY"));
  // Never a secret: not the URL's path, not the routing key, in either trail.
  std::string all;
  {
    grpc::ClientContext ctx;
    au::QueryAuditResponse response;
    ASSERT_TRUE(audit_->QueryAudit(&ctx, au::QueryAuditRequest(), &response).ok());
    all += response.DebugString();
  }
  {
    auto admin = admin::v1::AdminService::NewStub(Channel());
    grpc::ClientContext ctx;
    admin::v1::ListAuditEntriesResponse response;
    ASSERT_TRUE(
        admin->ListAuditEntries(&ctx, admin::v1::ListAuditEntriesRequest(), &response).ok());
    all += response.DebugString();
  }
  for (const auto& c : changes) all += c.DebugString();
  EXPECT_THAT(all, HasSubstr("alert_channel"));  // the dump is not empty
  EXPECT_THAT(all, Not(HasSubstr("SECRETPATH")));
  EXPECT_THAT(all, Not(HasSubstr(kRoutingKey)));

  ASSERT_TRUE(*cp_->audit().Checkpoint());
  grpc::ClientContext ctx;
  au::VerifyAuditResponse verdict;
  ASSERT_TRUE(audit_->VerifyAudit(&ctx, au::VerifyAuditRequest(), &verdict).ok());
  EXPECT_TRUE(verdict.intact()) << verdict.problem();
  EXPECT_EQ(verdict.size(), 8);
}

TEST_F(AlertAdminTest, TheListsComeInPages) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(CreateChannel(absl::StrCat("ch-", i), a::CHANNEL_KIND_SLACK, kSecretUrl).ok());
    ASSERT_TRUE(PutRule(absl::StrCat("rule-", i), "").ok());
  }
  // Five upstreams open on one gateway: five alerts of one rule (and of each of the others).
  cp_->registry().Connected("gw-1", "127.0.0.1:1", "test");
  config::v1::ReportHealthRequest report;
  report.set_node_id("gw-1");
  for (int i = 0; i < 5; ++i) {
    config::v1::UpstreamHealth* u = report.add_upstreams();
    u->set_provider("openai");
    u->set_model(absl::StrCat("m", i));
    u->set_breaker_state(config::v1::BREAKER_STATE_OPEN);
  }
  ASSERT_TRUE(cp_->registry().ReportedHealth(report).ok());
  ASSERT_TRUE(cp_->alerts().EvaluateOnce().ok());

  std::vector<std::string> rules, channels, alerts;
  std::vector<size_t> sizes;
  std::string token;
  do {
    grpc::ClientContext ctx;
    a::ListAlertRulesRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    a::ListAlertRulesResponse resp;
    ASSERT_TRUE(alerts_->ListAlertRules(&ctx, req, &resp).ok());
    for (const a::AlertRule& r : resp.rules()) rules.push_back(r.name());
    sizes.push_back(resp.rules_size());
    token = resp.next_page_token();
  } while (!token.empty());
  EXPECT_THAT(rules, ElementsAre("rule-0", "rule-1", "rule-2", "rule-3", "rule-4"));
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
  do {
    grpc::ClientContext ctx;
    a::ListAlertChannelsRequest req;
    req.set_page_size(3);
    req.set_page_token(token);
    a::ListAlertChannelsResponse resp;
    ASSERT_TRUE(alerts_->ListAlertChannels(&ctx, req, &resp).ok());
    for (const a::AlertChannel& c : resp.channels()) channels.push_back(c.name());
    token = resp.next_page_token();
  } while (!token.empty());
  EXPECT_THAT(channels, ElementsAre("ch-0", "ch-1", "ch-2", "ch-3", "ch-4"));
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    a::ListAlertsRequest req;
    req.set_rule("rule-3");
    req.add_states(a::ALERT_STATE_FIRING);
    req.set_page_size(2);
    req.set_page_token(token);
    a::ListAlertsResponse resp;
    ASSERT_TRUE(alerts_->ListAlerts(&ctx, req, &resp).ok());
    for (const a::Alert& alert : resp.alerts()) {
      alerts.push_back(absl::StrCat(alert.rule(), " ", alert.subject()));
    }
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_THAT(alerts, ElementsAre("rule-3 openai/m0", "rule-3 openai/m1", "rule-3 openai/m2",
                                  "rule-3 openai/m3", "rule-3 openai/m4"));
  EXPECT_EQ(pages, 3);
  {  // The default page holds them all (25 alerts, default 100).
    grpc::ClientContext ctx;
    a::ListAlertsResponse resp;
    ASSERT_TRUE(alerts_->ListAlerts(&ctx, a::ListAlertsRequest(), &resp).ok());
    EXPECT_EQ(resp.alerts_size(), 25);
    EXPECT_TRUE(resp.next_page_token().empty());
  }
  // A token not made by the API, and a negative size, are INVALID_ARGUMENT on every list.
  for (const std::string& bad : {std::string("not-a-token"), std::string()}) {
    const int size = bad.empty() ? -1 : 0;
    grpc::ClientContext c1, c2, c3;
    a::ListAlertRulesRequest r1;
    r1.set_page_token(bad);
    r1.set_page_size(size);
    a::ListAlertRulesResponse p1;
    EXPECT_EQ(alerts_->ListAlertRules(&c1, r1, &p1).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    a::ListAlertChannelsRequest r2;
    r2.set_page_token(bad);
    r2.set_page_size(size);
    a::ListAlertChannelsResponse p2;
    EXPECT_EQ(alerts_->ListAlertChannels(&c2, r2, &p2).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    a::ListAlertsRequest r3;
    r3.set_page_token(bad);
    r3.set_page_size(size);
    a::ListAlertsResponse p3;
    EXPECT_EQ(alerts_->ListAlerts(&c3, r3, &p3).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

}  // namespace
}  // namespace turnpike::controlplane::testing
