// Unit tests of the audit trail's primitives: the entry hash (domain-separated, chained), the
// canonical bytes, and Ed25519 checkpoint signatures made and checked with OpenSSL.
#include "controlplane/audit_chain.h"

#include <openssl/sha.h>

#include <string>

#include "controlplane/audit_signer.h"
#include "gtest/gtest.h"

namespace turnpike::controlplane {
namespace {

std::string Sha256(const std::string& bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

TEST(AuditChainTest, EntryHashIsSha256OfLeafPrefixEntryAndPreviousHash) {
  const std::string prev = Sha256("previous");
  const std::string canonical = "entry bytes";
  EXPECT_EQ(AuditEntryHash(canonical, prev), Sha256(std::string(1, '\0') + canonical + prev));
  // Without the prefix byte it would be another hash: no entry hash equals a plain digest.
  EXPECT_NE(AuditEntryHash(canonical, prev), Sha256(canonical + prev));
  // The previous hash is part of it: the same entry elsewhere in the chain hashes differently.
  EXPECT_NE(AuditEntryHash(canonical, prev), AuditEntryHash(canonical, Sha256("other")));
  EXPECT_EQ(AuditGenesisHash(), std::string(32, '\0'));
}

TEST(AuditChainTest, CanonicalBytesAreDeterministicAndCarryThePosition) {
  audit::v1::ChainedEntry entry;
  entry.set_seq(7);
  entry.mutable_time()->set_seconds(1700000000);
  entry.mutable_request()->set_request_id("r-1");
  (*entry.mutable_request()->mutable_tags())["b"] = "2";
  (*entry.mutable_request()->mutable_tags())["a"] = "1";
  const std::string bytes = CanonicalBytes(entry);
  audit::v1::ChainedEntry copy;
  ASSERT_TRUE(copy.ParseFromString(bytes));
  EXPECT_EQ(CanonicalBytes(copy), bytes);  // map order does not change them
  copy.set_seq(8);
  EXPECT_NE(CanonicalBytes(copy), bytes);
}

TEST(AuditChainTest, HexRoundTrips) {
  const std::string raw("\x00\x01\xfe\xff", 4);
  EXPECT_EQ(HexEncode(raw), "0001feff");
  EXPECT_EQ(HexDecode("0001FEff"), raw);
  EXPECT_FALSE(HexDecode("0g").has_value());
  EXPECT_FALSE(HexDecode("abc").has_value());
}

TEST(AuditSignerTest, SignsCheckpointsThatOnlyItsPublicKeyVerifies) {
  auto signer = AuditSigner::FromPem(GenerateAuditSigningKeyPem());
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto other = AuditSigner::FromPem(GenerateAuditSigningKeyPem());
  ASSERT_TRUE(other.ok());
  const std::string head = Sha256("head");
  const std::string message = CheckpointMessage(42, head, 1700000000000000);
  EXPECT_EQ(message,
            "turnpike-audit-checkpoint-v1\n42\n" + HexEncode(head) + "\n1700000000000000\n");
  auto signature = (*signer)->Sign(message);
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(signature->size(), 64u);
  EXPECT_EQ((*signer)->public_key().size(), 32u);
  EXPECT_TRUE(VerifyAuditSignature((*signer)->public_key(), message, *signature));
  // Another size, head or time; another key; a flipped bit: all refused.
  EXPECT_FALSE(VerifyAuditSignature((*signer)->public_key(),
                                    CheckpointMessage(43, head, 1700000000000000), *signature));
  EXPECT_FALSE(VerifyAuditSignature((*other)->public_key(), message, *signature));
  std::string flipped = *signature;
  flipped[10] ^= 1;
  EXPECT_FALSE(VerifyAuditSignature((*signer)->public_key(), message, flipped));
  EXPECT_FALSE(VerifyAuditSignature("short", message, *signature));
  // The published PEM gives back the same key; the key id is its hash's first 16 hex digits.
  auto from_pem = AuditPublicKeyFromPem((*signer)->public_key_pem());
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  EXPECT_EQ(*from_pem, (*signer)->public_key());
  EXPECT_EQ((*signer)->key_id(), HexEncode(Sha256((*signer)->public_key())).substr(0, 16));
}

TEST(AuditSignerTest, RefusesWhatIsNotAnEd25519PrivateKey) {
  EXPECT_EQ(AuditSigner::FromPem("not a key").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto signer = AuditSigner::FromPem(GenerateAuditSigningKeyPem());
  ASSERT_TRUE(signer.ok());
  // A public key is not a signing key.
  EXPECT_FALSE(AuditSigner::FromPem((*signer)->public_key_pem()).ok());
  auto missing = AuditSigner::FromPemFile("/nonexistent/audit.pem");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("/nonexistent/audit.pem"), std::string::npos);
}

}  // namespace
}  // namespace turnpike::controlplane
