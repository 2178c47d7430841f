// The dashboard's JSON endpoints (controlplane/dashboard/dashboard.h) against a real in-process
// control plane: refused without a valid token as the gRPC methods are, the same answer as the
// gRPC method for a known ledger, bad parameters refused, the static files served; and the same
// through MetricsHttpServer over real HTTP (the Authorization header and the query string).
#include "controlplane/dashboard/dashboard.h"

#include <curl/curl.h>

#include "common/metrics_http_server.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "tests/controlplane/usage_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

namespace b = ::turnpike::budget::v1;

class DashboardTest : public ControlPlaneFixture {
 protected:
  Dashboard MakeDashboard() {
    return Dashboard({cp_->budget_service(), cp_->usage_service(), cp_->alert_service(),
                      cp_->admin_service(), cp_->authenticator()});
  }

  HttpReply Get(const std::string& path, std::vector<std::pair<std::string, std::string>> query,
                std::optional<std::string> token) {
    HttpGet get;
    get.path = path;
    get.query = std::move(query);
    if (token.has_value()) get.authorization = "Bearer " + *token;
    std::optional<HttpReply> reply = MakeDashboard().Handle(get);
    EXPECT_TRUE(reply.has_value()) << path;
    return reply.value_or(HttpReply{});
  }

  // Four records on 2026-12-01 with known costs.
  void SeedLedger() {
    google::protobuf::RepeatedPtrField<u::UsageRecord> batch;
    *batch.Add() = Record("r1", Utc(2026, 12, 1, 9, 5), "summaries", "gpt-4o-mini", "openai",
                          "billing", 100, 20, 1500);
    *batch.Add() = Record("r2", Utc(2026, 12, 1, 9, 40), "summaries", "gpt-4o", "openai", "billing",
                          200, 40, 123457);
    *batch.Add() = Record("r3", Utc(2026, 12, 1, 11, 0), "triage", "gpt-4o-mini", "openai",
                          "billing", 10, 2, 7);
    *batch.Add() = Record("r4", Utc(2026, 12, 2, 0, 0), "triage", "gpt-4o-mini", "openai",
                          "billing", 10, 2, 1000000);  // outside the range asked for
    auto r = cp_->ledger().Ingest(batch);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  static std::vector<std::pair<std::string, std::string>> DayByCapability() {
    return {{"start_time", "2026-12-01T00:00:00Z"},
            {"end_time", "2026-12-02T00:00:00Z"},
            {"granularity", "GRANULARITY_HOUR"},
            {"group_by", "GROUP_BY_CAPABILITY"}};
  }
};

bool HasHeader(const HttpReply& r, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : r.headers) {
    if (n == name && v == value) return true;
  }
  return false;
}

TEST_F(DashboardTest, EndpointsRefuseWithoutAValidTokenAsTheGrpcMethodsDo) {
  for (const char* endpoint : {"budgets", "spend", "alerts", "dataplanes"}) {
    const std::string path = std::string("/dashboard/api/") + endpoint;
    HttpReply none = Get(path, {}, std::nullopt);
    EXPECT_EQ(none.status, 401) << path << ": " << none.body;
    EXPECT_TRUE(HasHeader(none, "WWW-Authenticate", "Bearer")) << path;
    EXPECT_NE(none.body.find("\"code\":\"UNAUTHENTICATED\""), std::string::npos) << none.body;
    HttpReply wrong = Get(path, {}, "tpa_not-a-real-token");
    EXPECT_EQ(wrong.status, 401) << path << ": " << wrong.body;
    EXPECT_EQ(wrong.body.find("tpa_not-a-real-token"), std::string::npos) << wrong.body;
    // A gateway's node token is not an admin token.
    HttpReply node = Get(path, {}, NodeToken("gw-1"));
    EXPECT_EQ(node.status, 403) << path << ": " << node.body;
  }
  // A viewer may read them all, as through gRPC.
  auto viewer = cp_->identities().CreateAdminToken("finance", admin::v1::ADMIN_ROLE_VIEWER, "t");
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  EXPECT_EQ(Get("/dashboard/api/budgets", {}, viewer->token()).status, 200);
  EXPECT_EQ(Get("/dashboard/api/spend", DayByCapability(), viewer->token()).status, 200);
  EXPECT_EQ(Get("/dashboard/api/dataplanes", {}, viewer->token()).status, 200);
}

TEST_F(DashboardTest, SpendIsTheQuerySpendAnswerInProtoJson) {
  SeedLedger();
  HttpReply reply = Get("/dashboard/api/spend", DayByCapability(), admin_token_);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.content_type, "application/json; charset=utf-8");
  u::QuerySpendResponse from_http;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(reply.body, &from_http).ok())
      << reply.body;
  // The gRPC method's own answer for the same request.
  u::QuerySpendRequest q;
  *q.mutable_start_time() = Ts(Utc(2026, 12, 1));
  *q.mutable_end_time() = Ts(Utc(2026, 12, 2));
  q.set_granularity(u::GRANULARITY_HOUR);
  q.add_group_by(u::GROUP_BY_CAPABILITY);
  u::QuerySpendResponse direct;
  grpc::ServerContext ctx;
  ASSERT_TRUE(cp_->usage_service().QuerySpend(&ctx, &q, &direct).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(from_http, direct))
      << from_http.DebugString() << "\nvs\n"
      << direct.DebugString();
  // And the known ledger: 09:00 summaries 1500 + 123457 in 2 requests, 11:00 triage 7.
  ASSERT_EQ(from_http.rows_size(), 2) << reply.body;
  EXPECT_EQ(from_http.rows(0).capability(), "summaries");
  EXPECT_EQ(from_http.rows(0).cost_usd_micros(), 124957);
  EXPECT_EQ(from_http.rows(0).requests(), 2);
  EXPECT_EQ(from_http.rows(1).capability(), "triage");
  EXPECT_EQ(from_http.rows(1).cost_usd_micros(), 7);
  // int64 as decimal strings, field names as grpcurl prints them.
  EXPECT_NE(reply.body.find("\"costUsdMicros\":\"124957\""), std::string::npos) << reply.body;
}

TEST_F(DashboardTest, BudgetsShowLimitSpentReservedAndRemaining) {
  admin::v1::Budget bud;
  bud.mutable_spec()->set_name("summaries-daily");
  bud.mutable_spec()->set_capability("summaries");
  bud.mutable_spec()->set_limit_usd_micros(50000000);
  bud.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_DAILY);
  ASSERT_TRUE(cp_->admin().CreateResource(bud, "test").ok());
  b::AcquireLeaseRequest ask;
  ask.set_node_id("gw-a");
  ask.mutable_quota()->set_budget("summaries-daily");
  ask.set_requested(5000000);
  auto lease = cp_->leases().Acquire(ask);
  ASSERT_TRUE(lease.ok()) << lease.status();
  b::AcquireLeaseRequest renew;
  renew.set_node_id("gw-a");
  renew.set_lease_id(lease->lease_id());
  renew.set_spent(1234567);
  ASSERT_TRUE(cp_->leases().Acquire(renew).ok());

  HttpReply reply = Get("/dashboard/api/budgets", {{"page_size", "1000"}}, admin_token_);
  ASSERT_EQ(reply.status, 200) << reply.body;
  b::ListBudgetsResponse budgets;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(reply.body, &budgets).ok());
  ASSERT_EQ(budgets.budgets_size(), 1) << reply.body;
  const b::BudgetStatus& s = budgets.budgets(0);
  EXPECT_EQ(s.name(), "summaries-daily");
  EXPECT_EQ(s.limit_usd_micros(), 50000000);
  EXPECT_EQ(s.spent_usd_micros(), 1234567);
  EXPECT_EQ(s.leased_usd_micros(), 5000000 - 1234567);
  EXPECT_EQ(s.remaining_usd_micros(), 50000000 - 5000000);
  EXPECT_TRUE(s.has_window_start() && s.has_window_end());
}

TEST_F(DashboardTest, BadParametersAreRefusedNamingThem) {
  HttpReply unknown = Get("/dashboard/api/budgets", {{"bogus", "1"}}, admin_token_);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("bogus"), std::string::npos) << unknown.body;
  HttpReply twice =
      Get("/dashboard/api/budgets", {{"page_size", "1"}, {"page_size", "2"}}, admin_token_);
  EXPECT_EQ(twice.status, 400) << twice.body;
  HttpReply bad_enum = Get("/dashboard/api/spend",
                           {{"start_time", "2026-12-01T00:00:00Z"},
                            {"end_time", "2026-12-02T00:00:00Z"},
                            {"group_by", "GROUP_BY_NOTHING"}},
                           admin_token_);
  EXPECT_EQ(bad_enum.status, 400) << bad_enum.body;
  // The method's own validation: the range must be on hour boundaries.
  HttpReply unaligned = Get(
      "/dashboard/api/spend",
      {{"start_time", "2026-12-01T00:30:00Z"}, {"end_time", "2026-12-02T00:00:00Z"}}, admin_token_);
  EXPECT_EQ(unaligned.status, 400) << unaligned.body;
  EXPECT_NE(unaligned.body.find("INVALID_ARGUMENT"), std::string::npos) << unaligned.body;
  EXPECT_EQ(Get("/dashboard/api/nothing", {}, admin_token_).status, 404);
}

TEST_F(DashboardTest, ServesTheEmbeddedPageWithoutAToken) {
  const Dashboard dashboard = MakeDashboard();
  for (const char* path : {"/dashboard", "/dashboard/"}) {
    std::optional<HttpReply> page = dashboard.Handle(HttpGet{path, {}, std::nullopt});
    ASSERT_TRUE(page.has_value()) << path;
    EXPECT_EQ(page->status, 200);
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_NE(page->body.find("/dashboard/dashboard.js"), std::string::npos);
    bool csp = false;
    for (const auto& [n, v] : page->headers) csp |= n == "Content-Security-Policy";
    EXPECT_TRUE(csp);
  }
  std::optional<HttpReply> js = dashboard.Handle(HttpGet{"/dashboard/dashboard.js", {}, {}});
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("/dashboard/api/"), std::string::npos);
  EXPECT_FALSE(dashboard.Handle(HttpGet{"/dashboard/nothing.js", {}, {}}).has_value());
  EXPECT_FALSE(dashboard.Handle(HttpGet{"/elsewhere", {}, {}}).has_value());
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

long CurlGet(const std::string& url, const std::string& token, std::string* body) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
  curl_slist* headers = nullptr;
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return status;
}

TEST_F(DashboardTest, OverHttpBesideMetrics) {
  SeedLedger();
  MetricsRegistry registry;
  const Dashboard dashboard = MakeDashboard();
  auto server = MetricsHttpServer::Start("127.0.0.1:0", registry, nullptr,
                                         [&](const HttpGet& get) { return dashboard.Handle(get); });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  const std::string spend =
      base +
      "/dashboard/api/spend?start_time=2026-12-01T00%3A00%3A00Z&end_time=2026-12-02T00:00:00Z"
      "&granularity=GRANULARITY_HOUR&group_by=GROUP_BY_CAPABILITY&group_by=GROUP_BY_MODEL";
  std::string body;
  EXPECT_EQ(CurlGet(spend, "", &body), 401) << body;
  body.clear();
  ASSERT_EQ(CurlGet(spend, admin_token_, &body), 200) << body;
  u::QuerySpendResponse answer;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &answer).ok()) << body;
  ASSERT_EQ(answer.rows_size(), 3) << body;  // summaries/gpt-4o, summaries/gpt-4o-mini, triage
  int64_t total = 0;
  for (const u::SpendRow& row : answer.rows()) total += row.cost_usd_micros();
  EXPECT_EQ(total, 1500 + 123457 + 7);
  body.clear();
  EXPECT_EQ(CurlGet(base + "/dashboard", "", &body), 200);
  EXPECT_NE(body.find("<title>"), std::string::npos);
  body.clear();
  EXPECT_EQ(CurlGet(base + "/metrics", "", &body), 200);
  body.clear();
  EXPECT_EQ(CurlGet(base + "/nowhere", "", &body), 404);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
