// Security regression tests with real processes (docs/security.md): a control plane, the fake
// provider and gateways, each its own process. Every admin RPC refuses a call without a token, a
// malformed one, a revoked one and one of the wrong role; a gateway without its node credential
// (or with another node's) gets no snapshot and serves nothing; provider keys, admin tokens and
// node tokens appear in no response, log line, error, metric or the database file in clear.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCanaryKey[] = "sk-CANARY-provider-key-5e1f0c";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    // Hundreds of refused calls below; the slowdown of failed authentications is tested on its
    // own (FailedAuthenticationsAreSlowedDown).
    control_ = std::make_unique<ControlPlane>(dir_, 0, ExtraArgs());
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    ASSERT_FALSE(control_->admin_token().empty());
    admin_ = admin::v1::AdminService::NewStub(
        ControlChannel(control_->address(), control_->admin_token()));
    // The demo config, and a credential holding the canary (in every snapshot gateways get).
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateCredentialRequest cred;
    cred.mutable_credential()->set_name("canary");
    cred.set_secret(kCanaryKey);
    admin::v1::CreateCredentialResponse created;
    ASSERT_TRUE(admin_->CreateCredential(&ctx, cred, &created).ok());
    grpc::ClientContext pctx;
    SetDeadline(pctx);
    admin::v1::CreateProviderRequest provider;
    config::v1::Provider* spec = provider.mutable_provider()->mutable_spec();
    spec->set_name("canary-provider");
    spec->set_kind(config::v1::PROVIDER_KIND_OPENAI);
    spec->set_base_url("http://127.0.0.1:1/v1");
    spec->set_credential("canary");
    admin::v1::CreateProviderResponse made;
    ASSERT_TRUE(admin_->CreateProvider(&pctx, provider, &made).ok());
    ASSERT_TRUE(Admin(control_->address(), control_->admin_token())
                    .SeedDemo(fake_->port(), "model-0")
                    .ok());
  }

  virtual std::vector<std::string> ExtraArgs() { return {"--auth_failure_max_delay=0"}; }

  std::string Token(const std::string& name, admin::v1::AdminRole role) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateAdminTokenRequest req;
    req.set_name(name);
    req.set_role(role);
    admin::v1::CreateAdminTokenResponse resp;
    grpc::Status s = admin_->CreateAdminToken(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.token();
  }

  std::unique_ptr<Gateway> StartGateway(const std::string& name, const std::string& node_id,
                                        const std::string& token_file) {
    WatchSource source;
    source.control_plane = control_->address();
    source.node_id = node_id;
    source.name = name;
    source.node_token_file = token_file;
    auto gateway = std::make_unique<Gateway>(dir_, source);
    EXPECT_GT(gateway->port(), 0) << gateway->process().Log();
    return gateway;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_;
};

// Calls every AdminService method with an empty request on a channel carrying `token`.
std::map<std::string, grpc::Status> CallEveryAdminMethod(const std::string& address,
                                                         const std::string& token) {
  std::map<std::string, grpc::Status> out;
  const google::protobuf::ServiceDescriptor* service =
      admin::v1::CreateRouteRequest::descriptor()->file()->FindServiceByName("AdminService");
  grpc::GenericStub stub(ControlChannel(address, token));
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method = "/turnpike.admin.v1.AdminService/" + service->method(i)->name();
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      out[method] = std::move(s);
      done = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  return out;
}

TEST_F(SecurityTest, EveryAdminRpcRefusesNoMalformedRevokedAndWrongRoleTokens) {
  const std::string revoked = Token("revoked", admin::v1::ADMIN_ROLE_ADMIN);
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::RevokeAdminTokenRequest req;
    req.set_name("revoked");
    admin::v1::RevokeAdminTokenResponse resp;
    ASSERT_TRUE(admin_->RevokeAdminToken(&ctx, req, &resp).ok());
  }
  for (const std::string& token : {std::string(), std::string("tpa_malformed"),
                                   std::string(control_->admin_token() + "x"), revoked}) {
    for (const auto& [method, status] : CallEveryAdminMethod(control_->address(), token)) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with token #" << token.size();
    }
  }
  // The auditor may call none of the admin API but the audit trail.
  const std::string auditor = Token("auditor", admin::v1::ADMIN_ROLE_AUDITOR);
  int denied = 0;
  for (const auto& [method, status] : CallEveryAdminMethod(control_->address(), auditor)) {
    if (method == "/turnpike.admin.v1.AdminService/ListAuditEntries") {
      EXPECT_TRUE(status.ok()) << status.error_message();
      continue;
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("needs role ")) << method;
    ++denied;
  }
  EXPECT_GT(denied, 40);
  // A viewer reads but changes nothing.
  const std::string viewer = Token("viewer", admin::v1::ADMIN_ROLE_VIEWER);
  auto statuses = CallEveryAdminMethod(control_->address(), viewer);
  EXPECT_EQ(statuses["/turnpike.admin.v1.AdminService/CreateRoute"].error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(
      statuses["/turnpike.admin.v1.AdminService/CreateRoute"].error_message(),
      "/turnpike.admin.v1.AdminService/CreateRoute needs role operator; admin token viewer (" +
          viewer.substr(0, 12) + "…) is role viewer");
  EXPECT_TRUE(statuses["/turnpike.admin.v1.AdminService/ListRoutes"].ok());
  const std::string metrics = control_->Metrics();
  EXPECT_GT(MetricValue(metrics, "turnpike_control_auth_refusals_total{reason=\"missing\"}"), 0);
  EXPECT_GT(MetricValue(metrics, "turnpike_control_auth_refusals_total{reason=\"invalid\"}"), 0);
  EXPECT_GT(
      MetricValue(metrics, "turnpike_control_auth_refusals_total{reason=\"permission_denied\"}"),
      40);
}

TEST_F(SecurityTest, OnlyTheGatewayWithItsNodeTokenGetsTheSnapshot) {
  Admin admin(control_->address(), control_->admin_token());
  const std::string token_a = dir_.File("gw-a.token");
  ASSERT_TRUE(admin.WriteNodeToken("gw-a", token_a).ok());
  // No credential, and gw-a's credential used by a gateway calling itself gw-b.
  auto anonymous = StartGateway("anonymous", "gw-anon", "");
  auto impostor = StartGateway("impostor", "gw-b", token_a);
  auto genuine = StartGateway("genuine", "gw-a", token_a);
  GatewayClient genuine_client(genuine->address());
  ASSERT_TRUE(WaitFor([&] { return genuine_client.Serves("model-0"); }, seconds(15)))
      << genuine->process().Log();
  GatewayClient anonymous_client(anonymous->address()), impostor_client(impostor->address());
  EXPECT_EQ(anonymous_client.HealthStatus(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(impostor_client.HealthStatus(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(anonymous_client.Complete().status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("anonymous-snapshot.pb")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("impostor-snapshot.pb")));
  ASSERT_TRUE(WaitFor(
      [&] {
        return anonymous->process().Log().find("UNAUTHENTICATED") != std::string::npos ||
               anonymous->process().Log().find("missing credentials") != std::string::npos;
      },
      seconds(10)))
      << anonymous->process().Log();
  ASSERT_TRUE(
      WaitFor([&] { return impostor->process().Log().find("bound to node") != std::string::npos; },
              seconds(10)))
      << impostor->process().Log();
  admin::v1::ListDataPlanesResponse planes;
  ASSERT_TRUE(admin.DataPlanes(&planes).ok());
  ASSERT_EQ(planes.data_planes_size(), 1);
  EXPECT_EQ(planes.data_planes(0).node_id(), "gw-a");
  EXPECT_THAT(planes.data_planes(0).authenticated_by(), HasSubstr("node token gw-a-token (tpn_"));
}

// S1: canaries planted (a provider key, admin tokens, a node token) and never seen in clear.
TEST_F(SecurityTest, NoSecretInResponsesLogsErrorsMetricsOrTheDatabase) {
  Admin admin(control_->address(), control_->admin_token());
  const std::string token_file = dir_.File("gw-a.token");
  ASSERT_TRUE(admin.WriteNodeToken("gw-a", token_file).ok());
  auto gateway = StartGateway("gateway", "gw-a", token_file);
  GatewayClient client(gateway->address());
  ASSERT_TRUE(WaitFor([&] { return client.Serves("model-0"); }, seconds(15)))
      << gateway->process().Log();
  const std::string node_token = ReadAll(token_file).substr(0, 53);
  const std::string operator_token = Token("op", admin::v1::ADMIN_ROLE_OPERATOR);
  // Responses to every admin read, and refusals that had a token to echo.
  std::string responses;
  for (const std::string& token : {control_->admin_token(), operator_token, node_token}) {
    for (const auto& [method, status] : CallEveryAdminMethod(control_->address(), token)) {
      responses += status.error_message() + status.error_details();
    }
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::ListCredentialsResponse creds;
    ASSERT_TRUE(admin_->ListCredentials(&ctx, {}, &creds).ok());
    responses += creds.SerializeAsString();
  }
  responses += control_->Metrics();
  control_->process().Signal(SIGTERM);
  ASSERT_TRUE(control_->process().Wait(seconds(15)).has_value());
  const std::string everything = responses + control_->process().Log() + gateway->process().Log() +
                                 gateway->Metrics() + ReadAll(dir_.File("turnpike.db")) +
                                 ReadAll(dir_.File("turnpike.db-wal"));
  for (const std::string& secret :
       {std::string(kCanaryKey), control_->admin_token(), operator_token, node_token}) {
    EXPECT_THAT(everything, Not(HasSubstr(secret))) << secret.substr(0, 6);
  }
}

// With the default slowdown: past a few failures a refusal is held back (at least the first
// delay, 50 ms), a valid token is still answered, and the holds are counted.
class SecurityDefaultsTest : public SecurityTest {
 protected:
  std::vector<std::string> ExtraArgs() override { return {}; }
};

TEST_F(SecurityDefaultsTest, FailedAuthenticationsAreSlowedDown) {
  auto guesser = admin::v1::AdminService::NewStub(ControlChannel(control_->address(), "tpa_guess"));
  std::chrono::steady_clock::duration last{};
  for (int i = 0; i < 8; ++i) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::ListRoutesResponse resp;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(guesser->ListRoutes(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    last = std::chrono::steady_clock::now() - start;
  }
  EXPECT_GE(last, std::chrono::milliseconds(50));
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  admin::v1::ListRoutesResponse resp;
  EXPECT_TRUE(admin_->ListRoutes(&ctx, {}, &resp).ok());
  EXPECT_GE(MetricValue(control_->Metrics(), "turnpike_control_auth_refusals_held_total"), 3);
}

}  // namespace
}  // namespace turnpike::testing
