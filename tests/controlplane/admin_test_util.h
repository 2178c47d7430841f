// Fixture pieces shared by the ConfigAdmin tests: a migrated store in a temporary directory, a
// SecretBox under a fixed test master key, a simulated clock, and the snapshots ConfigAdmin
// publishes, captured in order.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_ADMIN_TEST_UTIL_H_
#define TURNPIKE_TESTS_CONTROLPLANE_ADMIN_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "controlplane/config_admin.h"
#include "controlplane/secret_box.h"
#include "controlplane/store.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane::testing {

inline constexpr char kTestMasterKey[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
inline constexpr char kCanarySecret[] = "sk-CANARY-7f3a9c2e1b-do-not-leak";

// A hosted OpenAI provider when `credential` is given, else a local OpenAI-compatible server
// (the only kind that may have no key).
inline admin::v1::Provider MakeProvider(const std::string& name,
                                        const std::string& credential = "") {
  admin::v1::Provider p;
  p.mutable_spec()->set_name(name);
  p.mutable_spec()->set_kind(credential.empty() ? config::v1::PROVIDER_KIND_OPENAI_COMPATIBLE
                                                : config::v1::PROVIDER_KIND_OPENAI);
  p.mutable_spec()->set_base_url("http://127.0.0.1:9/v1");
  p.mutable_spec()->set_credential(credential);
  return p;
}

inline admin::v1::Route MakeRoute(const std::string& capability, const std::string& provider,
                                  const std::string& model = "gpt-4o-mini") {
  admin::v1::Route r;
  r.mutable_spec()->set_capability(capability);
  auto* t = r.mutable_spec()->add_targets();
  t->set_provider(provider);
  t->set_model(model);
  return r;
}

inline admin::v1::Caller MakeCaller(const std::string& name) {
  admin::v1::Caller c;
  c.mutable_spec()->set_name(name);
  c.mutable_spec()->add_allowed_capabilities("demo");
  return c;
}

inline admin::v1::CreateCredentialRequest MakeCredential(const std::string& name,
                                                         const std::string& secret) {
  admin::v1::CreateCredentialRequest r;
  r.mutable_credential()->set_name(name);
  r.set_secret(secret);
  return r;
}

// The google.rpc.BadRequest attached to `s`, if any.
inline google::rpc::BadRequest BadRequestOf(const absl::Status& s) {
  google::rpc::BadRequest br;
  auto payload = s.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  if (payload.has_value()) br.ParseFromString(std::string(*payload));
  return br;
}

inline std::vector<std::string> ViolatedFields(const absl::Status& s) {
  std::vector<std::string> out;
  google::rpc::BadRequest br = BadRequestOf(s);
  for (const auto& v : br.field_violations()) out.push_back(v.field());
  return out;
}

class AdminFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Store::Options o;
    o.path = dir_.File("admin.db");
    auto store = Store::Open(o, EmbeddedMigrations());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto key = MasterKey::Parse(kTestMasterKey);
    ASSERT_TRUE(key.ok());
    box_ = *SecretBox::Create(*key);
    auto admin = ConfigAdmin::Create(
        *store_, *box_, clock_,
        [this](std::shared_ptr<const config::v1::Snapshot> s) {
          absl::MutexLock lock(&mu_);
          published_.push_back(std::move(s));
        },
        ConfigAdmin::Options{});
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = *std::move(admin);
  }

  std::shared_ptr<const config::v1::Snapshot> LastPublished() {
    absl::MutexLock lock(&mu_);
    return published_.empty() ? nullptr : published_.back();
  }
  size_t PublishedCount() {
    absl::MutexLock lock(&mu_);
    return published_.size();
  }
  int64_t Version() { return admin_->GetConfigVersion()->version; }

  turnpike::testing::TempDir dir_;
  SimulatedClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<SecretBox> box_;
  std::unique_ptr<ConfigAdmin> admin_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<const config::v1::Snapshot>> published_;
};

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_ADMIN_TEST_UTIL_H_
