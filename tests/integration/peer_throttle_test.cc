// Failed caller authentications are slowed down per peer address (docs/security.md, "Brute
// force"), with real processes: a gateway listening on both IPv4 and IPv6 loopback, one client
// over 127.0.0.1 hammering bad keys and another over ::1. The hammering peer's refusals are held
// back once it is past its free failures; the other peer's invalid calls (within its own free
// failures) and valid calls are never held, before or after. Asserted on the gateway's counters,
// which count holds where they are decided, never on elapsed time.
#include <curl/curl.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

constexpr char kValidKey[] = "test";  // its sha256 is in the config below

std::string Config(int fake_port) {
  return R"({"version":"throttle-1","providers":[
    {"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:)" +
         std::to_string(fake_port) + R"(/v1","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
  "routes":[{"capability":"chat","targets":[{"provider":"fake","model":"model-0"}],
             "retry":{"maxAttempts":1}}],
  "callers":[{"name":"app","keySha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
              "allowedCapabilities":["chat"]}]})";
}

grpc::StatusCode CompleteAs(v1::CompletionService::Stub& stub, const std::string& key) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  ctx.AddMetadata("authorization", "Bearer " + key);
  v1::CompleteRequest req = DemoRequest<v1::CompleteRequest>("hello");
  req.set_capability("chat");
  v1::CompleteResponse resp;
  return stub.Complete(&ctx, req, &resp).error_code();
}

struct Counts {
  double failures, held, throttled_peers;
};

Counts Read(const Gateway& gateway) {
  const std::string page = gateway.Metrics();
  return {MetricValue(page, "turnpike_gateway_auth_failures_total"),
          MetricValue(page, "turnpike_gateway_auth_refusals_held_total"),
          MetricValue(page, "turnpike_gateway_auth_throttled_peers")};
}

TEST(PeerThrottleE2eTest, OnlyTheHammeringPeerIsSlowedAndValidKeysNeverWait) {
  TempDir dir;
  FakeProvider fake(dir);
  ASSERT_GT(fake.port(), 0) << fake.process().Log();
  Gateway gateway(dir, Config(fake.port()), {"--listen=[::]:0", "--allow_insecure_non_loopback"});
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();
  const std::string port = std::to_string(gateway.port());
  auto hammer = v1::CompletionService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials()));
  auto other = v1::CompletionService::NewStub(
      grpc::CreateChannel("ipv6:[::1]:" + port, grpc::InsecureChannelCredentials()));

  // The other peer first: three wrong keys and valid calls, none held.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(CompleteAs(*other, "wrong"), grpc::UNAUTHENTICATED);
  EXPECT_EQ(CompleteAs(*other, kValidKey), grpc::OK);
  Counts c = Read(gateway);
  EXPECT_EQ(c.failures, 3);
  EXPECT_EQ(c.held, 0);
  EXPECT_EQ(c.throttled_peers, 0);

  // The hammering peer: its first five failures are free, each later one is held (sequential
  // calls, so never more than one held at once, far below the cap).
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(CompleteAs(*hammer, "guess-" + std::to_string(i)), grpc::UNAUTHENTICATED);
  }
  c = Read(gateway);
  EXPECT_EQ(c.failures, 23);
  EXPECT_EQ(c.held, 15);
  EXPECT_EQ(c.throttled_peers, 1);

  // The other peer is not slowed by it: two more wrong keys (five in all, its own free ones)
  // and valid calls are answered without a hold.
  for (int i = 0; i < 2; ++i) EXPECT_EQ(CompleteAs(*other, "wrong"), grpc::UNAUTHENTICATED);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(CompleteAs(*other, kValidKey), grpc::OK);
  // Nor is the hammering peer's own valid key.
  EXPECT_EQ(CompleteAs(*hammer, kValidKey), grpc::OK);
  c = Read(gateway);
  EXPECT_EQ(c.failures, 25);
  EXPECT_EQ(c.held, 15) << gateway.process().Log();
  EXPECT_EQ(c.throttled_peers, 1);
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// POST /v1/chat/completions to `base` ("http://127.0.0.1:PORT") with `key`; the HTTP status.
long ChatOverHttp(const std::string& base, const std::string& key) {
  CURL* curl = curl_easy_init();
  const std::string url = base + "/v1/chat/completions";
  const std::string body = R"({"model":"chat","messages":[{"role":"user","content":"hi"}]})";
  curl_slist* headers = curl_slist_append(nullptr, "content-type: application/json");
  headers = curl_slist_append(headers, ("authorization: Bearer " + key).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return status;
}

// The same over the OpenAI-compatible HTTP door, whose refusals share the gateway's throttle.
TEST(PeerThrottleE2eTest, HttpDoorSlowsOnlyTheHammeringPeer) {
  TempDir dir;
  FakeProvider fake(dir);
  ASSERT_GT(fake.port(), 0) << fake.process().Log();
  Gateway gateway(dir, Config(fake.port()),
                  {"--http_listen=[::]:0", "--http_port_file=" + dir.File("http.port"),
                   "--allow_insecure_non_loopback"});
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();
  const int http_port = WaitForPort(dir.File("http.port"), gateway.process());
  ASSERT_GT(http_port, 0) << gateway.process().Log();
  const std::string hammer = "http://127.0.0.1:" + std::to_string(http_port);
  const std::string other = "http://[::1]:" + std::to_string(http_port);

  for (int i = 0; i < 3; ++i) EXPECT_EQ(ChatOverHttp(other, "wrong"), 401);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ChatOverHttp(hammer, "guess"), 401);
  Counts c = Read(gateway);
  EXPECT_EQ(c.failures, 23);
  EXPECT_EQ(c.held, 15);
  EXPECT_EQ(c.throttled_peers, 1);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(ChatOverHttp(other, "wrong"), 401);
  EXPECT_EQ(ChatOverHttp(other, kValidKey), 200);
  EXPECT_EQ(ChatOverHttp(hammer, kValidKey), 200);
  c = Read(gateway);
  EXPECT_EQ(c.failures, 25);
  EXPECT_EQ(c.held, 15) << gateway.process().Log();
  EXPECT_EQ(c.throttled_peers, 1);
}

}  // namespace
}  // namespace turnpike::testing
