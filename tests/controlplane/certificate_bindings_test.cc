// Certificate bindings (controlplane/certificate_bindings.h) through the admin API on plaintext
// loopback: the form of a binding is checked field by field, a SAN is bound once, unbinding an
// unknown SAN is NOT_FOUND, a binding survives a restart, and each bind and unbind is an audited
// admin change naming the authenticated actor. What a bound certificate then does over mutual TLS
// is tests/controlplane/tls_test.cc's.
#include <string>

#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

namespace a = ::turnpike::admin::v1;

class CertificateBindingsTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    admin_ = a::AdminService::NewStub(Channel());
  }

  grpc::Status Bind(const std::string& san, const std::string& name, a::AdminRole role,
                    const std::string& node_id) {
    a::BindCertificateRequest req;
    req.mutable_binding()->set_san(san);
    req.mutable_binding()->set_name(name);
    req.mutable_binding()->set_role(role);
    req.mutable_binding()->set_node_id(node_id);
    a::BindCertificateResponse resp;
    grpc::ClientContext ctx;
    return admin_->BindCertificate(&ctx, req, &resp);
  }

  std::unique_ptr<a::AdminService::Stub> admin_;
};

TEST_F(CertificateBindingsTest, AMalformedBindingIsRefusedNamingItsField) {
  const struct {
    std::string san, name;
    a::AdminRole role;
    std::string node_id, field;
  } cases[] = {
      {"alice.example", "alice", a::ADMIN_ROLE_VIEWER, "", "binding.san"},
      {"DNS:", "alice", a::ADMIN_ROLE_VIEWER, "", "binding.san"},
      {"DNS:a b", "alice", a::ADMIN_ROLE_VIEWER, "", "binding.san"},
      {"DNS:alice.example", "", a::ADMIN_ROLE_VIEWER, "", "binding.name"},
      {"DNS:alice.example", "alice", a::ADMIN_ROLE_UNSPECIFIED, "", "binding"},
      {"DNS:alice.example", "alice", a::ADMIN_ROLE_VIEWER, "gw-1", "binding"},
  };
  for (const auto& c : cases) {
    grpc::Status s = Bind(c.san, c.name, c.role, c.node_id);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << c.san << " " << c.name;
    EXPECT_NE(s.error_message().find(c.field), std::string::npos) << s.error_message();
  }
}

TEST_F(CertificateBindingsTest, BoundOnceListedAfterARestartAndUnboundOnce) {
  ASSERT_TRUE(
      Bind("URI:spiffe://example/gw-1", "gw-1-cert", a::ADMIN_ROLE_UNSPECIFIED, "gw-1").ok());
  EXPECT_EQ(Bind("URI:spiffe://example/gw-1", "other", a::ADMIN_ROLE_ADMIN, "").error_code(),
            grpc::ALREADY_EXISTS);
  ASSERT_TRUE(Bind("email:alice@example.internal", "alice", a::ADMIN_ROLE_AUDITOR, "").ok());
  RestartControlPlane();
  admin_ = a::AdminService::NewStub(Channel());
  a::ListCertificateBindingsResponse list;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(
        admin_->ListCertificateBindings(&ctx, a::ListCertificateBindingsRequest(), &list).ok());
  }
  ASSERT_EQ(list.bindings_size(), 2);
  EXPECT_EQ(list.bindings(0).san(), "URI:spiffe://example/gw-1");
  EXPECT_EQ(list.bindings(0).node_id(), "gw-1");
  EXPECT_EQ(list.bindings(1).role(), a::ADMIN_ROLE_AUDITOR);
  EXPECT_EQ(list.bindings(1).created_by().rfind("bootstrap-", 0), 0u)
      << list.bindings(1).created_by();
  // The restarted control plane's gate knows the binding from the database.
  EXPECT_TRUE(cp_->identities().certificates().Lookup("email:alice@example.internal").has_value());

  a::UnbindCertificateRequest unbind;
  unbind.set_san("URI:spiffe://example/gw-1");
  a::UnbindCertificateResponse gone;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->UnbindCertificate(&ctx, unbind, &gone).ok());
  }
  EXPECT_EQ(gone.binding().name(), "gw-1-cert");
  EXPECT_FALSE(cp_->identities().certificates().Lookup("URI:spiffe://example/gw-1").has_value());
  grpc::ClientContext ctx;
  EXPECT_EQ(admin_->UnbindCertificate(&ctx, unbind, &gone).error_code(), grpc::NOT_FOUND);

  // Both binds and the unbind are audited with the caller as actor; the refused calls are not.
  a::ListAuditEntriesResponse audit;
  grpc::ClientContext actx;
  ASSERT_TRUE(admin_->ListAuditEntries(&actx, a::ListAuditEntriesRequest(), &audit).ok());
  int binds = 0, unbinds = 0;
  for (const auto& e : audit.entries()) {
    if (e.resource_type() != "certificate_binding") continue;
    EXPECT_EQ(e.actor().rfind("bootstrap-", 0), 0u) << e.actor();
    binds += e.action() == "BindCertificate";
    unbinds += e.action() == "UnbindCertificate";
  }
  EXPECT_EQ(binds, 2);
  EXPECT_EQ(unbinds, 1);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
