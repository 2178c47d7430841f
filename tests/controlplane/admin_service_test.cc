// The admin API over real gRPC: rich error details on the wire, the actor header, health, and
// the status views (GetConfigStatus, ListDataPlanes).
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/control_plane_test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::HasSubstr;

class AdminServiceTest : public ControlPlaneFixture {
 protected:
  void SetUp() override {
    ControlPlaneFixture::SetUp();
    stub_ = admin::v1::AdminService::NewStub(Channel());
  }
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

TEST_F(AdminServiceTest, InvalidArgumentCarriesBadRequestOnTheWire) {
  grpc::ClientContext ctx;
  admin::v1::CreateRouteRequest req;
  req.mutable_route()->mutable_spec()->set_capability("Not Valid");
  admin::v1::CreateRouteResponse resp;
  grpc::Status s = stub_->CreateRoute(&ctx, req, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(s.error_details()));
  EXPECT_EQ(details.code(), 3);
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest br;
  ASSERT_TRUE(details.details(0).UnpackTo(&br));
  std::vector<std::string> fields;
  for (const auto& v : br.field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ::testing::ElementsAre("route.spec.capability", "route.spec.targets"));
}

// The audit's "who" is the authenticated token's name; what a caller claims is ignored.
TEST_F(AdminServiceTest, ActorIsTheAuthenticatedTokenNeverAClaim) {
  auto alice = cp_->identities().CreateAdminToken("alice", admin::v1::ADMIN_ROLE_OPERATOR, "test");
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto as_alice = admin::v1::AdminService::NewStub(ChannelWithToken(alice->token()));
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-turnpike-actor", "mallory@example.com");
    admin::v1::CreateProviderRequest req;
    *req.mutable_provider() = MakeProvider("fake");
    admin::v1::CreateProviderResponse resp;
    ASSERT_TRUE(as_alice->CreateProvider(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.provider().revision(), 1);
  }
  {
    grpc::ClientContext ctx;
    admin::v1::DeleteProviderRequest req;
    req.set_name("fake");
    admin::v1::DeleteProviderResponse resp;
    ASSERT_TRUE(stub_->DeleteProvider(&ctx, req, &resp).ok());
  }
  grpc::ClientContext ctx;
  admin::v1::ListAuditEntriesRequest req;
  admin::v1::ListAuditEntriesResponse resp;
  ASSERT_TRUE(stub_->ListAuditEntries(&ctx, req, &resp).ok());
  // Newest first: the delete, alice's create, and the creation of alice's token.
  ASSERT_EQ(resp.entries_size(), 3);
  EXPECT_EQ(resp.entries(0).actor(), "bootstrap-" + admin_token_.substr(4, 8));
  EXPECT_EQ(resp.entries(1).actor(), "alice");
  EXPECT_EQ(resp.entries(2).action(), "CreateAdminToken");
  EXPECT_EQ(resp.entries(2).actor(), "test");
}

TEST_F(AdminServiceTest, HealthIsServing) {
  auto health = grpc::health::v1::Health::NewStub(Channel());
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AdminServiceTest, ConfigStatusAndDataPlanes) {
  cp_->registry().Connected("gw-b", "peer", "v");
  cp_->registry().Connected("gw-a", "peer", "v");
  cp_->registry().Acked("gw-a", std::to_string(CurrentVersion()));
  grpc::ClientContext ctx;
  admin::v1::GetConfigStatusResponse status;
  ASSERT_TRUE(stub_->GetConfigStatus(&ctx, {}, &status).ok());
  EXPECT_EQ(status.version(), std::to_string(CurrentVersion()));
  EXPECT_EQ(status.connected_data_planes(), 2);
  EXPECT_EQ(status.up_to_date_data_planes(), 1);

  grpc::ClientContext c1;
  admin::v1::ListDataPlanesRequest req;
  req.set_page_size(1);
  admin::v1::ListDataPlanesResponse page1;
  ASSERT_TRUE(stub_->ListDataPlanes(&c1, req, &page1).ok());
  ASSERT_EQ(page1.data_planes_size(), 1);
  EXPECT_EQ(page1.data_planes(0).node_id(), "gw-a");
  ASSERT_FALSE(page1.next_page_token().empty());
  grpc::ClientContext c2;
  req.set_page_token(page1.next_page_token());
  admin::v1::ListDataPlanesResponse page2;
  ASSERT_TRUE(stub_->ListDataPlanes(&c2, req, &page2).ok());
  ASSERT_EQ(page2.data_planes_size(), 1);
  EXPECT_EQ(page2.data_planes(0).node_id(), "gw-b");
  EXPECT_TRUE(page2.next_page_token().empty());
}

TEST_F(AdminServiceTest, SecretsNeverComeBack) {
  grpc::ClientContext ctx;
  admin::v1::CreateCredentialRequest req = MakeCredential("k", kCanarySecret);
  admin::v1::CreateCredentialResponse resp;
  ASSERT_TRUE(stub_->CreateCredential(&ctx, req, &resp).ok());
  EXPECT_THAT(resp.DebugString(), ::testing::Not(HasSubstr(kCanarySecret)));
  grpc::ClientContext dup_ctx;
  grpc::Status dup = stub_->CreateCredential(&dup_ctx, req, &resp);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(dup.error_message() + dup.error_details(), ::testing::Not(HasSubstr(kCanarySecret)));
}

}  // namespace
}  // namespace turnpike::controlplane::testing
