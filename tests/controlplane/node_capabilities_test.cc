// Nodes restricted to capabilities (docs/security.md), end to end against a real control plane
// (real gRPC on loopback, real SQLite): CreateNodeToken validates the restriction, lists and
// audits it; a Watch stream with a restricted token receives only its routes (and the routes its
// budgets degrade to) and not one byte of another provider's key, including after a change; its
// leases of another capability's budget or rate limit are refused PERMISSION_DENIED naming the
// capability, while its own, and limits of every capability, are granted. The view is one the
// gateway's RuntimeConfig::Build accepts.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/runtime_config.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "tests/server/config/test_resilience.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace a = ::turnpike::admin::v1;
namespace b = ::turnpike::budget::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// One canary secret per provider, so a leak names the provider it came from.
std::string CanaryOf(const std::string& provider) {
  return absl::StrCat("sk-CANARY-", provider, "-9d41e07b");
}

class NodeCapabilitiesTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    admin_ = a::AdminService::NewStub(Channel());
    // claims -> p-claims (budget degrades to claims-cheap -> p-cheap); hr -> p-hr.
    for (const char* p : {"p-claims", "p-cheap", "p-hr"}) AddProvider(p);
    for (auto [cap, p] : {std::pair{"claims", "p-claims"}, std::pair{"claims-cheap", "p-cheap"},
                          std::pair{"hr", "p-hr"}}) {
      ASSERT_TRUE(cp_->admin().CreateResource(MakeRoute(cap, p), "t").ok());
    }
    AddBudget("claims-daily", "claims", "claims-cheap");
    AddBudget("cheap-daily", "claims-cheap", "");
    AddBudget("hr-daily", "hr", "");
    AddLimit("everything", "");
    AddLimit("hr-rpm", "hr");
  }

  void AddProvider(const std::string& name) {
    ASSERT_TRUE(
        cp_->admin().CreateCredential(MakeCredential("cred-" + name, CanaryOf(name)), "t").ok());
    ASSERT_TRUE(cp_->admin().CreateResource(MakeProvider(name, "cred-" + name), "t").ok());
  }
  void AddBudget(const std::string& name, const std::string& cap, const std::string& degrade_to) {
    a::Budget budget;
    budget.mutable_spec()->set_name(name);
    budget.mutable_spec()->set_capability(cap);
    budget.mutable_spec()->set_limit_usd_micros(1000);
    budget.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_DAILY);
    if (!degrade_to.empty()) {
      budget.mutable_spec()->set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE);
      budget.mutable_spec()->set_degrade_to(degrade_to);
    }
    auto made = cp_->admin().CreateResource(budget, "t");
    ASSERT_TRUE(made.ok()) << made.status();
  }
  void AddLimit(const std::string& name, const std::string& cap) {
    a::RateLimit limit;
    limit.mutable_spec()->set_name(name);
    limit.mutable_spec()->set_capability(cap);
    limit.mutable_spec()->set_requests_per_minute(100);
    auto made = cp_->admin().CreateResource(limit, "t");
    ASSERT_TRUE(made.ok()) << made.status();
  }

  grpc::Status CreateToken(const std::string& name, const std::string& node,
                           const std::vector<std::string>& caps, a::CreateNodeTokenResponse* out) {
    grpc::ClientContext ctx;
    a::CreateNodeTokenRequest req;
    req.set_name(name);
    req.set_node_id(node);
    for (const std::string& c : caps) req.add_capabilities(c);
    return admin_->CreateNodeToken(&ctx, req, out);
  }

  grpc::Status Lease(const std::string& token, const std::string& node, const std::string& budget,
                     const std::string& rate_limit) {
    auto stub = b::BudgetService::NewStub(ChannelWithToken(token));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    b::AcquireLeaseRequest r;
    r.set_node_id(node);
    if (!budget.empty()) r.mutable_quota()->set_budget(budget);
    if (!rate_limit.empty()) {
      r.mutable_quota()->set_rate_limit(rate_limit);
      r.mutable_quota()->set_unit(b::QUOTA_UNIT_REQUESTS);
    }
    r.set_requested(10);
    b::AcquireLeaseResponse response;
    grpc::Status s = stub->AcquireLease(&ctx, r, &response);
    if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      EXPECT_THAT(s.error_details(), HasSubstr("CAPABILITY_NOT_ALLOWED"));  // the ErrorInfo reason
    }
    return s;
  }

  std::unique_ptr<a::AdminService::Stub> admin_;
};

TEST_F(NodeCapabilitiesTest, TheRestrictionIsValidatedListedAndAudited) {
  a::CreateNodeTokenResponse out;
  grpc::Status s = CreateToken("gw-x", "gw-x", {"claims", "nope"}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("\"nope\" names no route"));
  s = CreateToken("gw-x", "gw-x", {"claims", "claims"}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = CreateToken("gw-x", "gw-x", {"bad name"}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("capabilities[0]"));

  s = CreateToken("gw-claims", "gw-c", {"hr", "claims"}, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(out.node_token().capabilities(), ElementsAre("claims", "hr"));  // sorted
  grpc::ClientContext ctx;
  a::ListNodeTokensResponse list;
  ASSERT_TRUE(admin_->ListNodeTokens(&ctx, a::ListNodeTokensRequest(), &list).ok());
  ASSERT_EQ(list.node_tokens_size(), 1);
  EXPECT_THAT(list.node_tokens(0).capabilities(), ElementsAre("claims", "hr"));
  // Revocation keeps the row, restriction included, and the audit shows it on both changes.
  grpc::ClientContext rctx;
  a::RevokeNodeTokenRequest revoke;
  revoke.set_name("gw-claims");
  a::RevokeNodeTokenResponse revoked;
  ASSERT_TRUE(admin_->RevokeNodeToken(&rctx, revoke, &revoked).ok());
  EXPECT_THAT(revoked.node_token().capabilities(), ElementsAre("claims", "hr"));
  auto audit = audit::v1::AuditService::NewStub(Channel());
  grpc::ClientContext actx;
  audit::v1::ListAdminChangesResponse changes;
  ASSERT_TRUE(audit->ListAdminChanges(&actx, audit::v1::ListAdminChangesRequest(), &changes).ok());
  ASSERT_GE(changes.changes_size(), 2);
  EXPECT_EQ(changes.changes(0).action(), "RevokeNodeToken");
  EXPECT_THAT(changes.changes(0).before_json(), HasSubstr("\"hr\""));
  EXPECT_EQ(changes.changes(1).action(), "CreateNodeToken");
  EXPECT_THAT(changes.changes(1).after_json(), HasSubstr("\"claims\""));
}

TEST_F(NodeCapabilitiesTest, ARestrictedNodeWatchesOnlyItsRoutesAndNoOtherSecret) {
  a::CreateNodeTokenResponse token;
  grpc::Status s = CreateToken("gw-claims", "gw-c", {"claims"}, &token);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto stub = config::v1::ConfigDiscoveryService::NewStub(ChannelWithToken(token.token()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Watch(&ctx);
  config::v1::WatchRequest hello;
  hello.set_node_id("gw-c");
  ASSERT_TRUE(stream->Write(hello));
  config::v1::WatchResponse first;
  ASSERT_TRUE(stream->Read(&first));
  std::vector<std::string> routes, providers, budgets, limits;
  for (const auto& r : first.snapshot().routes()) routes.push_back(r.capability());
  for (const auto& p : first.snapshot().providers()) providers.push_back(p.name());
  for (const auto& x : first.snapshot().budgets()) budgets.push_back(x.name());
  for (const auto& l : first.snapshot().rate_limits()) limits.push_back(l.name());
  EXPECT_THAT(routes, ElementsAre("claims", "claims-cheap"));
  EXPECT_THAT(providers, ElementsAre("p-cheap", "p-claims"));
  EXPECT_THAT(budgets, ElementsAre("cheap-daily", "claims-daily"));
  EXPECT_THAT(limits, ElementsAre("everything"));
  // The gateway accepts the view as it is (its one check of every snapshot).
  auto built = RuntimeConfig::Build(
      first.snapshot(), [](const std::string&) { return std::nullopt; }, TestResilience());
  EXPECT_TRUE(built.ok()) << built.status();
  std::string received = first.SerializeAsString();
  EXPECT_THAT(received, HasSubstr(CanaryOf("p-claims")));
  EXPECT_THAT(received, HasSubstr(CanaryOf("p-cheap")));

  // A change elsewhere (a new provider and its key, used by hr) reaches the node as a new
  // version, still without any secret outside its capabilities.
  config::v1::WatchRequest ack;
  ack.set_node_id("gw-c");
  ack.set_version_info(first.version_info());
  ack.set_response_nonce(first.nonce());
  ASSERT_TRUE(stream->Write(ack));
  AddProvider("p-hr2");
  a::Route hr = MakeRoute("hr", "p-hr2");
  auto updated = cp_->admin().UpdateResource(hr, google::protobuf::FieldMask(), "t");
  ASSERT_TRUE(updated.ok()) << updated.status();
  config::v1::WatchResponse next;
  ASSERT_TRUE(stream->Read(&next));
  EXPECT_NE(next.version_info(), first.version_info());
  EXPECT_EQ(next.snapshot().providers_size(), 2);
  received += next.SerializeAsString();
  for (const char* other : {"p-hr", "p-hr2"}) {
    EXPECT_THAT(received, Not(HasSubstr(CanaryOf(other)))) << other;
  }
  ctx.TryCancel();
  stream->Finish();

  // An unrestricted node token still gets everything (the restriction is per token).
  auto all = config::v1::ConfigDiscoveryService::NewStub(NodeChannel("gw-all"));
  grpc::ClientContext actx;
  actx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto everything = all->Watch(&actx);
  hello.set_node_id("gw-all");
  ASSERT_TRUE(everything->Write(hello));
  config::v1::WatchResponse full;
  ASSERT_TRUE(everything->Read(&full));
  EXPECT_THAT(full.SerializeAsString(), HasSubstr(CanaryOf("p-hr2")));
  actx.TryCancel();
  everything->Finish();
}

TEST_F(NodeCapabilitiesTest, ARestrictedNodeCannotLeaseAnotherCapabilitysQuota) {
  a::CreateNodeTokenResponse token;
  ASSERT_TRUE(CreateToken("gw-claims", "gw-c", {"claims"}, &token).ok());
  const std::string t = token.token();
  grpc::Status s = Lease(t, "gw-c", "hr-daily", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("covers capability \"hr\""));
  s = Lease(t, "gw-c", "", "hr-rpm");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("covers capability \"hr\""));
  // Its own budget, the budget of the capability it degrades to, and a limit of every capability.
  s = Lease(t, "gw-c", "claims-daily", "");
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Lease(t, "gw-c", "cheap-daily", "");
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Lease(t, "gw-c", "", "everything");
  EXPECT_TRUE(s.ok()) << s.error_message();
  // An unrestricted node leases anything.
  s = Lease(NodeToken("gw-all"), "gw-all", "hr-daily", "");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace turnpike::controlplane::testing
