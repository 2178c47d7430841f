// The alert rules over what gateways report, end to end with real processes: a gateway with a
// tiny rate limit refuses requests, its health reports carry the refusals, and the control plane's
// RATE_LIMIT_REFUSALS alert fires; a gateway whose records the control plane's ledger refuses
// keeps them in its spool, its health reports (a separate RPC, ReportHealth, which still
// succeeds) carry the backlog, and USAGE_SPOOL_BACKLOG fires for that gateway, then resolves once
// the ledger takes the records again. "Ingest down" is the control plane's `usage` table refusing
// inserts (a trigger the test adds to its database and removes): ReportUsage fails, nothing else.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/alert/v1/alert.grpc.pb.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

namespace a = ::turnpike::alert::v1;
using std::chrono::seconds;

class AlertSignalsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    control_ = std::make_unique<ControlPlane>(dir_, 0,
                                              std::vector<std::string>{"--alert_eval_interval=1s"});
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    auto channel = ControlChannel(control_->address(), control_->admin_token());
    admin_ = std::make_unique<Admin>(control_->address(), control_->admin_token());
    admin_stub_ = admin::v1::AdminService::NewStub(channel);
    alerts_ = a::AlertService::NewStub(channel);
    ASSERT_TRUE(admin_->SeedDemo(fake_->port(), "model-0").ok());
  }

  void StartGateway() {
    WatchSource source;
    source.control_plane = control_->address();
    source.node_id = "alert-gw";
    source.node_token_file = dir_.File("alert-gw.token");
    ASSERT_TRUE(admin_->WriteNodeToken("alert-gw", source.node_token_file).ok());
    gateway_ = std::make_unique<Gateway>(dir_, source,
                                         std::vector<std::string>{"--health_report_interval=1s"});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    client_ = std::make_unique<GatewayClient>(gateway_->address());
    ASSERT_TRUE(WaitFor([&] { return client_->Serves("model-0"); }, seconds(15)))
        << gateway_->process().Log();
  }

  void CreateRule(const a::AlertRule& rule) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a::CreateAlertRuleRequest req;
    *req.mutable_rule() = rule;
    a::CreateAlertRuleResponse resp;
    grpc::Status s = alerts_->CreateAlertRule(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Whether `rule`'s alert for `subject` is in `state`; `alert` is what ListAlerts showed.
  bool InState(const std::string& rule, const std::string& subject, a::AlertState state,
               a::Alert* alert) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    a::ListAlertsRequest req;
    req.set_rule(rule);
    a::ListAlertsResponse resp;
    if (!alerts_->ListAlerts(&ctx, req, &resp).ok()) return false;
    for (const a::Alert& listed : resp.alerts()) {
      if (listed.subject() == subject) *alert = listed;
    }
    return alert->subject() == subject && alert->state() == state;
  }

  // Runs `sql` on the control plane's database (another connection, as an operator would).
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir_.File("turnpike.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "") << "\n" << sql;
    sqlite3_free(err);
    sqlite3_close(db);
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_stub_;
  std::unique_ptr<a::AlertService::Stub> alerts_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<GatewayClient> client_;
};

TEST_F(AlertSignalsE2eTest, ATinyRateLimitRefusingFiresTheRefusalsAlert) {
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateRateLimitRequest req;
    config::v1::RateLimit* spec = req.mutable_rate_limit()->mutable_spec();
    spec->set_name("tiny");
    spec->set_capability(kCapability);
    spec->set_requests_per_minute(2);
    spec->set_key(config::v1::RATE_LIMIT_KEY_SHARED);
    admin::v1::CreateRateLimitResponse resp;
    grpc::Status s = admin_stub_->CreateRateLimit(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  a::AlertRule rule;
  rule.set_name("refusals");
  rule.set_kind(a::ALERT_KIND_RATE_LIMIT_REFUSALS);
  rule.set_threshold(1);  // more than one refusal a minute
  rule.mutable_window()->set_seconds(60);
  CreateRule(rule);
  StartGateway();

  // Requests until the limit has refused at least five (2 a minute are admitted).
  int refused = 0;
  for (int i = 0; i < 40 && refused < 5; ++i) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CompleteResponse response;
    const grpc::Status s = client_->completion().Complete(
        &ctx, DemoRequest<v1::CompleteRequest>(absl::StrCat("ask ", i)), &response);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
  }
  ASSERT_GE(refused, 5) << gateway_->process().Log();

  a::Alert alert;
  ASSERT_TRUE(WaitFor(
      [&] { return InState("refusals", kCapability, a::ALERT_STATE_FIRING, &alert); }, seconds(30)))
      << alert.DebugString() << "\n"
      << control_->process().Log();
  EXPECT_GE(alert.value(), 5.0) << alert.DebugString();  // per minute, over a 1-minute window
  EXPECT_NE(alert.summary().find("on 1 gateway(s)"), std::string::npos) << alert.summary();
}

TEST_F(AlertSignalsE2eTest, ASpoolBackingUpWhileTheLedgerRefusesFiresThenResolves) {
  // By records (more than 3 pending), and by age (a record waiting over 2 s, which only a refusing
  // ledger makes happen: the shipper sends a sealed segment within a second).
  a::AlertRule rule;
  rule.set_name("backlog");
  rule.set_kind(a::ALERT_KIND_USAGE_SPOOL_BACKLOG);
  rule.set_spool_records(3);
  CreateRule(rule);
  rule.set_name("backlog-age");
  rule.set_spool_records(0);
  rule.mutable_spool_age()->set_seconds(2);
  CreateRule(rule);
  StartGateway();
  // The readiness probes' records are in the ledger first, so the spool then holds ours (and at
  // most a probe's record the recorder had not spooled yet).
  auto shipped = [&] {
    const std::string page = gateway_->Metrics();
    return MetricValue(page, "turnpike_usage_records_shipped_total") ==
           MetricValue(page, "turnpike_usage_records_spooled_total");
  };
  ASSERT_TRUE(WaitFor(shipped, seconds(30))) << gateway_->Metrics();
  Sql("CREATE TRIGGER test_refuse_usage BEFORE INSERT ON usage "
      "BEGIN SELECT RAISE(ABORT, 'usage ingest down (test)'); END;");

  for (int i = 0; i < 6; ++i) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CompleteResponse response;
    const grpc::Status s = client_->completion().Complete(
        &ctx, DemoRequest<v1::CompleteRequest>(absl::StrCat("spool ", i)), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  for (const char* name : {"backlog", "backlog-age"}) {
    a::Alert alert;
    EXPECT_TRUE(WaitFor(
        [&] {
          return InState(name, "alert-gw", a::ALERT_STATE_FIRING, &alert) && alert.value() >= 6;
        },
        seconds(30)))
        << alert.DebugString() << "\n"
        << gateway_->process().Log();
    EXPECT_NE(alert.summary().find("record(s) ("), std::string::npos) << alert.summary();
  }

  // The ledger takes records again: the spool drains (the shipper retries within 10 s) and the
  // alerts resolve.
  Sql("DROP TRIGGER test_refuse_usage;");
  for (const char* name : {"backlog", "backlog-age"}) {
    a::Alert alert;
    EXPECT_TRUE(WaitFor([&] { return InState(name, "alert-gw", a::ALERT_STATE_RESOLVED, &alert); },
                        seconds(60)))
        << alert.DebugString() << "\n"
        << gateway_->process().Log();
  }
  EXPECT_TRUE(WaitFor(shipped, seconds(30))) << gateway_->Metrics();
}

}  // namespace
}  // namespace turnpike::testing
