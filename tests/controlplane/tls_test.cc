// The watch stream over TLS and mutual TLS: snapshots carry provider keys, so the channel must
// be encrypted off loopback. Certificates are minted in memory for each test (a CA, a server
// certificate for localhost, client certificates). With mutual TLS, a client certificate whose SAN
// is bound (BindCertificate) is an admin identity or a gateway's, token or not.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <deque>
#include <optional>
#include <random>

#include "absl/synchronization/mutex.h"
#include "controlplane/control_plane.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"
#include "server/config/config_watch_client.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/test_util.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike::controlplane::testing {
namespace {

using ::turnpike::testing::WaitFor;

struct Pem {
  std::string cert;
  std::string key;
};

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Mints a certificate for `cn` signed by (issuer, issuer_key), or self-signed when issuer is null.
// Returns the PEMs and, through `out_cert`/`out_key`, the objects (owned by the caller).
Pem Mint(const char* cn, bool ca, X509* issuer, EVP_PKEY* issuer_key, X509** out_cert,
         EVP_PKEY** out_key, const char* san = "DNS:localhost,IP:127.0.0.1") {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(issuer != nullptr ? issuer : cert));
  X509* signer = issuer != nullptr ? issuer : cert;
  if (ca) {
    AddExt(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert, signer, NID_basic_constraints, "CA:FALSE");
    AddExt(cert, signer, NID_subject_alt_name, san);
    AddExt(cert, signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  Pem pem{BioString(cb), BioString(kb)};
  BIO_free(cb);
  BIO_free(kb);
  *out_cert = cert;
  *out_key = key;
  return pem;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = Mint("turnpike test CA", true, nullptr, nullptr, &ca_cert_, &ca_key_);
    X509* c;
    EVP_PKEY* k;
    server_ = Mint("localhost", false, ca_cert_, ca_key_, &c, &k);
    X509_free(c);
    EVP_PKEY_free(k);
    client_ = Mint("gw-1", false, ca_cert_, ca_key_, &c, &k);
    X509_free(c);
    EVP_PKEY_free(k);
  }

  // A client certificate of the test CA whose only SAN is `san`.
  Pem ClientCert(const char* san) {
    X509* c;
    EVP_PKEY* k;
    Pem pem = Mint("client", false, ca_cert_, ca_key_, &c, &k, san);
    X509_free(c);
    EVP_PKEY_free(k);
    return pem;
  }

  // Credentials presenting `cert` (none when empty) to the mTLS control plane.
  std::shared_ptr<grpc::ChannelCredentials> Creds(const Pem& cert) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ca_.cert;
    o.pem_private_key = cert.key;
    o.pem_cert_chain = cert.cert;
    return grpc::SslCredentials(o);
  }

  std::unique_ptr<admin::v1::AdminService::Stub> AdminStub(const Pem& cert) {
    return admin::v1::AdminService::NewStub(
        grpc::CreateChannel("localhost:" + std::to_string(cp_->port()), Creds(cert)));
  }
  void TearDown() override {
    cp_.reset();
    X509_free(ca_cert_);
    EVP_PKEY_free(ca_key_);
  }

  void Start(bool require_client_cert) {
    grpc::SslServerCredentialsOptions o(
        require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                            : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    o.pem_key_cert_pairs.push_back({server_.key, server_.cert});
    if (require_client_cert) o.pem_root_certs = ca_.cert;
    ControlPlane::Options opts;
    opts.db_path = dir_.File("tls.db");
    opts.listen_address = "127.0.0.1:0";
    opts.server_credentials = grpc::SslServerCredentials(o);
    auto key = MasterKey::Parse(kTestMasterKey);
    auto cp = ControlPlane::Start(opts, *key, Clock::Real());
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = *std::move(cp);
    auto token = cp_->identities().CreateNodeToken("gw-1", "gw-1", {}, "test");
    ASSERT_TRUE(token.ok()) << token.status();
    node_token_ = token->token();
  }

  std::unique_ptr<ConfigWatchClient> Client(std::shared_ptr<grpc::ChannelCredentials> creds,
                                            const std::string& node_id = "gw-1",
                                            std::optional<std::string> token = std::nullopt) {
    ConfigWatchClient::Options o;
    o.target = "localhost:" + std::to_string(cp_->port());
    o.node_id = node_id;
    o.node_token = token.value_or(node_token_);
    o.credentials = std::move(creds);
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(200);
    auto c = ConfigWatchClient::Create(
        o,
        [this](const config::v1::Snapshot& s) {
          absl::MutexLock lock(&mu_);
          keys_seen_.push_back(s.providers_size() > 0 ? s.providers(0).api_key() : "");
          return absl::OkStatus();
        },
        Clock::Real(), gens_.emplace_back(gens_.size()));
    EXPECT_TRUE(c.ok());
    return *std::move(c);
  }

  void AddProviderWithKey() {
    ASSERT_TRUE(cp_->admin().CreateCredential(MakeCredential("k", kCanarySecret), "t").ok());
    ASSERT_TRUE(cp_->admin().CreateResource(MakeProvider("p", "k"), "t").ok());
  }

  turnpike::testing::TempDir dir_;
  Pem ca_, server_, client_;
  X509* ca_cert_ = nullptr;
  EVP_PKEY* ca_key_ = nullptr;
  std::unique_ptr<ControlPlane> cp_;
  std::string node_token_;
  absl::Mutex mu_;
  std::vector<std::string> keys_seen_;
  std::deque<std::mt19937_64> gens_;  // one per watch client, drawn from on its thread
};

TEST_F(TlsTest, SnapshotsFlowOverTls) {
  Start(/*require_client_cert=*/false);
  AddProviderWithKey();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_.cert;
  auto client = Client(grpc::SslCredentials(o));
  client->Start();
  ASSERT_TRUE(WaitFor([&] {
    return client->applied_version() == std::to_string(cp_->admin().GetConfigVersion()->version);
  }));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(keys_seen_.back(), kCanarySecret);
}

TEST_F(TlsTest, MutualTlsAdmitsOnlyClientsWithACertificate) {
  Start(/*require_client_cert=*/true);
  AddProviderWithKey();
  grpc::SslCredentialsOptions without;
  without.pem_root_certs = ca_.cert;
  auto anonymous = Client(grpc::SslCredentials(without));
  anonymous->Start();
  grpc::SslCredentialsOptions with = without;
  with.pem_private_key = client_.key;
  with.pem_cert_chain = client_.cert;
  auto trusted = Client(grpc::SslCredentials(with));
  trusted->Start();
  const std::string current = std::to_string(cp_->admin().GetConfigVersion()->version);
  ASSERT_TRUE(WaitFor([&] { return trusted->applied_version() == current; }));
  // The anonymous client has tried to connect several times by now and got nothing.
  ASSERT_TRUE(WaitFor([&] { return anonymous->stats().streams >= 1; }));
  EXPECT_EQ(anonymous->applied_version(), "");
  EXPECT_EQ(anonymous->stats().applied, 0);
  anonymous->Stop();
  trusted->Stop();
}

template <class Req, class Resp, class Call>
grpc::Status CallWith(const std::string& token, Call call, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  return call(&ctx, req, resp);
}

TEST_F(TlsTest, BoundCertificatesIdentifyAdminsWithTheirRoleTokenOrNot) {
  Start(/*require_client_cert=*/true);
  auto root = cp_->identities().CreateAdminToken("root", admin::v1::ADMIN_ROLE_ADMIN, "test");
  ASSERT_TRUE(root.ok()) << root.status();
  const Pem alice = ClientCert("DNS:alice.example");
  auto as_root = AdminStub(client_);  // a certificate bound to nobody: the token decides
  auto as_alice = AdminStub(alice);
  const auto bind = [&](auto* c, const auto& q, auto* p) {
    return as_root->BindCertificate(c, q, p);
  };
  const auto create_caller = [&](auto* c, const auto& q, auto* p) {
    return as_alice->CreateCaller(c, q, p);
  };
  admin::v1::CreateCallerRequest caller;
  *caller.mutable_caller() = MakeCaller("app");
  admin::v1::CreateCallerResponse created;
  // Before the binding, alice's certificate alone is no credential.
  grpc::Status s = CallWith("", create_caller, caller, &created);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED) << s.error_message();
  EXPECT_NE(s.error_message().find("bound to no identity"), std::string::npos) << s.error_message();

  admin::v1::BindCertificateRequest req;
  req.mutable_binding()->set_san("DNS:alice.example");
  req.mutable_binding()->set_name("alice");
  req.mutable_binding()->set_role(admin::v1::ADMIN_ROLE_OPERATOR);
  admin::v1::BindCertificateResponse bound;
  s = CallWith(root->token(), bind, req, &bound);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(bound.binding().created_by(), "root");

  // Now her certificate is operator "alice": an operator change works and is audited as hers.
  s = CallWith("", create_caller, caller, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  admin::v1::ListAuditEntriesRequest list;
  admin::v1::ListAuditEntriesResponse audit;
  ASSERT_TRUE(
      CallWith(
          root->token(),
          [&](auto* c, const auto& q, auto* p) { return as_root->ListAuditEntries(c, q, p); }, list,
          &audit)
          .ok());
  bool found_caller = false, found_bind = false;
  for (const auto& e : audit.entries()) {
    found_caller = found_caller || (e.action() == "CreateCaller" && e.actor() == "alice");
    found_bind = found_bind || (e.action() == "BindCertificate" && e.actor() == "root" &&
                                e.resource_name() == "DNS:alice.example");
  }
  EXPECT_TRUE(found_caller);
  EXPECT_TRUE(found_bind);
  // Her role still decides: binding certificates needs admin.
  req.mutable_binding()->set_san("DNS:mallory.example");
  s = CallWith(
      "", [&](auto* c, const auto& q, auto* p) { return as_alice->BindCertificate(c, q, p); }, req,
      &bound);
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("needs role admin"), std::string::npos) << s.error_message();
  // A token sent with her certificate must be hers: root's is refused.
  *caller.mutable_caller() = MakeCaller("app2");
  s = CallWith(root->token(), create_caller, caller, &created);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED) << s.error_message();
  // Unbound, her certificate is nobody again.
  admin::v1::UnbindCertificateRequest unbind;
  unbind.set_san("DNS:alice.example");
  admin::v1::UnbindCertificateResponse unbound;
  ASSERT_TRUE(
      CallWith(
          root->token(),
          [&](auto* c, const auto& q, auto* p) { return as_root->UnbindCertificate(c, q, p); },
          unbind, &unbound)
          .ok());
  EXPECT_EQ(unbound.binding().name(), "alice");
  s = CallWith("", create_caller, caller, &created);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED) << s.error_message();
}

TEST_F(TlsTest, ABoundCertificateIsAGatewaysNodeCredentialForItsNodeOnly) {
  Start(/*require_client_cert=*/true);
  AddProviderWithKey();
  ASSERT_TRUE(cp_->identities()
                  .certificates()
                  .Bind(
                      [] {
                        admin::v1::CertificateBinding b;
                        b.set_san("DNS:gw-9.example");
                        b.set_name("gw-9-cert");
                        b.set_node_id("gw-9");
                        return b;
                      }(),
                      "test")
                  .ok());
  const Pem gw9 = ClientCert("DNS:gw-9.example");
  // No node token: the certificate alone gets gw-9 its snapshot, provider key included.
  auto client = Client(Creds(gw9), "gw-9", std::string());
  client->Start();
  const std::string current = std::to_string(cp_->admin().GetConfigVersion()->version);
  ASSERT_TRUE(WaitFor([&] { return client->applied_version() == current; }));
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(keys_seen_.back(), kCanarySecret);
  }
  // ListDataPlanes says how it authenticated.
  ASSERT_TRUE(WaitFor([&] {
    auto planes = cp_->registry().List("", 1000);
    for (const auto& p : planes) {
      if (p.node_id() == "gw-9" && p.authenticated_by() ==
                                       "node certificate gw-9-cert "
                                       "(DNS:gw-9.example)") {
        return true;
      }
    }
    return false;
  }));
  client->Stop();
  // With a token of the same node as well, both show.
  auto token = cp_->identities().CreateNodeToken("gw-9-token", "gw-9", {}, "test");
  ASSERT_TRUE(token.ok()) << token.status();
  auto both = Client(Creds(gw9), "gw-9", token->token());
  both->Start();
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& p : cp_->registry().List("", 1000)) {
      if (p.node_id() == "gw-9" && p.connected() &&
          p.authenticated_by().find("node token gw-9-token (tpn_") == 0 &&
          p.authenticated_by().find("with certificate DNS:gw-9.example") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));
  both->Stop();
  // The same certificate cannot act as another node.
  auto stub = config::v1::ConfigDiscoveryService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string(cp_->port()), Creds(gw9)));
  config::v1::ReportHealthRequest report;
  report.set_node_id("gw-1");
  config::v1::ReportHealthResponse ack;
  grpc::Status s = CallWith(
      "", [&](auto* c, const auto& q, auto* p) { return stub->ReportHealth(c, q, p); }, report,
      &ack);
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("bound to node \"gw-9\""), std::string::npos)
      << s.error_message();
  report.set_node_id("gw-9");
  s = CallWith(
      "", [&](auto* c, const auto& q, auto* p) { return stub->ReportHealth(c, q, p); }, report,
      &ack);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// A node's certificate binding may carry a capability restriction, as a node token may: the
// certificate alone gets only its routes and no other provider's key; with a token of the same
// node the restricted credential applies, and two different restrictions are refused.
TEST_F(TlsTest, ABoundCertificateCanRestrictItsNodeToCapabilities) {
  Start(/*require_client_cert=*/true);
  for (const char* name : {"a", "b"}) {
    const std::string secret = std::string("sk-CANARY-route-") + name + "-51c0";
    ASSERT_TRUE(
        cp_->admin().CreateCredential(MakeCredential(std::string("k-") + name, secret), "t").ok());
    ASSERT_TRUE(
        cp_->admin()
            .CreateResource(MakeProvider(std::string("p-") + name, std::string("k-") + name), "t")
            .ok());
    ASSERT_TRUE(cp_->admin().CreateResource(MakeRoute(name, std::string("p-") + name), "t").ok());
  }
  CertificateBindings& bindings = cp_->identities().certificates();
  admin::v1::CertificateBinding b;
  b.set_san("DNS:gw-r.example");
  b.set_name("gw-r-cert");
  b.set_node_id("gw-r");
  b.add_capabilities("nope");
  EXPECT_EQ(bindings.Bind(b, "test").status().code(), absl::StatusCode::kFailedPrecondition);
  b.clear_node_id();
  b.set_role(admin::v1::ADMIN_ROLE_VIEWER);
  b.set_capabilities(0, "a");
  absl::Status refused = bindings.Bind(b, "test").status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("binding.capabilities"), std::string::npos) << refused;
  b.set_role(admin::v1::ADMIN_ROLE_UNSPECIFIED);
  b.set_node_id("gw-r");
  ASSERT_TRUE(bindings.Bind(b, "test").ok());
  auto listed = bindings.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_EQ((*listed)[0].capabilities_size(), 1);
  EXPECT_EQ((*listed)[0].capabilities(0), "a");

  const Pem cert = ClientCert("DNS:gw-r.example");
  auto stub = config::v1::ConfigDiscoveryService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string(cp_->port()), Creds(cert)));
  // The first snapshot a stream gets with `token` (none if empty) beside the certificate.
  auto watch = [&](const std::string& token, config::v1::WatchResponse* first) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    auto stream = stub->Watch(&ctx);
    config::v1::WatchRequest hello;
    hello.set_node_id("gw-r");
    stream->Write(hello);
    if (!stream->Read(first)) return stream->Finish();  // refused: the server's status
    ctx.TryCancel();
    stream->Finish();
    return grpc::Status::OK;
  };
  config::v1::WatchResponse first;
  grpc::Status s = watch("", &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(first.snapshot().routes_size(), 1);
  EXPECT_EQ(first.snapshot().routes(0).capability(), "a");
  std::string bytes = first.SerializeAsString();
  EXPECT_NE(bytes.find("sk-CANARY-route-a-51c0"), std::string::npos);
  EXPECT_EQ(bytes.find("sk-CANARY-route-b-51c0"), std::string::npos);
  // An unrestricted token of the same node does not widen the certificate's restriction.
  auto open = cp_->identities().CreateNodeToken("gw-r-open", "gw-r", {}, "test");
  ASSERT_TRUE(open.ok()) << open.status();
  s = watch(open->token(), &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  bytes = first.SerializeAsString();
  EXPECT_EQ(first.snapshot().routes_size(), 1);
  EXPECT_EQ(bytes.find("sk-CANARY-route-b-51c0"), std::string::npos);
  // A token restricted otherwise disagrees with the certificate: refused, nothing sent.
  auto other = cp_->identities().CreateNodeToken("gw-r-b", "gw-r", {"b"}, "test");
  ASSERT_TRUE(other.ok()) << other.status();
  first.Clear();
  s = watch(other->token(), &first);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED) << s.error_message();
  EXPECT_EQ(first.snapshot().providers_size(), 0);
}

}  // namespace
}  // namespace turnpike::controlplane::testing
