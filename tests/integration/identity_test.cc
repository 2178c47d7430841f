// Caller keys and the master key with real processes (docs/admin.md, docs/security.md):
//   * a caller key with an expiry a few seconds ahead works, then the gateway refuses it with
//     UNAUTHENTICATED saying it expired, from its expiry on; a used key shows the minute of its
//     last use in the admin API after the gateway's next health report;
//   * a master key rotation killed (SIGKILL) between two batches loses no credential: the restart
//     finishes it, every credential still opens (a later start with the new key alone succeeds)
//     and the gateway still calls each provider with the right key.
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

template <class Req, class Resp, class Call>
grpc::Status Unary(Call call, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  return call(&ctx, req, resp);
}

// One completion of `capability` on `gateway` with `key` (none if empty).
grpc::Status CompleteWith(const std::string& gateway, const std::string& capability,
                          const std::string& key) {
  auto stub = v1::CompletionService::NewStub(
      grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  v1::CompleteRequest req = DemoRequest<v1::CompleteRequest>("hello");
  req.set_capability(capability);
  v1::CompleteResponse resp;
  return stub->Complete(&ctx, req, &resp);
}

TEST(CallerKeyTimesE2eTest, KeyExpiresAtItsSecondAndLastUseReachesTheAdminApi) {
  TempDir dir;
  FakeProvider fake(dir);
  ASSERT_GT(fake.port(), 0) << fake.process().Log();
  ControlPlane control(dir);
  ASSERT_GT(control.port(), 0) << control.process().Log();
  Admin admin(control.address(), control.admin_token());
  ASSERT_TRUE(admin.SeedDemo(fake.port(), "model-0").ok());
  auto stub =
      admin::v1::AdminService::NewStub(ControlChannel(control.address(), control.admin_token()));
  {  // A route that needs a key, and a caller that may use it.
    admin::v1::CreateRouteRequest route;
    route.mutable_route()->mutable_spec()->set_capability("keyed");
    auto* t = route.mutable_route()->mutable_spec()->add_targets();
    t->set_provider("fake");
    t->set_model("model-0");
    admin::v1::CreateRouteResponse r1;
    ASSERT_TRUE(Unary([&](auto* c, const auto& q, auto* p) { return stub->CreateRoute(c, q, p); },
                      route, &r1)
                    .ok());
    admin::v1::CreateCallerRequest caller;
    caller.mutable_caller()->mutable_spec()->set_name("claims");
    caller.mutable_caller()->mutable_spec()->add_allowed_capabilities("keyed");
    admin::v1::CreateCallerResponse r2;
    ASSERT_TRUE(Unary([&](auto* c, const auto& q, auto* p) { return stub->CreateCaller(c, q, p); },
                      caller, &r2)
                    .ok());
  }
  ASSERT_TRUE(admin.WriteNodeToken("keys-gw", dir.File("node.token")).ok());
  WatchSource source;
  source.control_plane = control.address();
  source.node_id = "keys-gw";
  source.node_token_file = dir.File("node.token");
  Gateway gateway(dir, source, {"--health_report_interval=200ms"});
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();

  // A key that expires 4 s from now, and one that does not expire.
  admin::v1::CreateCallerKeyRequest short_lived;
  short_lived.set_caller("claims");
  short_lived.set_key_id("short-lived");
  short_lived.mutable_ttl()->set_seconds(4);
  admin::v1::CreateCallerKeyResponse k1, k2;
  ASSERT_TRUE(Unary([&](auto* c, const auto& q, auto* p) { return stub->CreateCallerKey(c, q, p); },
                    short_lived, &k1)
                  .ok());
  admin::v1::CreateCallerKeyRequest lasting;
  lasting.set_caller("claims");
  lasting.set_key_id("lasting");
  ASSERT_TRUE(Unary([&](auto* c, const auto& q, auto* p) { return stub->CreateCallerKey(c, q, p); },
                    lasting, &k2)
                  .ok());
  const auto expiry =
      std::chrono::system_clock::time_point(seconds(k1.caller_key().expire_time().seconds()));
  ASSERT_TRUE(WaitFor([&] { return admin.AllAckedCurrent({"keys-gw"}); }, seconds(15)));

  grpc::Status before = CompleteWith(gateway.address(), "keyed", k1.key());
  ASSERT_TRUE(std::chrono::system_clock::now() < expiry) << "the test machine is too slow";
  EXPECT_TRUE(before.ok()) << before.error_message();
  grpc::Status refused;
  ASSERT_TRUE(WaitFor(
      [&] {
        refused = CompleteWith(gateway.address(), "keyed", k1.key());
        return !refused.ok();
      },
      seconds(15)));
  EXPECT_GE(std::chrono::system_clock::now(), expiry);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"short-lived\" expired at"));
  EXPECT_THAT(refused.error_message(), Not(HasSubstr(k1.key())));
  EXPECT_TRUE(CompleteWith(gateway.address(), "keyed", k2.key()).ok());
  EXPECT_THAT(gateway.process().Log(), Not(HasSubstr(k1.key())));

  // Both keys were used: the next health report carries the minute, the admin API shows it.
  const int64_t now_s =
      std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  admin::v1::GetCallerResponse got;
  ASSERT_TRUE(WaitFor(
      [&] {
        admin::v1::GetCallerRequest req;
        req.set_name("claims");
        if (!Unary([&](auto* c, const auto& q, auto* p) { return stub->GetCaller(c, q, p); }, req,
                   &got)
                 .ok()) {
          return false;
        }
        int used = 0;
        for (const auto& k : got.caller().keys()) used += k.has_last_used_time() ? 1 : 0;
        return used == 2;
      },
      seconds(15)))
      << got.DebugString();
  for (const auto& k : got.caller().keys()) {
    EXPECT_EQ(k.last_used_time().seconds() % 60, 0) << k.key_id();
    EXPECT_LE(k.last_used_time().seconds(), now_s);
    EXPECT_GT(k.last_used_time().seconds(), now_s - 180);
    if (k.key_id() == "short-lived") {
      EXPECT_EQ(k.expire_time().seconds(), k1.caller_key().expire_time().seconds());
    }
  }
}

void WriteKeyFile(const std::string& path, const std::string& hex) {
  std::ofstream(path) << hex << "\n";
  chmod(path.c_str(), 0400);
}

constexpr char kKeyA[] = "1111111111111111111111111111111111111111111111111111111111111111";
constexpr char kKeyB[] = "2222222222222222222222222222222222222222222222222222222222222222";
constexpr int kProviders = 3;

TEST(MasterKeyRotationE2eTest, SigkillBetweenBatchesLosesNothingAndRestartFinishes) {
  TempDir dir;
  WriteKeyFile(dir.File("a.key"), kKeyA);
  WriteKeyFile(dir.File("b.key"), kKeyB);
  // One fake provider per credential, each accepting only its own key: a request that works
  // proves the gateway got that credential's secret, decrypted right.
  std::vector<std::unique_ptr<TempDir>> fake_dirs;
  std::vector<std::unique_ptr<FakeProvider>> fakes;
  for (int i = 0; i < kProviders; ++i) {
    fake_dirs.push_back(std::make_unique<TempDir>());
    fakes.push_back(std::make_unique<FakeProvider>(
        *fake_dirs.back(), std::vector<std::string>{"--api_key=sk-provider-" + std::to_string(i)}));
    ASSERT_GT(fakes.back()->port(), 0);
  }
  auto control = std::make_unique<ControlPlane>(
      dir, 0, std::vector<std::string>{"--master_key_file=" + dir.File("a.key")});
  ASSERT_GT(control->port(), 0) << control->process().Log();
  const int port = control->port();
  const std::string token = control->admin_token();
  auto stub = admin::v1::AdminService::NewStub(ControlChannel(control->address(), token));
  auto call = [&](auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return ((*stub).*method)(&ctx, req, resp);
  };
  for (int i = 0; i < kProviders; ++i) {
    const std::string n = std::to_string(i);
    admin::v1::CreateCredentialRequest cred;
    cred.mutable_credential()->set_name("cred-" + n);
    cred.set_secret("sk-old-" + n);
    admin::v1::CreateCredentialResponse c1;
    ASSERT_TRUE(call(&admin::v1::AdminService::Stub::CreateCredential, cred, &c1).ok());
    admin::v1::RotateCredentialRequest rot;  // a PREVIOUS version to re-seal too
    rot.set_name("cred-" + n);
    rot.set_secret("sk-provider-" + n);
    admin::v1::RotateCredentialResponse c2;
    ASSERT_TRUE(call(&admin::v1::AdminService::Stub::RotateCredential, rot, &c2).ok());
    admin::v1::CreateProviderRequest p;
    auto* spec = p.mutable_provider()->mutable_spec();
    spec->set_name("p-" + n);
    spec->set_kind(config::v1::PROVIDER_KIND_OPENAI);
    spec->set_base_url(absl::StrCat("http://127.0.0.1:", fakes[i]->port(), "/v1"));
    spec->set_credential("cred-" + n);
    admin::v1::CreateProviderResponse p1;
    ASSERT_TRUE(call(&admin::v1::AdminService::Stub::CreateProvider, p, &p1).ok());
    admin::v1::CreateRouteRequest r;
    r.mutable_route()->mutable_spec()->set_capability("cap-" + n);
    r.mutable_route()->mutable_spec()->set_allow_unauthenticated(true);
    auto* t = r.mutable_route()->mutable_spec()->add_targets();
    t->set_provider("p-" + n);
    t->set_model("m");
    admin::v1::CreateRouteResponse r1;
    ASSERT_TRUE(call(&admin::v1::AdminService::Stub::CreateRoute, r, &r1).ok());
  }
  Admin admin(control->address(), token);
  ASSERT_TRUE(admin.WriteNodeToken("rot-gw", dir.File("node.token")).ok());
  WatchSource source;
  source.control_plane = control->address();
  source.node_id = "rot-gw";
  source.node_token_file = dir.File("node.token");
  Gateway gateway(dir, source);
  ASSERT_GT(gateway.port(), 0) << gateway.process().Log();
  auto every_provider_works = [&] {
    for (int i = 0; i < kProviders; ++i) {
      if (!CompleteWith(gateway.address(), "cap-" + std::to_string(i), "").ok()) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor([&] { return admin.AllAckedCurrent({"rot-gw"}) && every_provider_works(); },
                      seconds(15)));

  // Restart with the new key and the old one; rotate one version per batch, pausing between
  // batches, and kill the process after the first batch (one version under each key).
  control.reset();
  control = std::make_unique<ControlPlane>(
      dir, port,
      std::vector<std::string>{"--master_key_file=" + dir.File("b.key"),
                               "--previous_master_key_file=" + dir.File("a.key"),
                               "--master_key_rotation_batch=1",
                               "--master_key_rotation_test_pause=60s"});
  ASSERT_GT(control->port(), 0) << control->process().Log();
  auto rotation = std::async(std::launch::async, [&] {
    auto s = admin::v1::AdminService::NewStub(ControlChannel(control->address(), token));
    // The first call may meet the old process's dead connection: retry what never got sent.
    grpc::Status status;
    for (int attempt = 0; attempt < 50; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + seconds(120));
      admin::v1::RotateMasterKeyResponse resp;
      status = s->RotateMasterKey(&ctx, admin::v1::RotateMasterKeyRequest(), &resp);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
          control->process().Log().find("re-sealed") != std::string::npos) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return status;
  });
  ASSERT_TRUE(WaitFor(
      [&] {
        return control->process().Log().find("1 credential version(s) re-sealed, 5 left") !=
                   std::string::npos ||
               rotation.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      },
      seconds(30)));
  ASSERT_NE(rotation.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "RotateMasterKey ended early: " << rotation.get().error_message() << "\n"
      << control->process().Log();
  control->process().Signal(SIGKILL);
  ASSERT_TRUE(control->process().Wait(std::chrono::seconds(10)).has_value());
  EXPECT_FALSE(rotation.get().ok());  // it never finished
  // The gateway keeps serving from its snapshot meanwhile.
  EXPECT_TRUE(every_provider_works());

  // The old key alone no longer opens everything: refused at start, naming the fix.
  {
    ControlPlane old_only(dir, port, {"--master_key_file=" + dir.File("a.key")});
    EXPECT_LE(old_only.port(), 0);
    EXPECT_TRUE(old_only.process().Wait(std::chrono::seconds(10)).has_value());
    EXPECT_THAT(old_only.process().Log(), HasSubstr("--previous_master_key_file"));
  }
  // A restart with both keys finishes the rotation before serving.
  control = std::make_unique<ControlPlane>(
      dir, port,
      std::vector<std::string>{"--master_key_file=" + dir.File("b.key"),
                               "--previous_master_key_file=" + dir.File("a.key")});
  ASSERT_GT(control->port(), 0) << control->process().Log();
  EXPECT_THAT(control->process().Log(), HasSubstr("master key rotation finished: 5 credential"));
  {
    stub = admin::v1::AdminService::NewStub(ControlChannel(control->address(), token));
    admin::v1::RotateMasterKeyResponse again;
    ASSERT_TRUE(WaitFor(
        [&] {
          return call(&admin::v1::AdminService::Stub::RotateMasterKey,
                      admin::v1::RotateMasterKeyRequest(), &again)
              .ok();
        },
        seconds(10)));
    EXPECT_EQ(again.resealed(), 0);
    EXPECT_EQ(again.remaining(), 0);
  }
  // The new key alone now opens every credential version (the start checks each one), and the
  // gateway, watching it, still reaches every provider with the right key after a new snapshot.
  control.reset();
  control = std::make_unique<ControlPlane>(
      dir, port, std::vector<std::string>{"--master_key_file=" + dir.File("b.key")});
  ASSERT_GT(control->port(), 0) << control->process().Log();
  Admin after(control->address(), token);
  stub = admin::v1::AdminService::NewStub(ControlChannel(control->address(), token));
  admin::v1::CreateCallerRequest poke;  // any change: a new version every gateway must apply
  poke.mutable_caller()->mutable_spec()->set_name("after-rotation");
  admin::v1::CreateCallerResponse poked;
  ASSERT_TRUE(
      WaitFor([&] { return call(&admin::v1::AdminService::Stub::CreateCaller, poke, &poked).ok(); },
              seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return after.AllAckedCurrent({"rot-gw"}) && every_provider_works(); },
                      seconds(20)))
      << gateway.process().Log();
  for (const auto& log : {control->process().Log(), gateway.process().Log()}) {
    for (const char* secret : {"sk-provider-0", "sk-old-1", kKeyA, kKeyB}) {
      EXPECT_THAT(log, Not(HasSubstr(secret)));
    }
  }
}

}  // namespace
}  // namespace turnpike::testing
