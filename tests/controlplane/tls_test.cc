// The watch stream over TLS and mutual TLS: snapshots carry provider keys, so the channel must
// be encrypted off loopback. Certificates are minted in memory for each test (a CA, a server
// certificate for localhost, a client certificate).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <deque>
#include <random>

#include "absl/synchronization/mutex.h"
#include "controlplane/control_plane.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"
#include "server/config/config_watch_client.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/test_util.h"

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
         EVP_PKEY** out_key) {
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
    AddExt(cert, signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
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
    auto token = cp_->identities().CreateNodeToken("gw-1", "gw-1", "test");
    ASSERT_TRUE(token.ok()) << token.status();
    node_token_ = token->token();
  }

  std::unique_ptr<ConfigWatchClient> Client(std::shared_ptr<grpc::ChannelCredentials> creds) {
    ConfigWatchClient::Options o;
    o.target = "localhost:" + std::to_string(cp_->port());
    o.node_id = "gw-1";
    o.node_token = node_token_;
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

}  // namespace
}  // namespace turnpike::controlplane::testing
