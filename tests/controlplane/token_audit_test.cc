// Token changes in the audit trail (docs/audit.md): every admin-token and node-token creation and
// revocation made through the admin API is one chained admin change naming the authenticated
// actor, the action and the token, never its secret or hash; refused and no-op calls add
// nothing; and the chain still verifies, online and with turnpike-audit-verify on the file.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/audit_signer.h"
#include "controlplane/caller_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace a = ::turnpike::admin::v1;
namespace au = ::turnpike::audit::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class TokenAuditTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    admin_ = a::AdminService::NewStub(Channel());
    audit_ = au::AuditService::NewStub(Channel());
    bootstrap_ = "bootstrap-" + admin_token_.substr(4, 8);
  }

  std::vector<au::AdminChange> Changes() {
    grpc::ClientContext ctx;
    au::ListAdminChangesResponse response;
    grpc::Status s = audit_->ListAdminChanges(&ctx, au::ListAdminChangesRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {response.changes().begin(), response.changes().end()};
  }

  std::string Everything() {
    std::string all;
    {
      grpc::ClientContext ctx;
      au::QueryAuditResponse response;
      EXPECT_TRUE(audit_->QueryAudit(&ctx, au::QueryAuditRequest(), &response).ok());
      all += response.DebugString();
    }
    grpc::ClientContext ctx;
    a::ListAuditEntriesResponse response;
    EXPECT_TRUE(admin_->ListAuditEntries(&ctx, a::ListAuditEntriesRequest(), &response).ok());
    return all + response.DebugString();
  }

  std::unique_ptr<a::AdminService::Stub> admin_;
  std::unique_ptr<au::AuditService::Stub> audit_;
  std::string bootstrap_;
};

TEST_F(TokenAuditTest, EveryTokenChangeIsOneChainedEntryWithoutTheSecret) {
  a::CreateAdminTokenResponse ops;
  {
    grpc::ClientContext ctx;
    a::CreateAdminTokenRequest req;
    req.set_name("ops");
    req.set_role(a::ADMIN_ROLE_OPERATOR);
    ASSERT_TRUE(admin_->CreateAdminToken(&ctx, req, &ops).ok());
  }
  a::CreateNodeTokenResponse node;
  {
    grpc::ClientContext ctx;
    a::CreateNodeTokenRequest req;
    req.set_name("gw-a");
    req.set_node_id("gw-a");
    ASSERT_TRUE(admin_->CreateNodeToken(&ctx, req, &node).ok());
  }
  // Refused calls change nothing and add nothing: the wrong role, a name taken, no such token.
  {
    auto as_ops = a::AdminService::NewStub(ChannelWithToken(ops.token()));
    grpc::ClientContext ctx;
    a::CreateNodeTokenRequest req;
    req.set_name("gw-b");
    req.set_node_id("gw-b");
    a::CreateNodeTokenResponse resp;
    EXPECT_EQ(as_ops->CreateNodeToken(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    a::CreateNodeTokenRequest req;
    req.set_name("gw-a");
    req.set_node_id("gw-other");
    a::CreateNodeTokenResponse resp;
    EXPECT_EQ(admin_->CreateNodeToken(&ctx, req, &resp).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  {
    grpc::ClientContext ctx;
    a::RevokeNodeTokenRequest req;
    req.set_name("nope");
    a::RevokeNodeTokenResponse resp;
    EXPECT_EQ(admin_->RevokeNodeToken(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  for (int i = 0; i < 2; ++i) {  // the second revocation is a no-op
    grpc::ClientContext ctx;
    a::RevokeNodeTokenRequest req;
    req.set_name("gw-a");
    a::RevokeNodeTokenResponse resp;
    ASSERT_TRUE(admin_->RevokeNodeToken(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    a::RevokeAdminTokenRequest req;
    req.set_name("ops");
    a::RevokeAdminTokenResponse resp;
    ASSERT_TRUE(admin_->RevokeAdminToken(&ctx, req, &resp).ok());
  }

  const std::vector<au::AdminChange> changes = Changes();  // newest first
  std::vector<std::string> what;
  for (const au::AdminChange& c : changes) {
    what.push_back(
        absl::StrCat(c.actor(), " ", c.action(), " ", c.resource_type(), " ", c.resource_name()));
    EXPECT_TRUE(c.has_time());
  }
  EXPECT_THAT(what, ElementsAre(bootstrap_ + " RevokeAdminToken admin_token ops",
                                bootstrap_ + " RevokeNodeToken node_token gw-a",
                                bootstrap_ + " CreateNodeToken node_token gw-a",
                                bootstrap_ + " CreateAdminToken admin_token ops"));
  // What changed is in the listing: the role, the node id, the revocation time.
  EXPECT_THAT(changes[3].after_json(), HasSubstr("ADMIN_ROLE_OPERATOR"));
  EXPECT_TRUE(changes[3].before_json().empty());
  EXPECT_THAT(changes[2].after_json(), HasSubstr("\"node_id\":\"gw-a\""));
  EXPECT_THAT(changes[1].before_json(), Not(HasSubstr("revoke_time")));
  EXPECT_THAT(changes[1].after_json(), HasSubstr("revoke_time"));
  // Never a secret: not the tokens, not the part after their display prefix, not their hashes.
  const std::string all = Everything();
  for (const std::string& token : {ops.token(), node.token()}) {
    EXPECT_THAT(all, Not(HasSubstr(token)));
    EXPECT_THAT(all, Not(HasSubstr(token.substr(12))));
    EXPECT_THAT(all, Not(HasSubstr(Sha256Hex(token))));
  }

  // The chain, tokens included, verifies online and offline.
  ASSERT_TRUE(*cp_->audit().Checkpoint());
  {
    grpc::ClientContext ctx;
    au::VerifyAuditResponse verdict;
    ASSERT_TRUE(audit_->VerifyAudit(&ctx, au::VerifyAuditRequest(), &verdict).ok());
    EXPECT_TRUE(verdict.intact()) << verdict.problem();
    EXPECT_EQ(verdict.size(), 4);
  }
  cp_.reset();
  {
    std::ifstream in(audit_key_file_);
    std::ofstream(dir_.File("key.pem"))
        << std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  const std::string cmd = absl::StrCat(AUDIT_VERIFY_BIN, " --db=", dir_.File("cp.db"),
                                       " --public_key_file=", dir_.File("key.pem"), " > ",
                                       dir_.File("verdict.json"), " 2>&1");
  const int status = std::system(cmd.c_str());
  std::ifstream verdict_file(dir_.File("verdict.json"));
  const std::string verdict((std::istreambuf_iterator<char>(verdict_file)),
                            std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status)) << verdict;
  EXPECT_EQ(WEXITSTATUS(status), 0) << verdict;
  EXPECT_THAT(verdict, HasSubstr("\"intact\": true")) << verdict;
}

}  // namespace
}  // namespace turnpike::controlplane::testing
