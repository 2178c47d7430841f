// Master key rotation (docs/security.md): a SecretBox holding the previous key opens what either
// key sealed and seals only under the new one; ConfigAdmin re-seals every credential version in
// batches, a database left half rotated (the process died between two batches) is finished by
// the next run, and a start with a key that cannot open every version is refused, naming the fix.
#include <string>

#include "absl/strings/match.h"
#include "common/status_macros.h"
#include "controlplane/config_tables.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNewKey[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

MasterKey Key(const char* hex) { return *MasterKey::Parse(hex); }

TEST(SecretBoxRotationTest, OpensUnderEitherKeyAndSealsUnderTheNewOne) {
  MasterKey old_key = Key(kTestMasterKey), new_key = Key(kNewKey);
  auto old_box = *SecretBox::Create(old_key);
  auto both = SecretBox::Create(new_key, &old_key);
  ASSERT_TRUE(both.ok()) << both.status();
  auto new_box = *SecretBox::Create(new_key);
  const std::string sealed_old = *old_box->Seal(kCanarySecret, "c", 1);
  EXPECT_EQ(SecretBox::SealedKeyIdHex(sealed_old), old_box->key_id_hex());
  EXPECT_EQ(*(*both)->Open(sealed_old, "c", 1), kCanarySecret);
  const std::string sealed_new = *(*both)->Seal(kCanarySecret, "c", 1);
  EXPECT_EQ(SecretBox::SealedKeyIdHex(sealed_new), new_box->key_id_hex());
  EXPECT_EQ(*new_box->Open(sealed_new, "c", 1), kCanarySecret);
  EXPECT_EQ(old_box->Open(sealed_new, "c", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*both)->previous_key_id_hex(), old_box->key_id_hex());
  EXPECT_EQ((*both)->Fingerprint(kCanarySecret), new_box->Fingerprint(kCanarySecret));
  // A re-sealed secret is still bound to its credential and version.
  EXPECT_EQ((*both)->Open(sealed_old, "c", 2).status().code(), absl::StatusCode::kDataLoss);
  // The same key twice is a mistake worth a clear error.
  MasterKey again = Key(kTestMasterKey);
  auto same = SecretBox::Create(old_key, &again);
  EXPECT_EQ(same.status().code(), absl::StatusCode::kInvalidArgument);
}

class MasterKeyRotationTest : public AdminFixture {
 protected:
  void SetUp() override {
    AdminFixture::SetUp();
    for (int i = 0; i < 3; ++i) {
      const std::string name = absl::StrCat("cred-", i);
      ASSERT_TRUE(admin_->CreateCredential(MakeCredential(name, absl::StrCat("v1-", i)), "t").ok());
      admin::v1::RotateCredentialRequest rotate;
      rotate.set_name(name);
      rotate.set_secret(absl::StrCat("v2-", i));
      ASSERT_TRUE(admin_->RotateCredential(rotate, "t").ok());
    }
    old_key_ = std::make_unique<MasterKey>(Key(kTestMasterKey));
    new_key_ = std::make_unique<MasterKey>(Key(kNewKey));
    rotating_box_ = *SecretBox::Create(*new_key_, old_key_.get());
    new_box_ = *SecretBox::Create(*new_key_);
  }
  absl::StatusOr<std::unique_ptr<ConfigAdmin>> Reopen(const SecretBox& box, int batch = 32) {
    ConfigAdmin::Options options;
    options.master_key_rotation_batch = batch;
    options.on_rotation_progress = [this](int64_t done, int64_t left) {
      progress_.emplace_back(done, left);
    };
    return ConfigAdmin::Create(*store_, box, clock_, nullptr, options);
  }
  std::vector<SealedVersion> Sealed() {
    std::vector<SealedVersion> out;
    EXPECT_TRUE(store_
                    ->Read([&](SqliteDb& db) -> absl::Status {
                      out = *ListSealedVersions(db, "", 0);
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  std::unique_ptr<MasterKey> old_key_, new_key_;
  std::unique_ptr<SecretBox> rotating_box_, new_box_;
  std::vector<std::pair<int64_t, int64_t>> progress_;
};

TEST_F(MasterKeyRotationTest, ReSealsEveryVersionInBatchesAndAuditsIt) {
  // The new key alone cannot open the database yet, and says how to start a rotation.
  auto refused = Reopen(*new_box_);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("6 under " + box_->key_id_hex()));
  EXPECT_THAT(refused.status().message(), HasSubstr("--previous_master_key_file"));

  auto admin = Reopen(*rotating_box_, /*batch=*/4);
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto rotated = (*admin)->RotateMasterKey("alice");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->resealed(), 6);
  EXPECT_EQ(rotated->remaining(), 0);
  EXPECT_EQ(rotated->key_id(), new_box_->key_id_hex());
  EXPECT_THAT(rotated->previous_key_ids(), ::testing::ElementsAre(box_->key_id_hex()));
  EXPECT_EQ(progress_, (std::vector<std::pair<int64_t, int64_t>>{{4, 2}, {6, 0}}));
  for (const SealedVersion& v : Sealed()) {
    EXPECT_EQ(SecretBox::SealedKeyIdHex(v.sealed), new_box_->key_id_hex());
    auto opened = new_box_->Open(v.sealed, v.credential, v.version);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, absl::StrCat("v", v.version, "-", v.credential.substr(5)));
  }
  // Fingerprints follow the new key (the old one is about to be destroyed).
  auto cred = (*admin)->GetCredential("cred-0");
  EXPECT_EQ(cred->versions(0).fingerprint(), new_box_->Fingerprint("v2-0"));
  EXPECT_FALSE(*(*admin)->MasterKeyRotationPending());
  auto audit = (*admin)->ListAuditEntries(1, "");
  ASSERT_EQ(audit->items.size(), 1u);
  EXPECT_EQ(audit->items[0].action(), "RotateMasterKey");
  EXPECT_EQ(audit->items[0].actor(), "alice");
  EXPECT_THAT(audit->items[0].after_json(), HasSubstr(new_box_->key_id_hex()));
  // Again: nothing to do. The new key alone opens everything; the old one alone does not.
  EXPECT_EQ((*admin)->RotateMasterKey("alice")->resealed(), 0);
  EXPECT_TRUE(Reopen(*new_box_).ok());
  EXPECT_EQ(Reopen(*box_).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MasterKeyRotationTest, AHalfDoneRotationIsFinishedByTheNextRun) {
  // What a SIGKILL between two batches leaves: the marker, two versions under the new key.
  ASSERT_TRUE(store_
                  ->Write([&](SqliteDb& db) -> absl::Status {
                    TP_RETURN_IF_ERROR(PutMeta(db, "master_key_rotation", new_box_->key_id_hex()));
                    TP_ASSIGN_OR_RETURN(auto rows, ListSealedVersions(db, "", 2));
                    for (const auto& v : rows) {
                      std::string secret = *box_->Open(v.sealed, v.credential, v.version);
                      TP_RETURN_IF_ERROR(
                          ResealCredentialVersion(db, v.credential, v.version,
                                                  *new_box_->Seal(secret, v.credential, v.version),
                                                  new_box_->Fingerprint(secret)));
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  // Neither key alone opens it; both do, and the rotation is known to be pending.
  EXPECT_FALSE(Reopen(*box_).ok());
  EXPECT_FALSE(Reopen(*new_box_).ok());
  auto admin = Reopen(*rotating_box_, 1);
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_TRUE(*(*admin)->MasterKeyRotationPending());
  auto rotated = (*admin)->RotateMasterKey("system");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->resealed(), 4);
  EXPECT_FALSE(*(*admin)->MasterKeyRotationPending());
  EXPECT_TRUE(Reopen(*new_box_).ok());
}

}  // namespace
}  // namespace turnpike::controlplane::testing
