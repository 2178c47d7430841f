// A real in-process control plane (SQLite file in a temporary directory, gRPC on a loopback
// port chosen by the kernel) for the watch-protocol and admin-service tests. It starts with an
// admin token (role admin) that Channel() sends on every call; NodeChannel(node) sends a node
// token issued for that node id, for the node RPCs (Watch, ReportHealth, ReportUsage). The audit
// trail signs checkpoints with <dir>/audit-signing.pem, made by the first start.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_
#define TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_

#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/bearer_channel.h"
#include "common/clock.h"
#include "controlplane/audit_signer.h"
#include "controlplane/caller_keys.h"
#include "controlplane/control_plane.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane::testing {

class ControlPlaneFixture : public ::testing::Test {
 protected:
  void SetUp() override { StartControlPlane("127.0.0.1:0"); }
  void TearDown() override { cp_.reset(); }

  void StartControlPlane(const std::string& listen) {
    if (admin_token_.empty()) admin_token_ = GenerateKeyWithPrefix(kAdminTokenPrefix)->key;
    ControlPlane::Options o;
    o.db_path = dir_.File("cp.db");
    o.listen_address = listen;
    o.bootstrap_admin_token = admin_token_;
    // The tests that send bad tokens send hundreds; the throttle has its own tests.
    o.auth_throttle.max_delay = absl::ZeroDuration();
    // The audit trail signs checkpoints with a key made for the fixture (kept across restarts).
    if (audit_key_file_.empty()) {
      audit_key_file_ = dir_.File("audit-signing.pem");
      std::ofstream(audit_key_file_) << GenerateAuditSigningKeyPem();
    }
    o.audit_signing_key_file = audit_key_file_;
    o.audit_checkpoint_interval = audit_checkpoint_interval_;
    o.audit = audit_options_;
    auto key = MasterKey::Parse(kTestMasterKey);
    ASSERT_TRUE(key.ok());
    auto cp = ControlPlane::Start(o, *key, Clock::Real());
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = *std::move(cp);
    port_ = cp_->port();
  }
  // Stops the control plane and starts a new one on the same port and database.
  void RestartControlPlane() {
    cp_.reset();
    StartControlPlane(absl::StrCat("127.0.0.1:", port_));
  }

  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  // A channel whose calls carry `token` (none if empty).
  std::shared_ptr<grpc::Channel> ChannelWithToken(const std::string& token) const {
    return CreateChannelWithBearerToken(target(), grpc::InsecureChannelCredentials(),
                                        grpc::ChannelArguments(), token);
  }
  // The admin API with the fixture's admin token.
  std::shared_ptr<grpc::Channel> Channel() const { return ChannelWithToken(admin_token_); }
  // A node token bound to `node` (issued once per fixture; tokens survive restarts).
  std::string NodeToken(const std::string& node) {
    auto it = node_tokens_.find(node);
    if (it != node_tokens_.end()) return it->second;
    auto issued = cp_->identities().CreateNodeToken("node-" + node, node, {}, "test");
    EXPECT_TRUE(issued.ok()) << issued.status();
    if (!issued.ok()) return "";
    return node_tokens_[node] = issued->token();
  }
  std::shared_ptr<grpc::Channel> NodeChannel(const std::string& node) {
    return ChannelWithToken(NodeToken(node));
  }
  int64_t CurrentVersion() { return cp_->admin().GetConfigVersion()->version; }

  // One admin change (a new provider); returns the new config version.
  int64_t Change() {
    auto p = cp_->admin().CreateResource(MakeProvider(absl::StrCat("p", ++changes_)), "test");
    EXPECT_TRUE(p.ok()) << p.status();
    return CurrentVersion();
  }

  turnpike::testing::TempDir dir_;
  std::string admin_token_;
  std::string audit_key_file_;
  absl::Duration audit_checkpoint_interval_ = absl::Minutes(1);
  AuditTrail::Options audit_options_;
  std::map<std::string, std::string> node_tokens_;
  std::unique_ptr<ControlPlane> cp_;
  int port_ = 0;
  int changes_ = 0;
};

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_
