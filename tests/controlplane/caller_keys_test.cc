#include "controlplane/caller_keys.h"

#include <set>

#include "gtest/gtest.h"

namespace turnpike::controlplane {
namespace {

TEST(CallerKeysTest, FormatIsPrefixBodyChecksum) {
  auto k = GenerateCallerKey();
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->key.size(), kCallerKeyLength);
  EXPECT_EQ(k->key.substr(0, 4), "tpk_");
  EXPECT_TRUE(IsWellFormedCallerKey(k->key));
  EXPECT_EQ(k->display_prefix, k->key.substr(0, 12));
  EXPECT_EQ(k->sha256_hex, Sha256Hex(k->key));
  EXPECT_EQ(k->sha256_hex.size(), 64u);
  EXPECT_EQ(k->sha256_hex.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CallerKeysTest, KeysAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(seen.insert(GenerateCallerKey()->key).second);
}

TEST(CallerKeysTest, ChecksumCatchesEverySingleCharacterChange) {
  std::string key = GenerateCallerKey()->key;
  for (size_t i = 4; i < key.size(); ++i) {
    std::string t = key;
    t[i] = t[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(IsWellFormedCallerKey(t)) << i;
  }
}

TEST(CallerKeysTest, RejectsMalformed) {
  std::string key = GenerateCallerKey()->key;
  EXPECT_FALSE(IsWellFormedCallerKey(""));
  EXPECT_FALSE(IsWellFormedCallerKey(key.substr(1)));
  EXPECT_FALSE(IsWellFormedCallerKey(key + "0"));
  EXPECT_FALSE(IsWellFormedCallerKey("xyz_" + key.substr(4)));
  std::string bad = key;
  bad[10] = '-';
  EXPECT_FALSE(IsWellFormedCallerKey(bad));
}

TEST(CallerKeysTest, KnownDigest) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace turnpike::controlplane
