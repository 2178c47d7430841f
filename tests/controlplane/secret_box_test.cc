#include "controlplane/secret_box.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turnpike::controlplane {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHexKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kCanary[] = "sk-canary-SECRET-value-1234567890";

std::unique_ptr<SecretBox> Box(const char* hex = kHexKey) {
  auto key = MasterKey::Parse(hex);
  EXPECT_TRUE(key.ok()) << key.status();
  auto box = SecretBox::Create(*key);
  EXPECT_TRUE(box.ok()) << box.status();
  return *std::move(box);
}

TEST(MasterKeyTest, ParsesHexAndBase64) {
  auto hex = MasterKey::Parse(std::string("  ") + kHexKey + "\n");
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(hex->bytes().size(), 32u);
  auto b64 = MasterKey::Parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  ASSERT_TRUE(b64.ok()) << b64.status();
  EXPECT_EQ(b64->bytes(), hex->bytes());
}

TEST(MasterKeyTest, RejectsWrongLengthWithoutEchoingInput) {
  for (const char* bad :
       {"", "abcd", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "c2hvcnQ="}) {
    auto k = MasterKey::Parse(bad);
    ASSERT_FALSE(k.ok()) << bad;
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
    if (std::string(bad).size() > 2) {
      EXPECT_THAT(k.status().message(), Not(HasSubstr(bad)));
    }
  }
}

TEST(SecretBoxTest, RoundTrips) {
  auto box = Box();
  auto sealed = box->Seal(kCanary, "openai", 3);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->find(kCanary), std::string::npos);
  auto opened = box->Open(*sealed, "openai", 3);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kCanary);
}

TEST(SecretBoxTest, EverySealUsesFreshRandomness) {
  auto box = Box();
  EXPECT_NE(*box->Seal(kCanary, "a", 1), *box->Seal(kCanary, "a", 1));
}

TEST(SecretBoxTest, WrongNameFails) {
  auto box = Box();
  std::string sealed = *box->Seal(kCanary, "openai", 1);
  auto opened = box->Open(sealed, "anthropic", 1);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), Not(HasSubstr(kCanary)));
}

TEST(SecretBoxTest, WrongVersionFails) {
  auto box = Box();
  std::string sealed = *box->Seal(kCanary, "openai", 1);
  EXPECT_EQ(box->Open(sealed, "openai", 2).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SecretBoxTest, EveryFlippedByteFails) {
  auto box = Box();
  std::string sealed = *box->Seal(kCanary, "openai", 1);
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    auto opened = box->Open(t, "openai", 1);
    EXPECT_FALSE(opened.ok()) << "byte " << i;
  }
}

TEST(SecretBoxTest, TruncatedOrExtendedFails) {
  auto box = Box();
  std::string sealed = *box->Seal(kCanary, "openai", 1);
  for (size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(box->Open(sealed.substr(0, n), "openai", 1).ok()) << n;
  }
  EXPECT_FALSE(box->Open(sealed + "x", "openai", 1).ok());
}

TEST(SecretBoxTest, SwappedBetweenCredentialsFails) {
  auto box = Box();
  std::string a = *box->Seal("secret-a", "a", 1);
  std::string b = *box->Seal("secret-b", "b", 1);
  EXPECT_FALSE(box->Open(a, "b", 1).ok());
  EXPECT_FALSE(box->Open(b, "a", 1).ok());
}

TEST(SecretBoxTest, OtherMasterKeyIsReportedAsSuch) {
  auto box = Box();
  auto other = Box("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_NE(box->key_id_hex(), other->key_id_hex());
  std::string sealed = *box->Seal(kCanary, "openai", 1);
  auto opened = other->Open(sealed, "openai", 1);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(opened.status().message(), HasSubstr("master key"));
}

TEST(SecretBoxTest, FingerprintIsStableShortAndKeyed) {
  auto box = Box();
  auto other = Box("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(box->Fingerprint(kCanary), box->Fingerprint(kCanary));
  EXPECT_EQ(box->Fingerprint(kCanary).size(), 16u);
  EXPECT_NE(box->Fingerprint(kCanary), box->Fingerprint("other"));
  EXPECT_NE(box->Fingerprint(kCanary), other->Fingerprint(kCanary));
}

}  // namespace
}  // namespace turnpike::controlplane
