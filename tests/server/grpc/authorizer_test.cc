// Authorize() is the gateway's only gate between a caller's metadata and a route: these tests pin
// the gRPC code, message and ErrorInfo reason a client gets for each way of being refused, that
// every bad key gets the same answer (no oracle for which keys exist), and that no answer echoes
// the key it was sent. Client metadata is set with gRPC's own ServerContextTestSpouse, so the
// function under test is the one the server calls.
#include "server/grpc/authorizer.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "server/config/runtime_config.h"

namespace turnpike {
namespace {

// Keys and their lowercase hex SHA-256 digests (the only form a snapshot holds).
constexpr char kClaimsKey[] = "tp-claims-key-0001";
constexpr char kClaimsKeySha[] = "396f4001651cc2524606f91af565e3ef4430ac338a9800737e7b65a61d64b44d";
constexpr char kClaimsKey2[] = "tp-claims-key-0002";
constexpr char kClaimsKey2Sha[] =
    "e77411e121ca7a6dc175a05d39f68df8bbf650f000cae89529e81133a7a81c88";
constexpr char kOpsKey[] = "tp-ops-key-0001";
constexpr char kOpsKeySha[] = "ddff1ea7c2f68750a99f1e0f67963a1052153c180a2ff642af56217c0144928a";

constexpr char kInvalidKey[] = "invalid API key";

// The wall-clock time the tests authorize at (2027-01-15T08:00:00Z).
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::shared_ptr<const RuntimeConfig> Config(bool claims_has_first_key = true) {
  const std::string claims_keys =
      claims_has_first_key ? absl::StrCat("\"", kClaimsKeySha, "\",\"", kClaimsKey2Sha, "\"")
                           : absl::StrCat("\"", kClaimsKey2Sha, "\"");
  const std::string json = absl::StrCat(R"({"version":"auth-1",
    "providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:1/v1"}],
    "routes":[{"capability":"chat","targets":[{"provider":"p","model":"m"}]},
              {"capability":"admin-chat","targets":[{"provider":"p","model":"m"}]},
              {"capability":"open","targets":[{"provider":"p","model":"m"}],"allowUnauthenticated":true}],
    "callers":[{"name":"claims","keySha256":[)",
                                        claims_keys, R"(],"allowedCapabilities":["chat","open"],
                "certSans":["DNS:claims.internal","URI:spiffe://example.org/claims"]},
               {"name":"ops","keySha256":[")",
                                        kOpsKeySha, R"("],"allowedCapabilities":["*"],
                "certSans":["email:ops@example.org","IP:10.0.0.7"]}]})");
  absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(json);
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  // Build() resolves each target's upstream state; authorization never touches it.
  static SimulatedClock clock;
  static std::mt19937_64 gen{1};
  static Resilience resilience(Resilience::Options(), clock, gen);
  absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config = RuntimeConfig::Build(
      *snapshot, [](const std::string&) { return std::nullopt; }, resilience);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

// Authorize() on a server context carrying `authorization` metadata values (none if empty).
absl::StatusOr<Authorization> AuthorizeWith(const RuntimeConfig& config,
                                            const std::vector<std::string>& authorization,
                                            const std::string& capability) {
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  for (const std::string& value : authorization) spouse.AddClientMetadata("authorization", value);
  return Authorize(config, context, capability, kNow);
}

// What a gRPC client receives: code, message and the ErrorInfo reason in the rich details.
struct Refusal {
  grpc::StatusCode code;
  std::string message;
  std::string reason;
  std::string details;  // serialized grpc-status-details-bin, to search for leaked keys
};

Refusal AsClientSees(const absl::Status& status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  Refusal out{grpc_status.error_code(), grpc_status.error_message(), "",
              grpc_status.error_details()};
  google::rpc::Status rpc;
  if (rpc.ParseFromString(grpc_status.error_details())) {
    for (const auto& any : rpc.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info)) {
        out.reason = info.reason();
        EXPECT_EQ(info.domain(), kErrorDomain);
      }
    }
  }
  return out;
}

TEST(AuthorizerTest, KnownKeyOnAnAllowedCapabilityNamesTheCallerAndRoute) {
  auto config = Config();
  auto auth = AuthorizeWith(*config, {absl::StrCat("Bearer ", kClaimsKey)}, "chat");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->caller, "claims");
  ASSERT_NE(auth->route, nullptr);
  EXPECT_EQ(auth->route->capability, "chat");
  // Every active key of a caller works, and "*" allows any capability.
  auto second = AuthorizeWith(*config, {absl::StrCat("Bearer ", kClaimsKey2)}, "chat");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->caller, "claims");
  auto ops = AuthorizeWith(*config, {absl::StrCat("Bearer ", kOpsKey)}, "admin-chat");
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ(ops->caller, "ops");
}

TEST(AuthorizerTest, SchemeIsCaseInsensitiveAndSurroundingWhitespaceIsIgnored) {
  auto config = Config();
  for (const std::string& value :
       {absl::StrCat("bearer ", kClaimsKey), absl::StrCat("BEARER ", kClaimsKey),
        absl::StrCat("  Bearer   ", kClaimsKey, "  ")}) {
    auto auth = AuthorizeWith(*config, {value}, "chat");
    ASSERT_TRUE(auth.ok()) << "'" << value << "': " << auth.status();
    EXPECT_EQ(auth->caller, "claims");
  }
}

TEST(AuthorizerTest, NoKeyOnAClosedRouteIsUnauthenticatedAndSaysHowToSendOne) {
  auto config = Config();
  auto auth = AuthorizeWith(*config, {}, "chat");
  ASSERT_FALSE(auth.ok());
  const Refusal r = AsClientSees(auth.status());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(r.message, "missing API key: send \"authorization: Bearer <key>\" metadata");
  EXPECT_EQ(r.reason, "UNAUTHENTICATED");
}

TEST(AuthorizerTest, NoKeyOnAnOpenRouteIsAllowedAnonymously) {
  auto config = Config();
  auto auth = AuthorizeWith(*config, {}, "open");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->caller, "");
  ASSERT_NE(auth->route, nullptr);
  EXPECT_EQ(auth->route->capability, "open");
}

TEST(AuthorizerTest, AKeyOnAnOpenRouteIsStillChecked) {
  auto config = Config();
  // A known caller is identified (for limits and accounting) even where no key is needed...
  auto known = AuthorizeWith(*config, {absl::StrCat("Bearer ", kClaimsKey)}, "open");
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_EQ(known->caller, "claims");
  // ...and a bad key is refused rather than silently treated as anonymous.
  auto bad = AuthorizeWith(*config, {"Bearer not-a-key"}, "open");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(AsClientSees(bad.status()).code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(AsClientSees(bad.status()).message, kInvalidKey);
}

TEST(AuthorizerTest, MalformedHeaderIsUnauthenticatedWithTheExpectedForm) {
  auto config = Config();
  for (const std::string& value : {std::string(kClaimsKey), absl::StrCat("Basic ", kClaimsKey),
                                   absl::StrCat("Bearer", kClaimsKey), std::string("Bearer"),
                                   std::string(""), std::string("   ")}) {
    auto auth = AuthorizeWith(*config, {value}, "chat");
    ASSERT_FALSE(auth.ok()) << "'" << value << "' was accepted";
    const Refusal r = AsClientSees(auth.status());
    EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED) << "'" << value << "'";
    EXPECT_EQ(r.message, "authorization must be \"Bearer <key>\"") << "'" << value << "'";
    EXPECT_EQ(r.reason, "UNAUTHENTICATED");
  }
}

TEST(AuthorizerTest, TwoAuthorizationHeadersAreRefusedEvenIfBothAreValid) {
  auto config = Config();
  auto auth = AuthorizeWith(
      *config, {absl::StrCat("Bearer ", kClaimsKey), absl::StrCat("Bearer ", kOpsKey)}, "chat");
  ASSERT_FALSE(auth.ok());
  const Refusal r = AsClientSees(auth.status());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(r.message, "more than one authorization header");
}

TEST(AuthorizerTest, UnknownKeyIsUnauthenticatedWithOneMessageForEveryBadKey) {
  auto config = Config();
  const std::string key = kClaimsKey;
  // Near misses of a real key must fail the same way as a random one: the comparison is on the
  // whole key's digest, and the message does not say how close the guess was.
  const std::vector<std::string> bad_keys = {
      "sk-random-guess",
      key.substr(0, key.size() - 1),        // a prefix
      key + "1",                            // an extension
      key.substr(0, key.size() - 1) + "9",  // last character changed
      "x" + key.substr(1),                  // first character changed
      kClaimsKeySha,                        // the stored digest itself is not a key
      absl::AsciiStrToUpper(key),           // keys are case-sensitive
  };
  for (const std::string& bad : bad_keys) {
    auto auth = AuthorizeWith(*config, {"Bearer " + bad}, "chat");
    ASSERT_FALSE(auth.ok()) << "'" << bad << "' was accepted";
    const Refusal r = AsClientSees(auth.status());
    EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED) << bad;
    EXPECT_EQ(r.message, kInvalidKey) << bad;
    EXPECT_EQ(r.reason, "UNAUTHENTICATED") << bad;
  }
}

TEST(AuthorizerTest, UnknownKeyIsRefusedBeforeTheCapabilityIsLookedUp) {
  auto config = Config();
  // A bad key learns nothing about which capabilities exist: not NOT_FOUND, not PERMISSION_DENIED.
  for (const char* capability : {"chat", "no-such-capability"}) {
    auto auth = AuthorizeWith(*config, {"Bearer sk-random-guess"}, capability);
    ASSERT_FALSE(auth.ok());
    EXPECT_EQ(AsClientSees(auth.status()).code, grpc::StatusCode::UNAUTHENTICATED) << capability;
    EXPECT_EQ(AsClientSees(auth.status()).message, kInvalidKey) << capability;
  }
}

TEST(AuthorizerTest, RevokedKeyIsRefusedLikeAnUnknownOneWhileTheCallersOtherKeyStillWorks) {
  // Revoking a key publishes a snapshot without its digest.
  auto before = Config(/*claims_has_first_key=*/true);
  ASSERT_TRUE(AuthorizeWith(*before, {absl::StrCat("Bearer ", kClaimsKey)}, "chat").ok());
  auto after = Config(/*claims_has_first_key=*/false);
  auto revoked = AuthorizeWith(*after, {absl::StrCat("Bearer ", kClaimsKey)}, "chat");
  ASSERT_FALSE(revoked.ok());
  const Refusal r = AsClientSees(revoked.status());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(r.message, kInvalidKey);
  auto other = AuthorizeWith(*after, {absl::StrCat("Bearer ", kClaimsKey2)}, "chat");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->caller, "claims");
}

TEST(AuthorizerTest, CapabilityNotAllowedIsPermissionDeniedNamingCallerAndCapability) {
  auto config = Config();
  auto auth = AuthorizeWith(*config, {absl::StrCat("Bearer ", kClaimsKey)}, "admin-chat");
  ASSERT_FALSE(auth.ok());
  const Refusal r = AsClientSees(auth.status());
  EXPECT_EQ(r.code, grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(r.message, "caller \"claims\" may not use capability \"admin-chat\"");
  EXPECT_EQ(r.reason, "CAPABILITY_NOT_ALLOWED");
}

TEST(AuthorizerTest, UnknownCapabilityIsNotFoundForAKnownCaller) {
  auto config = Config();
  auto auth = AuthorizeWith(*config, {absl::StrCat("Bearer ", kOpsKey)}, "no-such-capability");
  ASSERT_FALSE(auth.ok());
  const Refusal r = AsClientSees(auth.status());
  EXPECT_EQ(r.code, grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(r.message, "no route for capability \"no-such-capability\"");
  EXPECT_EQ(r.reason, "CAPABILITY_NOT_FOUND");
}

TEST(AuthorizerTest, NoRefusalEchoesTheKeyItWasSent) {
  auto config = Config();
  const std::string secret = "sk-live-DO-NOT-LOG-5f3a9c";
  struct Case {
    std::vector<std::string> authorization;
    std::string capability;
  };
  const std::vector<Case> cases = {
      {{"Bearer " + secret}, "chat"},                                 // unknown key
      {{secret}, "chat"},                                             // malformed
      {{"Basic " + secret}, "chat"},                                  // wrong scheme
      {{"Bearer " + secret, "Bearer " + secret}, "chat"},             // duplicated
      {{absl::StrCat("Bearer ", kClaimsKey)}, "admin-chat"},          // not allowed
      {{absl::StrCat("Bearer ", kClaimsKey)}, "no-such-capability"},  // no route
  };
  for (const Case& c : cases) {
    auto auth = AuthorizeWith(*config, c.authorization, c.capability);
    ASSERT_FALSE(auth.ok()) << c.authorization.front();
    const Refusal r = AsClientSees(auth.status());
    for (const std::string& key : {secret, std::string(kClaimsKey)}) {
      EXPECT_EQ(r.message.find(key), std::string::npos) << r.message;
      EXPECT_EQ(r.details.find(key), std::string::npos) << "key in the rich error details";
      EXPECT_EQ(std::string(auth.status().ToString()).find(key), std::string::npos)
          << "key in the absl status (logged by the server): " << auth.status();
    }
  }
}

}  // namespace
}  // namespace turnpike

namespace turnpike {
namespace {

// Mutual TLS (docs/tls.md): the SANs of a verified client certificate, typed as in cert_sans.
absl::StatusOr<Authorization> AuthorizeWithCertificate(const RuntimeConfig& config,
                                                       std::vector<std::string> sans,
                                                       const std::string& capability,
                                                       const std::string& authorization = "") {
  CallerCredentials credentials;
  credentials.cert_sans = std::move(sans);
  if (!authorization.empty()) credentials.authorization.push_back(authorization);
  return Authorize(config, credentials, capability, kNow);
}

TEST(AuthorizerCertificateTest, AnySanOfTheCallerIdentifiesIt) {
  auto config = Config();
  EXPECT_TRUE(config->has_cert_callers());
  for (const std::string san : {"DNS:claims.internal", "URI:spiffe://example.org/claims"}) {
    auto auth = AuthorizeWithCertificate(*config, {"DNS:other.internal", san}, "chat");
    ASSERT_TRUE(auth.ok()) << san << ": " << auth.status();
    EXPECT_EQ(auth->caller, "claims");  // the same name a key gives: usage and logs agree
    EXPECT_EQ(auth->method, AuthMethod::kCertificate);
  }
  auto ops = AuthorizeWithCertificate(*config, {"IP:10.0.0.7"}, "admin-chat");
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ(ops->caller, "ops");
}

TEST(AuthorizerCertificateTest, SansAreTyped) {
  auto config = Config();
  // The same text under another type is another name.
  auto auth = AuthorizeWithCertificate(*config, {"URI:claims.internal", "DNS:10.0.0.7"}, "chat");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthorizerCertificateTest, KeyAndCertificateMustNameTheSameCaller) {
  auto config = Config();
  auto same = AuthorizeWithCertificate(*config, {"DNS:claims.internal"}, "chat",
                                       absl::StrCat("Bearer ", kClaimsKey));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->caller, "claims");
  EXPECT_EQ(same->method, AuthMethod::kKeyAndCertificate);
  auto other = AuthorizeWithCertificate(*config, {"DNS:claims.internal"}, "chat",
                                        absl::StrCat("Bearer ", kOpsKey));
  ASSERT_FALSE(other.ok());
  const Refusal r = AsClientSees(other.status());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(r.message,
            "the API key is caller \"ops\"'s but the client certificate is caller \"claims\"'s; "
            "send one caller's credentials");
  EXPECT_EQ(r.details.find(kOpsKey), std::string::npos);
}

TEST(AuthorizerCertificateTest, ACertificateNamingTwoCallersIsRefused) {
  auto config = Config();
  auto auth = AuthorizeWithCertificate(*config, {"DNS:claims.internal", "IP:10.0.0.7"}, "open");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(auth.status().message().find("names two callers"), std::string::npos);
}

TEST(AuthorizerCertificateTest, AnUnmappedCertificateIsAnonymous) {
  auto config = Config();
  // Encrypted and verified, but no caller: a closed route asks for a key, an open one lets in.
  auto closed = AuthorizeWithCertificate(*config, {"DNS:unknown.internal"}, "chat");
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(closed.status().message().find("the client certificate names no caller"),
            std::string::npos);
  auto open = AuthorizeWithCertificate(*config, {"DNS:unknown.internal"}, "open");
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(open->caller, "");
  // A key still works beside it.
  auto keyed = AuthorizeWithCertificate(*config, {"DNS:unknown.internal"}, "chat",
                                        absl::StrCat("Bearer ", kClaimsKey));
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_EQ(keyed->method, AuthMethod::kKey);
}

TEST(AuthorizerCertificateTest, CertificateCallerStillNeedsTheCapability) {
  auto config = Config();
  auto auth = AuthorizeWithCertificate(*config, {"DNS:claims.internal"}, "admin-chat");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace turnpike

namespace turnpike {
namespace {

// Keys with an id and an expiry (snapshot Caller.keys), as the control plane sends them.
std::shared_ptr<const RuntimeConfig> ExpiringConfig(KeyUseTable* uses) {
  const std::string json =
      absl::StrCat(R"({"version":"auth-2",
    "providers":[{"name":"p","kind":"PROVIDER_KIND_OPENAI_COMPATIBLE","baseUrl":"http://127.0.0.1:1/v1"}],
    "routes":[{"capability":"chat","targets":[{"provider":"p","model":"m"}]}],
    "callers":[{"name":"claims","keySha256":[")",
                   kClaimsKeySha, "\",\"", kClaimsKey2Sha, R"("],
                "keys":[{"keySha256":")",
                   kClaimsKeySha, R"(","keyId":"claims-key-1","expireUnixSeconds":")",
                   absl::ToUnixSeconds(kNow) + 10, R"("},
                        {"keySha256":")",
                   kClaimsKey2Sha, R"(","keyId":"claims-key-2"}],
                "allowedCapabilities":["chat"]}]})");
  absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(json);
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  static SimulatedClock clock;
  static std::mt19937_64 gen{1};
  static Resilience resilience(Resilience::Options(), clock, gen);
  absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config = RuntimeConfig::Build(
      *snapshot, [](const std::string&) { return std::nullopt; }, resilience, uses);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

absl::StatusOr<Authorization> AuthorizeAt(const RuntimeConfig& config, const std::string& key,
                                          absl::Time now) {
  CallerCredentials credentials;
  const std::string value = absl::StrCat("Bearer ", key);
  credentials.authorization.push_back(value);
  return Authorize(config, credentials, "chat", now);
}

TEST(AuthorizerExpiryTest, KeyWorksUntilTheSecondItExpiresThenSaysItExpired) {
  auto config = ExpiringConfig(nullptr);
  EXPECT_TRUE(AuthorizeAt(*config, kClaimsKey, kNow + absl::Seconds(9)).ok());
  EXPECT_TRUE(AuthorizeAt(*config, kClaimsKey, kNow + absl::Milliseconds(9999)).ok());
  for (absl::Duration after : {absl::Seconds(10), absl::Hours(24 * 400)}) {
    Refusal r = AsClientSees(AuthorizeAt(*config, kClaimsKey, kNow + after).status());
    EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(r.reason, "KEY_EXPIRED");
    EXPECT_EQ(r.message,
              "API key \"claims-key-1\" expired at 2027-01-15T08:00:10Z; ask for a new key");
    EXPECT_EQ(r.details.find(kClaimsKey), std::string::npos);
    EXPECT_EQ(r.message.find(kClaimsKey), std::string::npos);
  }
  // The caller's other key has no expiry.
  EXPECT_TRUE(AuthorizeAt(*config, kClaimsKey2, kNow + absl::Hours(24 * 400)).ok());
  // An unknown key still gets the one answer for every bad key.
  Refusal unknown = AsClientSees(AuthorizeAt(*config, kOpsKey, kNow).status());
  EXPECT_EQ(unknown.message, kInvalidKey);
}

TEST(AuthorizerExpiryTest, UsesAreNotedToTheMinuteAndSurviveANewSnapshot) {
  KeyUseTable uses;
  auto config = ExpiringConfig(&uses);
  EXPECT_TRUE(uses.Uses().empty());
  const absl::Time minute = absl::FromUnixSeconds(absl::ToUnixSeconds(kNow) / 60 * 60);
  ASSERT_TRUE(AuthorizeAt(*config, kClaimsKey2, kNow + absl::Seconds(5)).ok());
  using Uses = std::vector<std::pair<std::string, int64_t>>;
  EXPECT_EQ(uses.Uses(), (Uses{{"claims-key-2", absl::ToUnixSeconds(minute)}}));
  // A refused (expired) or unknown key is not a use.
  ASSERT_FALSE(AuthorizeAt(*config, kClaimsKey, kNow + absl::Minutes(5)).ok());
  ASSERT_FALSE(AuthorizeAt(*config, kOpsKey, kNow + absl::Minutes(5)).ok());
  EXPECT_EQ(uses.Uses(), (Uses{{"claims-key-2", absl::ToUnixSeconds(minute)}}));
  // The next snapshot resolves the same slot: the use carries over, and moves forward only.
  auto next = ExpiringConfig(&uses);
  ASSERT_TRUE(AuthorizeAt(*next, kClaimsKey, kNow + absl::Seconds(1)).ok());
  ASSERT_TRUE(AuthorizeAt(*next, kClaimsKey2, kNow + absl::Minutes(3)).ok());
  ASSERT_TRUE(AuthorizeAt(*config, kClaimsKey2, kNow + absl::Minutes(1)).ok());  // late reader
  EXPECT_EQ(uses.Uses(), (Uses{{"claims-key-1", absl::ToUnixSeconds(minute)},
                               {"claims-key-2", absl::ToUnixSeconds(minute + absl::Minutes(3))}}));
}

TEST(AuthorizerExpiryTest, ABadKeyEntryIsRejectedNamingTheField) {
  absl::StatusOr<config::v1::Snapshot> snapshot = ParseSnapshotJson(R"({"version":"x",
    "callers":[{"name":"c","keys":[{"keySha256":"ABC","keyId":"k"}]}]})");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  SimulatedClock clock;
  std::mt19937_64 gen{1};
  Resilience resilience(Resilience::Options(), clock, gen);
  auto config = RuntimeConfig::Build(
      *snapshot, [](const std::string&) { return std::nullopt; }, resilience);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("callers[0].keys[0].key_sha256"), std::string::npos)
      << config.status();
}

}  // namespace
}  // namespace turnpike
