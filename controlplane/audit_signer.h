// Ed25519 keys and signatures for the audit trail's checkpoints (docs/audit.md), with OpenSSL
// (EVP_PKEY_ED25519). AuditSigner holds the control plane's private key, read from a PEM file
// (--audit_signing_key_file; `openssl genpkey -algorithm ed25519`); the free functions verify
// with only the public key, as the offline verifier does. Immutable after construction:
// thread-safe (each Sign uses its own OpenSSL context).
#ifndef TURNPIKE_CONTROLPLANE_AUDIT_SIGNER_H_
#define TURNPIKE_CONTROLPLANE_AUDIT_SIGNER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace turnpike::controlplane {

class AuditSigner {
 public:
  // FAILED_PRECONDITION naming the file when it cannot be read or holds no Ed25519 private key.
  static absl::StatusOr<std::unique_ptr<AuditSigner>> FromPemFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<AuditSigner>> FromPem(std::string_view pem);
  ~AuditSigner();

  // The 64-byte signature of `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const;
  const std::string& public_key() const { return public_key_; }  // raw, 32 bytes
  const std::string& public_key_pem() const { return public_key_pem_; }
  const std::string& key_id() const { return key_id_; }

 private:
  AuditSigner(EVP_PKEY* key, std::string public_key, std::string public_key_pem);
  EVP_PKEY* const key_;
  const std::string public_key_;
  const std::string public_key_pem_;
  const std::string key_id_;
};

// A new Ed25519 private key as PKCS#8 PEM (tests and test harnesses).
std::string GenerateAuditSigningKeyPem();
// The raw 32-byte public key from a PEM public key (SubjectPublicKeyInfo) or private key.
absl::StatusOr<std::string> AuditPublicKeyFromPem(std::string_view pem);
// True when `signature` is `public_key`'s (raw) Ed25519 signature of `message`.
bool VerifyAuditSignature(std::string_view public_key, std::string_view message,
                          std::string_view signature);
// First 16 hex digits of SHA-256(public_key).
std::string AuditKeyId(std::string_view public_key);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUDIT_SIGNER_H_
