// Who may call what on the control plane (docs/security.md), against a real control plane over
// loopback gRPC: the access policy covers every method of every service the server registers
// (default deny); every method refuses no token, a malformed token, a revoked token and each
// principal its row does not allow, and lets through each one it does; node RPCs are bound to
// the token's node id; Watch without a node credential gets no snapshot and no secret byte; token
// lists and the database hold no token in clear.
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::turnpike::testing::WaitFor;

const google::protobuf::ServiceDescriptor* FindService(const std::string& name) {
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
}

std::string FullMethod(const google::protobuf::MethodDescriptor* m) {
  return "/" + m->service()->full_name() + "/" + m->name();
}

// One call with an empty request body through a generic stub; the gate answers before any
// handler reads the body.
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status;
}

class AccessTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    for (auto [name, role] : {std::pair{"viewer", admin::v1::ADMIN_ROLE_VIEWER},
                              std::pair{"operator", admin::v1::ADMIN_ROLE_OPERATOR},
                              std::pair{"admin", admin::v1::ADMIN_ROLE_ADMIN},
                              std::pair{"auditor", admin::v1::ADMIN_ROLE_AUDITOR}}) {
      auto t = cp_->identities().CreateAdminToken(name, role, "test");
      ASSERT_TRUE(t.ok()) << t.status();
      tokens_[name] = t->token();
    }
    tokens_["node"] = NodeToken("gw-a");
  }

  std::map<std::string, std::string> tokens_;  // principal name -> token
};

// Default deny needs a row for every method: a new RPC without one fails here, not in production.
TEST_F(AccessTest, PolicyCoversEveryMethodOfEveryRegisteredService) {
  const std::vector<std::string>& services = cp_->service_names();
  ASSERT_THAT(services,
              ::testing::IsSupersetOf({"turnpike.admin.v1.AdminService",
                                       "turnpike.config.v1.ConfigDiscoveryService",
                                       "turnpike.usage.v1.UsageService", "grpc.health.v1.Health"}));
  // The budget service is being added by other work; its rows are in the table already.
  std::vector<std::string> walk = services;
  (void)budget::v1::GetBudgetRequest::descriptor();  // links budget.proto's descriptors in
  walk.push_back(budget::v1::BudgetService::service_full_name());
  int methods = 0;
  for (const std::string& name : walk) {
    const google::protobuf::ServiceDescriptor* service = FindService(name);
    if (service == nullptr && name.rfind("grpc.reflection.", 0) == 0) {
      // gRPC's own reflection descriptors are not in this binary's pool; check its one method.
      EXPECT_TRUE(AccessFor("/" + name + "/ServerReflectionInfo").has_value()) << name;
      continue;
    }
    ASSERT_NE(service, nullptr) << name << " is not in the generated descriptor pool";
    for (int i = 0; i < service->method_count(); ++i, ++methods) {
      EXPECT_TRUE(AccessFor(FullMethod(service->method(i))).has_value())
          << FullMethod(service->method(i)) << " has no row in controlplane/access_policy.cc";
    }
  }
  EXPECT_GT(methods, 60);
  EXPECT_FALSE(AccessFor("/turnpike.admin.v1.AdminService/NoSuchMethod").has_value());
}

TEST_F(AccessTest, AMethodMissingFromThePolicyIsRefused) {
  grpc::Status s = Call(Channel(), "/turnpike.admin.v1.AdminService/NoSuchMethod");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("not in the control plane's access policy"));
}

// Every method of the admin, watch and usage services, with every kind of credential.
TEST_F(AccessTest, EveryMethodChecksItsCredential) {
  auto revoked = cp_->identities().CreateAdminToken("gone", admin::v1::ADMIN_ROLE_ADMIN, "test");
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(cp_->identities().RevokeAdminToken("gone", "test").ok());
  const std::map<std::string, Principal> principals = {{"viewer", Principal::kViewer},
                                                       {"operator", Principal::kOperator},
                                                       {"admin", Principal::kAdmin},
                                                       {"auditor", Principal::kAuditor},
                                                       {"node", Principal::kNode}};
  int checked = 0;
  for (const char* name :
       {"turnpike.admin.v1.AdminService", "turnpike.config.v1.ConfigDiscoveryService",
        "turnpike.usage.v1.UsageService", "turnpike.alert.v1.AlertService"}) {
    const google::protobuf::ServiceDescriptor* service = FindService(name);
    ASSERT_NE(service, nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      const std::string method = FullMethod(m);
      SCOPED_TRACE(method);
      const Access access = *AccessFor(method);
      EXPECT_EQ(Call(ChannelWithToken(""), method).error_code(), grpc::StatusCode::UNAUTHENTICATED);
      EXPECT_EQ(Call(ChannelWithToken("tpa_not-a-token"), method).error_code(),
                grpc::StatusCode::UNAUTHENTICATED);
      EXPECT_EQ(Call(ChannelWithToken(revoked->token()), method).error_code(),
                grpc::StatusCode::UNAUTHENTICATED);
      for (const auto& [who, principal] : principals) {
        grpc::Status s = Call(ChannelWithToken(tokens_.at(who)), method);
        if (!access.Allows(principal)) {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
          EXPECT_THAT(s.error_message(), HasSubstr("needs role " + std::string(access.needed)));
        } else if (!m->client_streaming() && !m->server_streaming()) {
          // Past the gate: whatever the empty request earns, it is not an auth refusal.
          EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << who;
          EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
              << who << ": " << s.error_message();
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 250);
  EXPECT_GT(cp_->authenticator().counts().missing, 0u);
}

TEST_F(AccessTest, RolesAreWhatTheDocsSay) {
  auto can = [](const char* method, Principal p) {
    return AccessFor(std::string("/turnpike.admin.v1.AdminService/") + method)->Allows(p);
  };
  EXPECT_TRUE(can("ListRoutes", Principal::kViewer));
  EXPECT_FALSE(can("CreateRoute", Principal::kViewer));
  EXPECT_TRUE(can("CreateRoute", Principal::kOperator));
  EXPECT_TRUE(can("CreateCallerKey", Principal::kOperator));
  EXPECT_FALSE(can("CreateCredential", Principal::kOperator));
  EXPECT_FALSE(can("CreateAdminToken", Principal::kOperator));
  EXPECT_TRUE(can("RotateCredential", Principal::kAdmin));
  EXPECT_TRUE(can("ListAuditEntries", Principal::kAuditor));
  EXPECT_FALSE(can("ListAuditEntries", Principal::kOperator));
  EXPECT_FALSE(can("ListRoutes", Principal::kAuditor));
  EXPECT_FALSE(can("ListRoutes", Principal::kNode));
  auto usage = [](const char* method, Principal p) {
    return AccessFor(std::string("/turnpike.usage.v1.UsageService/") + method)->Allows(p);
  };
  EXPECT_TRUE(usage("QuerySpend", Principal::kViewer));
  EXPECT_TRUE(usage("QuerySpend", Principal::kAuditor));
  EXPECT_FALSE(usage("ListUsage", Principal::kViewer));
  EXPECT_TRUE(usage("ListUsage", Principal::kAuditor));
  EXPECT_TRUE(usage("ListUsage", Principal::kOperator));
  EXPECT_TRUE(usage("ReportUsage", Principal::kNode));
  EXPECT_FALSE(usage("ReportUsage", Principal::kAdmin));
  auto alert = [](const char* method, Principal p) {
    return AccessFor(std::string("/turnpike.alert.v1.AlertService/") + method)->Allows(p);
  };
  EXPECT_TRUE(alert("ListAlerts", Principal::kViewer));
  EXPECT_TRUE(alert("ListAlertRules", Principal::kViewer));
  EXPECT_FALSE(alert("CreateAlertRule", Principal::kViewer));
  EXPECT_TRUE(alert("CreateAlertRule", Principal::kOperator));
  EXPECT_FALSE(alert("CreateAlertChannel", Principal::kOperator));
  EXPECT_FALSE(alert("ListAlertChannels", Principal::kOperator));
  EXPECT_TRUE(alert("CreateAlertChannel", Principal::kAdmin));
  EXPECT_FALSE(alert("ListAlerts", Principal::kNode));
}

// Reads a watch stream to its end: the snapshots it got and how it ended.
grpc::Status WatchAs(const std::shared_ptr<grpc::Channel>& channel, const std::string& node,
                     std::string* received) {
  auto stub = config::v1::ConfigDiscoveryService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Watch(&ctx);
  config::v1::WatchRequest hello;
  hello.set_node_id(node);
  stream->Write(hello);
  stream->WritesDone();
  config::v1::WatchResponse r;
  while (stream->Read(&r)) *received += r.SerializeAsString();
  return stream->Finish();
}

TEST_F(AccessTest, WatchWithoutANodeCredentialGetsNoSnapshotAndNoSecret) {
  ASSERT_TRUE(cp_->admin().CreateCredential(MakeCredential("k", kCanarySecret), "t").ok());
  ASSERT_TRUE(cp_->admin().CreateResource(MakeProvider("p", "k"), "t").ok());
  struct Case {
    std::string token;
    std::string node;
    grpc::StatusCode code;
  };
  auto revoked = cp_->identities().CreateNodeToken("old-b", "gw-b", {}, "test");
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(cp_->identities().RevokeNodeToken("old-b", "test").ok());
  for (const Case& c : {Case{"", "gw-a", grpc::StatusCode::UNAUTHENTICATED},
                        Case{"tpn_garbage", "gw-a", grpc::StatusCode::UNAUTHENTICATED},
                        Case{revoked->token(), "gw-b", grpc::StatusCode::UNAUTHENTICATED},
                        Case{tokens_["admin"], "gw-a", grpc::StatusCode::PERMISSION_DENIED},
                        Case{tokens_["node"], "gw-b", grpc::StatusCode::PERMISSION_DENIED}}) {
    std::string received;
    grpc::Status s = WatchAs(ChannelWithToken(c.token), c.node, &received);
    EXPECT_EQ(s.error_code(), c.code) << c.node << ": " << s.error_message();
    EXPECT_TRUE(received.empty());
    EXPECT_THAT(s.error_message(), Not(HasSubstr(kCanarySecret)));
  }
  EXPECT_FALSE(cp_->registry().Get("gw-b").has_value());
  // The node's own token gets the snapshot, keys included, and the admin API shows how it
  // authenticated.
  auto stub = config::v1::ConfigDiscoveryService::NewStub(NodeChannel("gw-a"));
  grpc::ClientContext ctx;
  auto stream = stub->Watch(&ctx);
  config::v1::WatchRequest hello;
  hello.set_node_id("gw-a");
  ASSERT_TRUE(stream->Write(hello));
  config::v1::WatchResponse first;
  ASSERT_TRUE(stream->Read(&first));
  EXPECT_EQ(first.snapshot().providers(0).api_key(), kCanarySecret);
  auto shown = cp_->registry().Get("gw-a");
  ASSERT_TRUE(shown.has_value());
  EXPECT_THAT(shown->authenticated_by(), HasSubstr("node token node-gw-a (tpn_"));
  EXPECT_THAT(shown->authenticated_by(), Not(HasSubstr(NodeToken("gw-a"))));
  ctx.TryCancel();
}

// A stream opened before its node token was revoked gets no further snapshot: the next push ends
// it with UNAUTHENTICATED.
TEST_F(AccessTest, RevokingANodeTokenEndsItsWatchStreamAtTheNextPush) {
  auto issued = cp_->identities().CreateNodeToken("gw-r-token", "gw-r", {}, "test");
  ASSERT_TRUE(issued.ok());
  auto stub = config::v1::ConfigDiscoveryService::NewStub(ChannelWithToken(issued->token()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->Watch(&ctx);
  config::v1::WatchRequest hello;
  hello.set_node_id("gw-r");
  ASSERT_TRUE(stream->Write(hello));
  config::v1::WatchResponse first;
  ASSERT_TRUE(stream->Read(&first));
  config::v1::WatchRequest ack;
  ack.set_node_id("gw-r");
  ack.set_version_info(first.version_info());
  ack.set_response_nonce(first.nonce());
  ASSERT_TRUE(stream->Write(ack));
  ASSERT_TRUE(WaitFor([&] {
    auto d = cp_->registry().Get("gw-r");
    return d.has_value() && d->acked_version() == first.version_info();
  }));
  ASSERT_TRUE(cp_->identities().RevokeNodeToken("gw-r-token", "test").ok());
  ASSERT_TRUE(cp_->admin().CreateCredential(MakeCredential("later", kCanarySecret), "t").ok());
  ASSERT_TRUE(cp_->admin().CreateResource(MakeProvider("later-p", "later"), "t").ok());
  config::v1::WatchResponse next;
  EXPECT_FALSE(stream->Read(&next));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST_F(AccessTest, ANodeCannotReportAsAnother) {
  auto as_a = config::v1::ConfigDiscoveryService::NewStub(NodeChannel("gw-a"));
  grpc::ClientContext ctx;
  config::v1::ReportHealthRequest report;
  report.set_node_id("gw-b");
  config::v1::ReportHealthResponse response;
  grpc::Status s = as_a->ReportHealth(&ctx, report, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("bound to node \"gw-a\""));

  auto usage = usage::v1::UsageService::NewStub(NodeChannel("gw-a"));
  usage::v1::ReportUsageRequest batch;
  batch.add_records()->set_node_id("gw-a");
  batch.mutable_records(0)->set_request_id("r1");
  batch.add_records()->set_node_id("gw-b");
  batch.mutable_records(1)->set_request_id("r2");
  grpc::ClientContext uctx;
  usage::v1::ReportUsageResponse uresp;
  s = usage->ReportUsage(&uctx, batch, &uresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("records[1].node_id"));
  EXPECT_EQ(cp_->ledger().ingested_total(), 0);
  EXPECT_EQ(cp_->authenticator().counts().wrong_node, 2u);
}

TEST_F(AccessTest, RevocationTakesEffectOnTheNextCall) {
  auto stub = admin::v1::AdminService::NewStub(ChannelWithToken(tokens_["operator"]));
  {
    grpc::ClientContext ctx;
    admin::v1::ListRoutesResponse resp;
    ASSERT_TRUE(stub->ListRoutes(&ctx, {}, &resp).ok());
  }
  auto admin = admin::v1::AdminService::NewStub(Channel());
  {
    grpc::ClientContext ctx;
    admin::v1::RevokeAdminTokenRequest req;
    req.set_name("operator");
    admin::v1::RevokeAdminTokenResponse resp;
    ASSERT_TRUE(admin->RevokeAdminToken(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.admin_token().has_revoke_time());
  }
  grpc::ClientContext ctx;
  admin::v1::ListRoutesResponse resp;
  EXPECT_EQ(stub->ListRoutes(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AccessTest, TheLastAdminTokenCannotBeRevoked) {
  const std::string bootstrap = "bootstrap-" + admin_token_.substr(4, 8);
  ASSERT_TRUE(cp_->identities().RevokeAdminToken("admin", "test").ok());
  auto last = cp_->identities().RevokeAdminToken(bootstrap, "test");
  EXPECT_EQ(last.status().code(), absl::StatusCode::kFailedPrecondition) << last.status();
  EXPECT_TRUE(cp_->identities().Authenticate(admin_token_).ok());
  EXPECT_TRUE(cp_->identities().RevokeAdminToken("viewer", "test").ok());  // other roles: no limit
}

TEST_F(AccessTest, TokensAreShownOnceAndNeverStoredOrListed) {
  auto admin = admin::v1::AdminService::NewStub(Channel());
  admin::v1::CreateAdminTokenResponse created;
  {
    grpc::ClientContext ctx;
    admin::v1::CreateAdminTokenRequest req;
    req.set_name("ci");
    req.set_role(admin::v1::ADMIN_ROLE_OPERATOR);
    ASSERT_TRUE(admin->CreateAdminToken(&ctx, req, &created).ok());
    EXPECT_TRUE(IsWellFormedKeyWithPrefix(created.token(), kAdminTokenPrefix));
  }
  admin::v1::CreateNodeTokenResponse node;
  {
    grpc::ClientContext ctx;
    admin::v1::CreateNodeTokenRequest req;
    req.set_name("gw-9-2026");
    req.set_node_id("gw-9");
    ASSERT_TRUE(admin->CreateNodeToken(&ctx, req, &node).ok());
    EXPECT_TRUE(IsWellFormedKeyWithPrefix(node.token(), kNodeTokenPrefix));
  }
  std::string listed;
  {
    grpc::ClientContext ctx;
    admin::v1::ListAdminTokensResponse resp;
    ASSERT_TRUE(admin->ListAdminTokens(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.admin_tokens_size(), 6);  // bootstrap, the four roles, ci
    listed += resp.SerializeAsString();
  }
  {
    grpc::ClientContext ctx;
    admin::v1::ListNodeTokensResponse resp;
    ASSERT_TRUE(admin->ListNodeTokens(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.node_tokens_size(), 2);
    EXPECT_EQ(resp.node_tokens(0).node_id(), "gw-9");
    listed += resp.SerializeAsString();
  }
  std::vector<std::string> secrets = {created.token(), node.token(), admin_token_};
  for (const auto& [who, token] : tokens_) secrets.push_back(token);
  cp_.reset();  // checkpoint the WAL into the file
  std::string db;
  for (const char* suffix : {"", "-wal"}) {
    std::ifstream in(dir_.File(std::string("cp.db") + suffix), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    db += ss.str();
  }
  ASSERT_FALSE(db.empty());
  for (const std::string& secret : secrets) {
    EXPECT_THAT(listed, Not(HasSubstr(secret)));
    EXPECT_THAT(db, Not(HasSubstr(secret)));
    EXPECT_THAT(db, HasSubstr(Sha256Hex(secret)));
  }
}

}  // namespace
}  // namespace turnpike::controlplane::testing
