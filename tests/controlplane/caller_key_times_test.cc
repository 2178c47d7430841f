// Caller keys that expire and the minute each was last used (docs/admin.md): the expiry is
// validated and kept to the second, shipped to gateways with the key's id, and shown in the admin
// API; gateways' reports of use move last_used_time forward to the minute, never back, without a
// config change.
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

class CallerKeyTimesTest : public AdminFixture {
 protected:
  void SetUp() override {
    AdminFixture::SetUp();
    ASSERT_TRUE(admin_->CreateResource(MakeCaller("claims"), "t").ok());
  }
  admin::v1::CreateCallerKeyRequest Request(const std::string& key_id) {
    admin::v1::CreateCallerKeyRequest r;
    r.set_caller("claims");
    r.set_key_id(key_id);
    return r;
  }
  admin::v1::CallerKey KeyInList(const std::string& key_id) {
    auto caller = admin_->GetResource<admin::v1::Caller>("claims");
    EXPECT_TRUE(caller.ok()) << caller.status();
    for (const auto& k : caller->keys()) {
      if (k.key_id() == key_id) return k;
    }
    ADD_FAILURE() << "no key " << key_id;
    return {};
  }
};

TEST_F(CallerKeyTimesTest, ExpiryByTimeOrTtlIsKeptToTheSecondAndShipped) {
  const absl::Time now = clock_.Now();
  auto by_time = Request("by-time");
  by_time.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(now) + 3600);
  by_time.mutable_expire_time()->set_nanos(700000000);
  auto k1 = admin_->CreateCallerKey(by_time, "t");
  ASSERT_TRUE(k1.ok()) << k1.status();
  EXPECT_EQ(k1->caller_key().expire_time().seconds(), absl::ToUnixSeconds(now) + 3600);
  EXPECT_EQ(k1->caller_key().expire_time().nanos(), 0);

  clock_.Advance(absl::Milliseconds(400));
  auto by_ttl = Request("by-ttl");
  by_ttl.mutable_ttl()->set_seconds(86400);
  auto k2 = admin_->CreateCallerKey(by_ttl, "t");
  ASSERT_TRUE(k2.ok()) << k2.status();
  EXPECT_EQ(k2->caller_key().expire_time().seconds(), absl::ToUnixSeconds(now) + 86400);
  auto forever = admin_->CreateCallerKey(Request("forever"), "t");
  ASSERT_TRUE(forever.ok());
  EXPECT_FALSE(forever->caller_key().has_expire_time());

  // The list shows it; the snapshot carries digest, id and expiry of each key.
  EXPECT_EQ(KeyInList("by-time").expire_time().seconds(), absl::ToUnixSeconds(now) + 3600);
  auto snap = LastPublished();
  ASSERT_EQ(snap->callers_size(), 1);
  ASSERT_EQ(snap->callers(0).keys_size(), 3);
  for (const auto& k : snap->callers(0).keys()) {
    if (k.key_id() == "by-time") {
      EXPECT_EQ(k.key_sha256(), Sha256Hex(k1->key()));
      EXPECT_EQ(k.expire_unix_seconds(), absl::ToUnixSeconds(now) + 3600);
    } else if (k.key_id() == "forever") {
      EXPECT_EQ(k.expire_unix_seconds(), 0);
    }
  }
  // The older field still lists every active digest (gateways that predate `keys`).
  EXPECT_EQ(snap->callers(0).key_sha256_size(), 3);
}

TEST_F(CallerKeyTimesTest, AnExpiryInThePastOrTooFarIsAFieldViolation) {
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  auto past = Request("past");
  past.mutable_expire_time()->set_seconds(now - 1);
  EXPECT_THAT(ViolatedFields(admin_->CreateCallerKey(past, "t").status()),
              ElementsAre("expire_time"));
  past.mutable_expire_time()->set_seconds(now);  // "now" is not in the future either
  EXPECT_THAT(ViolatedFields(admin_->CreateCallerKey(past, "t").status()),
              ElementsAre("expire_time"));
  auto far = Request("far");
  far.mutable_expire_time()->set_seconds(now + int64_t{11} * 365 * 86400);
  EXPECT_THAT(ViolatedFields(admin_->CreateCallerKey(far, "t").status()),
              ElementsAre("expire_time"));
  for (int64_t seconds : {int64_t{0}, int64_t{-5}, int64_t{11} * 365 * 86400}) {
    auto ttl = Request("ttl");
    ttl.mutable_ttl()->set_seconds(seconds);
    auto r = admin_->CreateCallerKey(ttl, "t");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << seconds;
    EXPECT_THAT(ViolatedFields(r.status()), ElementsAre("ttl"));
  }
  // Nothing was stored.
  auto caller = admin_->GetResource<admin::v1::Caller>("claims");
  EXPECT_EQ(caller->keys_size(), 0);
}

TEST_F(CallerKeyTimesTest, ExpiredKeysDoNotCountAgainstTheCap) {
  for (int i = 0; i < 10; ++i) {
    auto r = Request(absl::StrCat("short-", i));
    r.mutable_ttl()->set_seconds(60);
    ASSERT_TRUE(admin_->CreateCallerKey(r, "t").ok());
  }
  EXPECT_EQ(admin_->CreateCallerKey(Request("one-more"), "t").status().code(),
            absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Seconds(61));
  EXPECT_TRUE(admin_->CreateCallerKey(Request("one-more"), "t").ok());
}

TEST_F(CallerKeyTimesTest, LastUseMovesForwardToTheMinuteWithoutAConfigChange) {
  ASSERT_TRUE(admin_->CreateCallerKey(Request("k1"), "t").ok());
  ASSERT_TRUE(admin_->CreateCallerKey(Request("k2"), "t").ok());
  EXPECT_FALSE(KeyInList("k1").has_last_used_time());
  const int64_t version = Version();
  const size_t published = PublishedCount();
  const absl::Time now = clock_.Now();
  const int64_t minute = absl::ToUnixSeconds(now) / 60 * 60;

  auto moved = admin_->RecordCallerKeyUses(
      {{"k1", now - absl::Minutes(3) + absl::Seconds(7)}, {"unknown-key", now}});
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 1);
  EXPECT_EQ(KeyInList("k1").last_used_time().seconds(), minute - 180);
  EXPECT_EQ(KeyInList("k1").last_used_time().nanos(), 0);
  EXPECT_FALSE(KeyInList("k2").has_last_used_time());

  // Another gateway's older report does not move it back; a repeat changes nothing.
  EXPECT_EQ(*admin_->RecordCallerKeyUses({{"k1", now - absl::Minutes(10)}}), 0);
  EXPECT_EQ(*admin_->RecordCallerKeyUses({{"k1", now - absl::Minutes(3)}}), 0);
  EXPECT_EQ(KeyInList("k1").last_used_time().seconds(), minute - 180);
  // A time ahead of this clock (a gateway's clock running fast) counts as this minute.
  EXPECT_EQ(*admin_->RecordCallerKeyUses({{"k1", now + absl::Hours(2)}, {"k2", now}}), 2);
  EXPECT_EQ(KeyInList("k1").last_used_time().seconds(), minute);
  EXPECT_EQ(KeyInList("k2").last_used_time().seconds(), minute);

  EXPECT_EQ(Version(), version);
  EXPECT_EQ(PublishedCount(), published);
  auto audit = admin_->ListAuditEntries(1000, "");
  ASSERT_TRUE(audit.ok());
  for (const auto& e : audit->items) EXPECT_NE(e.action(), "RecordCallerKeyUses");
}

}  // namespace
}  // namespace turnpike::controlplane::testing
