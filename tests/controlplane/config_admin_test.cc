// ConfigAdmin behaviour: referential integrity, optimistic concurrency, update masks,
// pagination, versions and audit, credentials (sealing, rotation, retirement) and caller keys.
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "controlplane/caller_keys.h"
#include "controlplane/config_tables.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class ConfigAdminTest : public AdminFixture {};

std::string ErrorReason(const absl::Status& s) {
  google::rpc::ErrorInfo info;
  auto payload = s.GetPayload("type.googleapis.com/google.rpc.ErrorInfo");
  if (payload.has_value()) info.ParseFromString(std::string(*payload));
  return info.reason();
}

TEST_F(ConfigAdminTest, InitialSnapshotIsPublishedAtStart) {
  ASSERT_NE(LastPublished(), nullptr);
  EXPECT_EQ(LastPublished()->version(), "1");
  EXPECT_EQ(LastPublished()->providers_size(), 0);
}

TEST_F(ConfigAdminTest, RouteToMissingProviderIsFailedPrecondition) {
  auto r = admin_->CreateResource(MakeRoute("demo", "ghost"), "t");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(ViolatedFields(r.status()), Contains("route.spec.targets[0].provider"));
  EXPECT_EQ(ErrorReason(r.status()), "REFERENCE_NOT_FOUND");
  auto p = admin_->CreateResource(MakeProvider("fake", "missing-cred"), "t");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(p.status()), Contains("provider.spec.credential"));
}

TEST_F(ConfigAdminTest, DeletingAResourceInUseIsFailedPrecondition) {
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("key", "s"), "t").ok());
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake", "key"), "t").ok());
  ASSERT_TRUE(admin_->CreateResource(MakeRoute("demo", "fake"), "t").ok());
  absl::Status s = admin_->DeleteResource<admin::v1::Provider>("fake", 0, "t");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("routes demo"));
  EXPECT_EQ(ErrorReason(s), "RESOURCE_IN_USE");
  s = admin_->DeleteCredential("key", 0, "t");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("providers fake"));
  // Once the route is gone the provider can go, then the credential.
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Route>("demo", 0, "t").ok());
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Provider>("fake", 0, "t").ok());
  ASSERT_TRUE(admin_->DeleteCredential("key", 0, "t").ok());
  EXPECT_EQ(admin_->GetResource<admin::v1::Provider>("fake").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ConfigAdminTest, DuplicateCreateIsAlreadyExists) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  EXPECT_EQ(admin_->CreateResource(MakeProvider("fake"), "t").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(ConfigAdminTest, StaleRevisionIsAborted) {
  auto created = admin_->CreateResource(MakeProvider("fake"), "t");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->revision(), 1);
  admin::v1::Provider update = *created;
  update.mutable_spec()->set_base_url("http://127.0.0.1:10/v1");
  auto first = admin_->UpdateResource(update, {}, "alice");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->revision(), 2);
  // Bob read revision 1 too; his update must not silently overwrite Alice's.
  update.mutable_spec()->set_base_url("http://127.0.0.1:11/v1");
  auto second = admin_->UpdateResource(update, {}, "bob");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ErrorReason(second.status()), "REVISION_MISMATCH");
  EXPECT_EQ(admin_->GetResource<admin::v1::Provider>("fake")->spec().base_url(),
            "http://127.0.0.1:10/v1");
  EXPECT_EQ(admin_->DeleteResource<admin::v1::Provider>("fake", 1, "bob").code(),
            absl::StatusCode::kAborted);
  // Revision 0 means "no check".
  update.set_revision(0);
  EXPECT_TRUE(admin_->UpdateResource(update, {}, "bob").ok());
}

TEST_F(ConfigAdminTest, UpdateMaskChangesOnlyNamedFields) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  ASSERT_TRUE(admin_->CreateResource(MakeRoute("demo", "fake"), "t").ok());
  admin::v1::Route patch;
  patch.mutable_spec()->set_capability("demo");
  patch.mutable_spec()->set_allow_unauthenticated(true);
  google::protobuf::FieldMask mask;
  mask.add_paths("spec.allow_unauthenticated");
  auto out = admin_->UpdateResource(patch, mask, "t");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->spec().allow_unauthenticated());
  ASSERT_EQ(out->spec().targets_size(), 1);  // untouched
  EXPECT_EQ(out->spec().targets(0).model(), "gpt-4o-mini");

  google::protobuf::FieldMask bad;
  bad.add_paths("revision");
  EXPECT_THAT(ViolatedFields(admin_->UpdateResource(patch, bad, "t").status()),
              Contains("update_mask"));
  bad.set_paths(0, "spec.no_such_field");
  EXPECT_THAT(ViolatedFields(admin_->UpdateResource(patch, bad, "t").status()),
              Contains("update_mask"));
  // Replacing the targets with a dangling provider is caught after the merge.
  admin::v1::Route dangling = MakeRoute("demo", "ghost");
  google::protobuf::FieldMask targets;
  targets.add_paths("spec.targets");
  EXPECT_EQ(admin_->UpdateResource(dangling, targets, "t").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(admin_->UpdateResource(MakeRoute("nope", "fake"), {}, "t").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ConfigAdminTest, ListsArePaginatedInNameOrder) {
  for (int i = 24; i >= 0; --i) {
    ASSERT_TRUE(admin_->CreateResource(MakeCaller("caller-" + std::to_string(100 + i)), "t").ok());
  }
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    auto page = admin_->ListResources<admin::v1::Caller>(10, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->items.size(), 10u);
    for (const auto& c : page->items) names.push_back(c.spec().name());
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 25u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "caller-100");
  auto all = admin_->ListResources<admin::v1::Caller>(0, "");
  EXPECT_EQ(all->items.size(), 25u);
  EXPECT_TRUE(all->next_page_token.empty());
}

TEST_F(ConfigAdminTest, EveryChangeBumpsVersionAuditsAndPublishes) {
  int64_t v0 = Version();
  size_t p0 = PublishedCount();
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "alice").ok());
  admin::v1::Provider update = MakeProvider("fake");
  update.mutable_spec()->set_base_url("http://127.0.0.1:12/v1");
  ASSERT_TRUE(admin_->UpdateResource(update, {}, "bob").ok());
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Provider>("fake", 0, "carol").ok());
  EXPECT_EQ(Version(), v0 + 3);
  EXPECT_EQ(PublishedCount(), p0 + 3);
  EXPECT_EQ(LastPublished()->version(), std::to_string(v0 + 3));
  // A rejected change leaves no trace.
  EXPECT_FALSE(admin_->DeleteResource<admin::v1::Provider>("fake", 0, "dave").ok());
  EXPECT_EQ(Version(), v0 + 3);

  auto audit = admin_->ListAuditEntries(10, "");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->items.size(), 3u);
  const auto& del = audit->items[0];  // newest first
  EXPECT_EQ(del.actor(), "carol");
  EXPECT_EQ(del.action(), "DeleteProvider");
  EXPECT_EQ(del.resource_type(), "provider");
  EXPECT_EQ(del.resource_name(), "fake");
  EXPECT_THAT(del.before_json(), HasSubstr("127.0.0.1:12"));
  EXPECT_TRUE(del.after_json().empty());
  EXPECT_EQ(del.config_version(), std::to_string(v0 + 3));
  const auto& upd = audit->items[1];
  EXPECT_EQ(upd.actor(), "bob");
  EXPECT_THAT(upd.before_json(), HasSubstr("127.0.0.1:9"));
  EXPECT_THAT(upd.after_json(), HasSubstr("127.0.0.1:12"));
  EXPECT_TRUE(audit->items[2].before_json().empty());
  auto page = admin_->ListAuditEntries(2, "");
  ASSERT_FALSE(page->next_page_token.empty());
  auto rest = admin_->ListAuditEntries(2, page->next_page_token);
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].action(), "CreateProvider");
}

TEST_F(ConfigAdminTest, SnapshotCarriesDecryptedKeyButNothingElseDoes) {
  auto cred = admin_->CreateCredential(MakeCredential("openai-key", kCanarySecret), "t");
  ASSERT_TRUE(cred.ok()) << cred.status();
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("openai", "openai-key"), "t").ok());
  auto snap = LastPublished();
  ASSERT_EQ(snap->providers_size(), 1);
  EXPECT_EQ(snap->providers(0).api_key(), kCanarySecret);
  EXPECT_EQ(snap->providers(0).credential(), "openai-key");
  EXPECT_EQ(snap->providers(0).credential_version(), 1);

  // Responses, lists, audit and the database file never hold the secret.
  EXPECT_THAT(cred->DebugString(), Not(HasSubstr(kCanarySecret)));
  EXPECT_THAT(admin_->GetCredential("openai-key")->DebugString(), Not(HasSubstr(kCanarySecret)));
  EXPECT_THAT(admin_->ListCredentials(0, "")->items[0].DebugString(),
              Not(HasSubstr(kCanarySecret)));
  EXPECT_EQ(cred->versions(0).fingerprint(), box_->Fingerprint(kCanarySecret));
  auto audit = admin_->ListAuditEntries(100, "");
  ASSERT_TRUE(audit.ok());
  for (const auto& e : audit->items) {
    EXPECT_THAT(e.DebugString(), Not(HasSubstr(kCanarySecret)));
  }
  store_.reset();  // closes the connections (checkpoints the WAL)
  std::ifstream in(dir_.File("admin.db"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_THAT(bytes.str(), Not(HasSubstr(kCanarySecret)));
  EXPECT_THAT(bytes.str(), Not(HasSubstr("CANARY")));
}

TEST_F(ConfigAdminTest, RotationOverlapsVersionsUntilRetirement) {
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("k", "secret-v1"), "t").ok());
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("p", "k"), "t").ok());
  admin::v1::RotateCredentialRequest rotate;
  rotate.set_name("k");
  rotate.set_secret("secret-v2");
  rotate.set_revision(1);
  rotate.mutable_grace_period()->set_seconds(3600);
  auto rotated = admin_->RotateCredential(rotate, "t");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->active_version(), 2);
  EXPECT_EQ(rotated->revision(), 2);
  ASSERT_EQ(rotated->versions_size(), 2);
  EXPECT_EQ(rotated->versions(0).state(), admin::v1::CREDENTIAL_VERSION_STATE_ACTIVE);
  EXPECT_EQ(rotated->versions(1).state(), admin::v1::CREDENTIAL_VERSION_STATE_PREVIOUS);
  EXPECT_EQ(rotated->versions(1).retire_time().seconds() - rotated->update_time().seconds(), 3600);
  EXPECT_NE(rotated->versions(0).fingerprint(), rotated->versions(1).fingerprint());
  EXPECT_EQ(LastPublished()->providers(0).api_key(), "secret-v2");
  EXPECT_EQ(LastPublished()->providers(0).credential_version(), 2);

  // Stale revision and retiring the active version are refused.
  EXPECT_EQ(admin_->RotateCredential(rotate, "t").status().code(), absl::StatusCode::kAborted);
  admin::v1::RetireCredentialVersionRequest retire_active;
  retire_active.set_name("k");
  retire_active.set_version(2);
  EXPECT_EQ(admin_->RetireCredentialVersion(retire_active, "t").status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Nothing is due before the grace period ends.
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(*admin_->RetireExpiredCredentialVersions(), 0);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(*admin_->RetireExpiredCredentialVersions(), 1);
  auto after = admin_->GetCredential("k");
  EXPECT_EQ(after->versions(1).state(), admin::v1::CREDENTIAL_VERSION_STATE_RETIRED);
  auto audit = admin_->ListAuditEntries(1, "");
  EXPECT_EQ(audit->items[0].actor(), "system");
  // The retired ciphertext is destroyed.
  ASSERT_TRUE(
      store_
          ->Read([](SqliteDb& db) -> absl::Status {
            EXPECT_EQ(*db.QueryInt("SELECT count(*) FROM credential_versions WHERE sealed IS NULL"),
                      1);
            return absl::OkStatus();
          })
          .ok());
}

TEST_F(ConfigAdminTest, ExplicitRetirementAndDefaultGracePeriod) {
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("k", "v1"), "t").ok());
  admin::v1::RotateCredentialRequest rotate;
  rotate.set_name("k");
  rotate.set_secret("v2");
  auto rotated = admin_->RotateCredential(rotate, "t");
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->versions(1).retire_time().seconds() - rotated->update_time().seconds(),
            24 * 3600);
  admin::v1::RetireCredentialVersionRequest retire;
  retire.set_name("k");
  retire.set_version(1);
  auto retired = admin_->RetireCredentialVersion(retire, "t");
  ASSERT_TRUE(retired.ok()) << retired.status();
  EXPECT_EQ(retired->versions(1).state(), admin::v1::CREDENTIAL_VERSION_STATE_RETIRED);
  int64_t v = Version();
  EXPECT_TRUE(admin_->RetireCredentialVersion(retire, "t").ok());  // idempotent
  EXPECT_EQ(Version(), v);
  retire.set_version(7);
  EXPECT_EQ(admin_->RetireCredentialVersion(retire, "t").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ConfigAdminTest, WrongMasterKeyIsRefusedAtStart) {
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("k", "v1"), "t").ok());
  auto other = MasterKey::Parse("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto other_box = SecretBox::Create(*other);
  auto admin = ConfigAdmin::Create(*store_, **other_box, clock_, nullptr, {});
  ASSERT_FALSE(admin.ok());
  EXPECT_EQ(admin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(admin.status().message(), HasSubstr("master key"));
}

TEST_F(ConfigAdminTest, CallerKeysAreShownOnceAndShippedAsDigests) {
  ASSERT_TRUE(admin_->CreateResource(MakeCaller("claims"), "t").ok());
  auto key = admin_->CreateCallerKey("claims", "", "t");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(IsWellFormedCallerKey(key->key()));
  EXPECT_EQ(key->caller_key().prefix(), key->key().substr(0, 12));
  auto snap = LastPublished();
  ASSERT_EQ(snap->callers_size(), 1);
  EXPECT_THAT(snap->callers(0).key_sha256(), ElementsAre(Sha256Hex(key->key())));
  EXPECT_EQ(snap->callers(0).tier(), "standard");
  auto caller = admin_->GetResource<admin::v1::Caller>("claims");
  ASSERT_EQ(caller->keys_size(), 1);
  EXPECT_EQ(caller->revision(), 2);
  EXPECT_THAT(caller->DebugString(), Not(HasSubstr(key->key())));
  auto audit = admin_->ListAuditEntries(100, "");
  ASSERT_TRUE(audit.ok());
  for (const auto& e : audit->items) {
    EXPECT_THAT(e.DebugString(), Not(HasSubstr(key->key())));
  }

  auto revoked = admin_->RevokeCallerKey("claims", key->caller_key().key_id(), "t");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->has_revoke_time());
  EXPECT_EQ(LastPublished()->callers(0).key_sha256_size(), 0);
  EXPECT_EQ(admin_->RevokeCallerKey("claims", "nope", "t").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(admin_->CreateCallerKey("ghost", "", "t").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ConfigAdminTest, CallerKeyIdsCanBeChosen) {
  ASSERT_TRUE(admin_->CreateResource(MakeCaller("c"), "t").ok());
  auto k = admin_->CreateCallerKey("c", "c-2026-q1", "t");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->caller_key().key_id(), "c-2026-q1");
  EXPECT_EQ(admin_->CreateCallerKey("c", "c-2026-q1", "t").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(ViolatedFields(admin_->CreateCallerKey("c", "bad id", "t").status()),
              Contains("key_id"));
  EXPECT_TRUE(admin_->RevokeCallerKey("c", "c-2026-q1", "t").ok());
}

TEST_F(ConfigAdminTest, KeysPerCallerAreCapped) {
  ASSERT_TRUE(admin_->CreateResource(MakeCaller("c"), "t").ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(admin_->CreateCallerKey("c", "", "t").ok());
  EXPECT_EQ(admin_->CreateCallerKey("c", "", "t").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ConfigAdminTest, DeletingACallerDropsItsKeys) {
  ASSERT_TRUE(admin_->CreateResource(MakeCaller("c"), "t").ok());
  ASSERT_TRUE(admin_->CreateCallerKey("c", "", "t").ok());
  ASSERT_TRUE(admin_->DeleteResource<admin::v1::Caller>("c", 0, "t").ok());
  EXPECT_EQ(LastPublished()->callers_size(), 0);
  ASSERT_TRUE(store_
                  ->Read([](SqliteDb& db) -> absl::Status {
                    EXPECT_EQ(*db.QueryInt("SELECT count(*) FROM caller_keys"), 0);
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_F(ConfigAdminTest, PricesRateLimitsAndBudgetsReachTheSnapshot) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Price price;
  price.mutable_spec()->set_provider("fake");
  price.mutable_spec()->set_model("meta-llama/Llama-3.1-8B");
  price.mutable_spec()->set_input_usd_micros_per_mtok(100);
  ASSERT_TRUE(admin_->CreateResource(price, "t").ok());
  auto got = admin_->GetResource<admin::v1::Price>("fake/meta-llama/Llama-3.1-8B");
  ASSERT_TRUE(got.ok()) << got.status();
  admin::v1::RateLimit limit;
  limit.mutable_spec()->set_name("rpm");
  limit.mutable_spec()->set_requests_per_minute(10);
  ASSERT_TRUE(admin_->CreateResource(limit, "t").ok());
  admin::v1::Budget budget;
  budget.mutable_spec()->set_name("b");
  budget.mutable_spec()->set_capability("demo");
  budget.mutable_spec()->set_limit_usd_micros(100);
  budget.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_DAILY);
  ASSERT_TRUE(admin_->CreateResource(budget, "t").ok());
  auto snap = LastPublished();
  EXPECT_EQ(snap->prices_size(), 1);
  EXPECT_EQ(snap->rate_limits_size(), 1);
  EXPECT_EQ(snap->budgets_size(), 1);
  // A provider with prices cannot be deleted.
  absl::Status s = admin_->DeleteResource<admin::v1::Provider>("fake", 0, "t");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("prices"));
}

}  // namespace
}  // namespace turnpike::controlplane::testing
