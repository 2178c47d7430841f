// AlertRules: validation with field paths, rule and channel CRUD, and channel secrets sealed at
// rest and never listed.
#include "controlplane/alerts/alert_rules.h"

#include <fstream>
#include <sstream>

#include "controlplane/migrations.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ViolatedFields;

constexpr char kSecretUrl[] = "https://hooks.example.com/services/T000/B000/SECRETPATH";

a::AlertRule Rule(const std::string& text) {
  a::AlertRule r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &r)) << text;
  return r;
}

class AlertRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Store::Options o;
    o.path = dir_.File("alerts.db");
    auto store = Store::Open(o, EmbeddedMigrations());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    box_ = *SecretBox::Create(*MasterKey::Parse(testing::kTestMasterKey));
    rules_ = std::make_unique<AlertRules>(*store_, *box_, clock_);
  }

  a::AlertChannel Channel(const std::string& name, a::ChannelKind kind, const std::string& url) {
    a::AlertChannel c;
    c.set_name(name);
    c.set_kind(kind);
    c.set_url(url);
    return c;
  }

  turnpike::testing::TempDir dir_;
  SimulatedClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<SecretBox> box_;
  std::unique_ptr<AlertRules> rules_;
};

TEST_F(AlertRulesTest, EachKindValidatesItsFields) {
  struct Case {
    std::string rule;
    std::string field;
  } cases[] = {
      {R"(name: "x")", "rule.kind"},
      {R"(name: "bad name" kind: ALERT_KIND_SNAPSHOT_NACK)", "rule.name"},
      {R"(name: "l" kind: ALERT_KIND_LATENCY window { seconds: 300 })", "rule.threshold"},
      {R"(name: "l" kind: ALERT_KIND_LATENCY threshold: 100)", "rule.window"},
      {R"(name: "l" kind: ALERT_KIND_LATENCY threshold: 100 window { seconds: 300 } quantile: 1.5)",
       "rule.quantile"},
      {R"(name: "e" kind: ALERT_KIND_ERROR_RATE threshold: 120 window { seconds: 300 })",
       "rule.threshold"},
      {R"(name: "e" kind: ALERT_KIND_ERROR_RATE threshold: 5 window { seconds: 300 } min_requests: -1)",
       "rule.min_requests"},
      {R"(name: "b" kind: ALERT_KIND_BUDGET_THRESHOLD budget_percents: 80)", "rule.budget"},
      {R"(name: "b" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m")", "rule.budget_percents"},
      {R"(name: "b" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m" budget_percents: [80, 80])",
       "rule.budget_percents[1]"},
      {R"(name: "b" kind: ALERT_KIND_BUDGET_THRESHOLD budget: "m" budget_percents: [0])",
       "rule.budget_percents[0]"},
      {R"(name: "s" kind: ALERT_KIND_GATEWAY_SILENT silent_after { seconds: 1 })",
       "rule.silent_after"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN window { seconds: 300 })", "rule.window"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN silent_after { seconds: 300 })",
       "rule.silent_after"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN for_duration { seconds: -1 })",
       "rule.for_duration"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN cooldown { seconds: 100000 })", "rule.cooldown"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN channels: ["a", "a"])", "rule.channels[1]"},
      {R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS threshold: 10)", "rule.window"},
      {R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS threshold: 10 window { seconds: 7200 })",
       "rule.window"},
      {R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS window { seconds: 300 })",
       "rule.threshold"},
      {R"(name: "r" kind: ALERT_KIND_RATE_LIMIT_REFUSALS threshold: 1 window { seconds: 300 }
          min_requests: 5)",
       "rule.min_requests"},
      {R"(name: "u" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG)", "rule.spool_records"},
      {R"(name: "u" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG spool_records: -1)", "rule.spool_records"},
      {R"(name: "u" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG spool_age { nanos: 1000 })",
       "rule.spool_age"},
      {R"(name: "u" kind: ALERT_KIND_USAGE_SPOOL_BACKLOG spool_records: 5 window { seconds: 60 })",
       "rule.window"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN spool_records: 5)", "rule.spool_records"},
      {R"(name: "c" kind: ALERT_KIND_CIRCUIT_OPEN spool_age { seconds: 60 })", "rule.spool_age"},
  };
  for (const Case& c : cases) {
    a::AlertRule r = Rule(c.rule);
    absl::Status s = AlertRules::ValidateRule(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.rule;
    EXPECT_THAT(ViolatedFields(s), Contains(c.field)) << c.rule << "\n" << s;
  }
}

TEST_F(AlertRulesTest, DefaultsAreFilledIn) {
  auto r = rules_->CreateRule(
      Rule(R"(name: "p99" kind: ALERT_KIND_LATENCY threshold: 2000 window { seconds: 300 })"),
      "test-admin");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->quantile(), 0.99);
  EXPECT_EQ(r->cooldown().seconds(), 300);
  auto s =
      rules_->CreateRule(Rule(R"(name: "quiet" kind: ALERT_KIND_GATEWAY_SILENT)"), "test-admin");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->silent_after().seconds(), 120);
}

TEST_F(AlertRulesTest, RuleCrud) {
  a::AlertRule r = Rule(R"(name: "nack" kind: ALERT_KIND_SNAPSHOT_NACK)");
  ASSERT_TRUE(rules_->CreateRule(r, "test-admin").ok());
  EXPECT_EQ(rules_->CreateRule(r, "test-admin").status().code(), absl::StatusCode::kAlreadyExists);
  r.set_description("changed");
  ASSERT_TRUE(rules_->UpdateRule(r, "test-admin").ok());
  auto list = rules_->ListRules();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].description(), "changed");
  a::AlertRule other = Rule(R"(name: "none" kind: ALERT_KIND_SNAPSHOT_NACK)");
  EXPECT_EQ(rules_->UpdateRule(other, "test-admin").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(rules_->DeleteRule("nack", "test-admin").ok());
  EXPECT_EQ(rules_->DeleteRule("nack", "test-admin").code(), absl::StatusCode::kNotFound);
}

TEST_F(AlertRulesTest, RuleMustNameExistingChannels) {
  a::AlertRule r = Rule(R"(name: "nack" kind: ALERT_KIND_SNAPSHOT_NACK channels: "ops")");
  absl::StatusOr<a::AlertRule> created = rules_->CreateRule(r, "test-admin");
  EXPECT_EQ(created.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(created.status()), Contains("rule.channels[0]"));
  ASSERT_TRUE(
      rules_->CreateChannel(Channel("ops", a::CHANNEL_KIND_SLACK, kSecretUrl), "test-admin").ok());
  ASSERT_TRUE(rules_->CreateRule(r, "test-admin").ok());
  // A channel in use cannot go.
  EXPECT_EQ(rules_->DeleteChannel("ops", "test-admin").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(rules_->DeleteRule("nack", "test-admin").ok());
  EXPECT_TRUE(rules_->DeleteChannel("ops", "test-admin").ok());
  EXPECT_EQ(rules_->DeleteChannel("ops", "test-admin").code(), absl::StatusCode::kNotFound);
}

TEST_F(AlertRulesTest, ChannelSecretsAreSealedAndNeverListed) {
  auto created =
      rules_->CreateChannel(Channel("ops", a::CHANNEL_KIND_SLACK, kSecretUrl), "test-admin");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->url(), "");
  EXPECT_EQ(created->url_redacted(), "https://hooks.example.com");
  EXPECT_FALSE(created->fingerprint().empty());
  a::AlertChannel pd;
  pd.set_name("pager");
  pd.set_kind(a::CHANNEL_KIND_PAGERDUTY);
  pd.set_routing_key("R0UTINGKEYSECRET");
  ASSERT_TRUE(rules_->CreateChannel(pd, "test-admin").ok());

  auto list = rules_->ListChannels(0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 2u);
  for (const a::AlertChannel& c : list->items) {
    EXPECT_THAT(c.DebugString(), Not(HasSubstr("SECRETPATH")));
    EXPECT_THAT(c.DebugString(), Not(HasSubstr("R0UTINGKEYSECRET")));
  }
  EXPECT_EQ(list->items[1].url_redacted(), "https://events.pagerduty.com");  // by name

  auto opened = rules_->OpenChannel("ops");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->url, kSecretUrl);
  auto pager = rules_->OpenChannel("pager");
  ASSERT_TRUE(pager.ok());
  EXPECT_EQ(pager->url, kPagerDutyEventsUrl);
  EXPECT_EQ(pager->routing_key, "R0UTINGKEYSECRET");

  // Not in the database file in clear.
  store_.reset();
  std::ifstream f(dir_.File("alerts.db"), std::ios::binary);
  std::stringstream bytes;
  bytes << f.rdbuf();
  EXPECT_THAT(bytes.str(), Not(HasSubstr("SECRETPATH")));
  EXPECT_THAT(bytes.str(), Not(HasSubstr("R0UTINGKEYSECRET")));
}

TEST_F(AlertRulesTest, ChannelValidationNeverEchoesTheUrl) {
  struct Case {
    a::AlertChannel channel;
    std::string field;
  } cases[] = {
      {Channel("a", a::CHANNEL_KIND_UNSPECIFIED, kSecretUrl), "channel.kind"},
      {Channel("a", a::CHANNEL_KIND_WEBHOOK, "ftp://SECRETPATH"), "channel.url"},
      {Channel("a", a::CHANNEL_KIND_WEBHOOK, "https://SECRET PATH"), "channel.url"},
      {Channel("a", a::CHANNEL_KIND_WEBHOOK, "https:///SECRETPATH"), "channel.url"},
      {Channel("a", a::CHANNEL_KIND_WEBHOOK, ""), "channel.url"},
      {Channel("a", a::CHANNEL_KIND_PAGERDUTY, ""), "channel.routing_key"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<a::AlertChannel> s = rules_->CreateChannel(c.channel, "test-admin");
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(s.status()), Contains(c.field)) << s.status();
    EXPECT_THAT(s.status().ToString(), Not(HasSubstr("SECRET")));
  }
  ASSERT_TRUE(
      rules_->CreateChannel(Channel("a", a::CHANNEL_KIND_WEBHOOK, kSecretUrl), "test-admin").ok());
  EXPECT_EQ(rules_->CreateChannel(Channel("a", a::CHANNEL_KIND_WEBHOOK, kSecretUrl), "test-admin")
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace turnpike::controlplane
