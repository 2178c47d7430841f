// Callers to the gateway over TLS (docs/tls.md), end to end with real processes and the
// generated C++ stub. The certificates are made by running the guide's own openssl lines (the
// `<!-- replay: make-certs -->` block), and the rotation by running its `rotate` block, so the
// guide and the tests cannot drift apart. Covers: TLS with a key, mutual TLS with a certificate
// mapped to a caller (the same caller name in the access log either way), a client certificate
// from another CA refused at the handshake, TLS 1.1 refused, HTTPS /metrics with the expiry
// gauge, start-up failures that name the file, plaintext off loopback refused unless allowed, and
// a certificate rotation under running streams that cuts none of them.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {
namespace {

using v1::CompletionService;

constexpr char kKey[] = "tpk_tls_test_claims_key";
constexpr char kKeySha[] = "56748688bed85aea66cc8b03d0c57cb82c349937641a22e6060f390c27d431b3";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The lines of the ```sh block that follows `<!-- replay: <name> -->` in docs/tls.md.
std::vector<std::string> DocBlock(const std::string& name) {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/tls.md");
  std::string line;
  bool marked = false, in_block = false;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    if (line == "<!-- replay: " + name + " -->") {
      marked = true;
    } else if (marked && line == "```sh") {
      in_block = true;
    } else if (in_block && absl::StartsWith(line, "```")) {
      break;
    } else if (in_block && !line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

// Runs the guide's block `name` in `dir`, line by line, as written; returns false on a failure.
bool RunDocBlock(const std::string& name, const std::string& dir) {
  const std::vector<std::string> lines = DocBlock(name);
  EXPECT_FALSE(lines.empty()) << "docs/tls.md has no block " << name;
  for (const std::string& line : lines) {
    const std::string cmd =
        absl::StrCat("cd '", dir, "' && bash -o pipefail -c '",
                     std::regex_replace(line, std::regex("'"), "'\\''"), "' >/dev/null 2>&1");
    const int status = std::system(cmd.c_str());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ADD_FAILURE() << "docs/tls.md line failed: " << line;
      return false;
    }
  }
  return !lines.empty();
}

int Shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string GatewayConfig(int fake_port) {
  return absl::StrCat(
      R"({"version":"tls-1","providers":[{"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:)",
      fake_port, R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
      "routes":[{"capability":"claims-summary","targets":[{"provider":"fake","model":"gpt-4o-mini"}]}],
      "callers":[{"name":"claims-service","keySha256":[")",
      kKeySha,
      R"("],"allowedCapabilities":["claims-summary"],"certSans":["DNS:claims.example.internal"]}]})");
}

v1::StreamCompletionRequest Request() {
  v1::StreamCompletionRequest request;
  request.set_capability("claims-summary");
  auto* m = request.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("Summarise: the quick brown fox.");
  return request;
}

struct StreamResult {
  grpc::Status status;
  int deltas = 0;
  bool finished = false;
};

// Reads a whole stream; `first` is set once its first delta has arrived.
StreamResult Stream(CompletionService::Stub& stub, const std::string& key,
                    std::atomic<int>* started = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
  StreamResult result;
  auto reader = stub.StreamCompletion(&ctx, Request());
  v1::StreamCompletionResponse response;
  while (reader->Read(&response)) {
    if (response.has_delta() && result.deltas++ == 0 && started != nullptr) ++*started;
    if (response.has_finish()) result.finished = true;
  }
  result.status = reader->Finish();
  return result;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Shell("command -v openssl >/dev/null"), 0) << "openssl is needed";
    ASSERT_TRUE(RunDocBlock("make-certs", dir_.path()));
    certs_ = dir_.File("certs/");
  }

  void StartGateway(std::vector<std::string> extra = {}) {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=8"});
    ASSERT_GT(fake_->port(), 0);
    std::vector<std::string> args = {
        "--tls_cert=" + certs_ + "server.crt", "--tls_key=" + certs_ + "server.key",
        "--tls_client_ca=" + certs_ + "ca.crt", "--tls_reload_interval=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    gateway_ = std::make_unique<Gateway>(dir_, GatewayConfig(fake_->port()), args);
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
  }

  // A channel to the gateway as `localhost` (the name in the server certificate), trusting the
  // guide's CA; with a client certificate when `client` names one ("claims" = certs/claims.*).
  std::shared_ptr<grpc::Channel> Channel(const std::string& client_dir = "",
                                         const std::string& client = "") {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadFile(certs_ + "ca.crt");
    if (!client.empty()) {
      tls.pem_cert_chain = ReadFile(client_dir + client + ".crt");
      tls.pem_private_key = ReadFile(client_dir + client + ".key");
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh connection per channel
    return grpc::CreateCustomChannel(absl::StrCat("localhost:", gateway_->port()),
                                     grpc::SslCredentials(tls), args);
  }

  // The callers of the access-log lines so far ("-" for a refused, anonymous one).
  std::vector<std::string> LoggedCallers() {
    std::vector<std::string> callers;
    const std::string log = gateway_->process().Log();
    std::regex re("access method=\\S+ request_id=\\S+ capability=\\S+ caller=(\\S+)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      callers.push_back((*it)[1]);
    }
    return callers;
  }

  TempDir dir_;
  std::string certs_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(TlsTest, KeyOverTlsAndCertificateOverMutualTlsAreTheSameCaller) {
  StartGateway({"--tls_client_auth=optional"});
  // TLS, no client certificate, the caller's key.
  auto tls_stub = CompletionService::NewStub(Channel());
  StreamResult by_key = Stream(*tls_stub, kKey);
  EXPECT_TRUE(by_key.status.ok()) << by_key.status.error_message();
  EXPECT_TRUE(by_key.finished);
  // Mutual TLS: the certificate alone (its SAN DNS:claims.example.internal is the caller's).
  auto mtls_stub = CompletionService::NewStub(Channel(certs_, "claims"));
  StreamResult by_cert = Stream(*mtls_stub, "");
  EXPECT_TRUE(by_cert.status.ok()) << by_cert.status.error_message();
  // Both together name the same caller: fine.
  StreamResult both = Stream(*mtls_stub, kKey);
  EXPECT_TRUE(both.status.ok()) << both.status.error_message();
  // Neither, on a closed route: UNAUTHENTICATED.
  StreamResult neither = Stream(*tls_stub, "");
  EXPECT_EQ(neither.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Optional does not mean unchecked: a certificate from another CA fails the handshake.
  TempDir other;
  ASSERT_TRUE(RunDocBlock("make-certs", other.path()));
  auto rogue = CompletionService::NewStub(Channel(other.File("certs/"), "claims"));
  EXPECT_EQ(Stream(*rogue, kKey).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // Same identity in the access log whichever way it authenticated.
  ASSERT_TRUE(WaitFor([&] { return LoggedCallers().size() >= 4; }, std::chrono::seconds(5)))
      << gateway_->process().Log();
  // (Lines of calls that end close together may be logged in either order.)
  std::vector<std::string> callers = LoggedCallers();
  std::sort(callers.begin(), callers.end());
  EXPECT_EQ(callers,
            (std::vector<std::string>{"-", "claims-service", "claims-service", "claims-service"}));
}

TEST_F(TlsTest, UnknownClientCertificateAndPlaintextAreRefused) {
  StartGateway();  // --tls_client_auth=require (the default)
  // A client certificate made the same way but signed by another CA.
  TempDir other;
  ASSERT_TRUE(RunDocBlock("make-certs", other.path()));
  auto rogue = CompletionService::NewStub(Channel(other.File("certs/"), "claims"));
  StreamResult refused = Stream(*rogue, kKey);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.status.error_message();
  // No client certificate when one is required: the handshake fails too.
  auto anonymous = CompletionService::NewStub(Channel());
  EXPECT_EQ(Stream(*anonymous, kKey).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // Plaintext to a TLS listener.
  auto plain = CompletionService::NewStub(
      grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Stream(*plain, kKey).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // The right certificate still gets in.
  auto good = CompletionService::NewStub(Channel(certs_, "claims"));
  StreamResult ok = Stream(*good, "");
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  // TLS 1.2 is the oldest version offered; 1.3 is preferred. (gRPC insists on ALPN h2.)
  const std::string connect = absl::StrCat("openssl s_client -connect 127.0.0.1:", gateway_->port(),
                                           " -cert ", certs_, "claims.crt", " -key ", certs_,
                                           "claims.key", " -CAfile ", certs_, "ca.crt -alpn h2");
  EXPECT_NE(Shell(connect + " -tls1_1 </dev/null >/dev/null 2>&1"), 0);
  // Judged by the protocol s_client reports right after the handshake (-brief), not by its exit
  // code: it may exit 1 when the server closes the connection first.
  EXPECT_EQ(
      Shell(connect + " -brief -tls1_2 </dev/null 2>&1 | grep -q 'Protocol version: TLSv1.2'"), 0);
  EXPECT_EQ(Shell(connect + " -brief </dev/null 2>&1 | grep -q 'Protocol version: TLSv1.3'"), 0);
}

TEST_F(TlsTest, MetricsAreServedOverHttpsWithTheExpiryGauge) {
  StartGateway();
  const std::string out = dir_.File("metrics.txt");
  ASSERT_EQ(Shell(absl::StrCat("curl -sf --cacert ", certs_, "ca.crt https://localhost:",
                               gateway_->metrics_port(), "/metrics > ", out)),
            0);
  const std::string page = ReadFile(out);
  const double days = MetricValue(page, "turnpike_tls_certificate_expiry_days");
  EXPECT_GT(days, 89.0) << page;  // the guide issues 90-day certificates
  EXPECT_LE(days, 90.0);
  EXPECT_EQ(MetricValue(page, "turnpike_tls_certificate_reloads_total"), 0);
  // Plain HTTP to the HTTPS port gets nothing.
  EXPECT_NE(Shell(absl::StrCat("curl -sf http://127.0.0.1:", gateway_->metrics_port(),
                               "/metrics >/dev/null 2>&1")),
            0);
}

TEST_F(TlsTest, StartUpFailuresNameTheFileAndTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"--tls_cert=" + certs_ + "missing.crt", "--tls_key=" + certs_ + "server.key"},
       "certificate " + certs_ + "missing.crt: cannot read (No such file or directory)"},
      {{"--tls_cert=" + certs_ + "server.crt", "--tls_key=" + certs_ + "claims.key"},
       "private key " + certs_ + "claims.key: does not match the certificate in " + certs_ +
           "server.crt"},
      {{"--tls_cert=" + certs_ + "server.ext", "--tls_key=" + certs_ + "server.key"},
       "certificate " + certs_ + "server.ext: holds no PEM certificate"},
      {{"--tls_cert=" + certs_ + "server.crt", "--tls_key=" + certs_ + "server.crt"},
       "private key " + certs_ + "server.crt: holds no PEM private key"},
      {{"--tls_cert=" + certs_ + "server.crt"}, "--tls_cert and --tls_key go together"},
      {{"--tls_client_ca=" + certs_ + "ca.crt"}, "--tls_client_ca needs --tls_cert"},
      {{"--listen=0.0.0.0:0"}, "refusing to listen on 0.0.0.0:0 without TLS"},
  };
  std::ofstream(dir_.File("config.json")) << GatewayConfig(1);
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--config=" + dir_.File("config.json"), "--listen=127.0.0.1:0",
                                     "--metrics_listen="};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Process gateway(GatewayBinary(), args, dir_.File("failing.log"));
    std::optional<int> code = gateway.Wait(std::chrono::seconds(10));
    ASSERT_TRUE(code.has_value()) << "still running with " << c.args[0];
    EXPECT_EQ(*code, 2) << gateway.Log();
    EXPECT_NE(gateway.Log().find(c.want), std::string::npos) << gateway.Log();
    std::filesystem::remove(dir_.File("failing.log"));
  }
  // Allowed explicitly, plaintext off loopback starts, with a warning.
  Gateway allowed(dir_, GatewayConfig(1), {"--listen=0.0.0.0:0", "--allow_insecure_non_loopback"});
  ASSERT_GT(allowed.port(), 0) << allowed.process().Log();
  EXPECT_NE(allowed.process().Log().find("WITHOUT TLS (--allow_insecure_non_loopback)"),
            std::string::npos);
}

// The rotation of docs/tls.md under load: streams in flight when the certificate files are
// replaced all finish; new connections get the new certificate; old channels keep working.
TEST_F(TlsTest, RotationUnderRunningStreamsDropsNone) {
  fake_ = std::make_unique<FakeProvider>(
      dir_, std::vector<std::string>{"--chunks=80", "--chunk_delay_ms=100"});
  ASSERT_GT(fake_->port(), 0);
  gateway_ = std::make_unique<Gateway>(
      dir_, GatewayConfig(fake_->port()),
      std::vector<std::string>{"--tls_cert=" + certs_ + "server.crt",
                               "--tls_key=" + certs_ + "server.key",
                               "--tls_client_ca=" + certs_ + "ca.crt", "--tls_reload_interval=1s"});
  ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
  const std::string old_cert = ReadFile(certs_ + "server.crt");

  constexpr int kStreams = 8;
  std::atomic<int> started{0}, done{0};
  std::vector<StreamResult> results(kStreams);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) channels.push_back(Channel(certs_, "claims"));
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      auto stub = CompletionService::NewStub(channels[i]);
      results[i] = Stream(*stub, "", &started);
      ++done;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return started.load() == kStreams; }, std::chrono::seconds(20)));

  // A new connection is handed the new certificate (the server's leaf, as the client saw it).
  auto served_cert = [&] {
    grpc::ClientContext ctx;
    auto stub = CompletionService::NewStub(Channel(certs_, "claims"));
    auto reader = stub->StreamCompletion(&ctx, v1::StreamCompletionRequest());
    v1::StreamCompletionResponse r;
    while (reader->Read(&r)) {
    }
    reader->Finish();
    auto auth = ctx.auth_context();
    if (auth == nullptr) return std::string();
    auto pem = auth->FindPropertyValues("x509_pem_cert");
    return pem.empty() ? std::string() : std::string(pem[0].data(), pem[0].size());
  };
  auto trimmed = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
    return s;
  };
  EXPECT_EQ(trimmed(served_cert()), trimmed(old_cert));
  ASSERT_TRUE(RunDocBlock("rotate", dir_.path()));
  const std::string new_cert = ReadFile(certs_ + "server.crt");
  ASSERT_NE(new_cert, old_cert);
  EXPECT_TRUE(WaitFor([&] { return trimmed(served_cert()) == trimmed(new_cert); },
                      std::chrono::seconds(15)))
      << gateway_->process().Log();
  EXPECT_EQ(done.load(), 0) << "the streams (8 s each) ended before the rotation was seen";
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_TRUE(results[i].finished) << i;
    EXPECT_GT(results[i].deltas, 0) << i;
  }
  // A channel opened before the rotation still works (its connection, or a new one).
  auto old_stub = CompletionService::NewStub(channels[0]);
  EXPECT_TRUE(Stream(*old_stub, "").status.ok());
  // The gateway said so, and counted it.
  EXPECT_NE(
      gateway_->process().Log().find("TLS certificate reloaded from " + certs_ + "server.crt"),
      std::string::npos);
  const std::string out = dir_.File("metrics.txt");
  ASSERT_EQ(Shell(absl::StrCat("curl -sf --cacert ", certs_, "ca.crt https://localhost:",
                               gateway_->metrics_port(), "/metrics > ", out)),
            0);
  EXPECT_EQ(MetricValue(ReadFile(out), "turnpike_tls_certificate_reloads_total"), 1);
}

}  // namespace
}  // namespace turnpike::testing
