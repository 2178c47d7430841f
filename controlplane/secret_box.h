// SecretBox seals provider credentials at rest with AES-256-GCM (OpenSSL 3 EVP), envelope style:
// every Seal() draws a fresh 256-bit data key and 96-bit nonces, encrypts the secret with the
// data key, and wraps the data key with a key-encryption key derived (HKDF-SHA256) from the
// master key. The associated data binds the credential name, its version and the master key id,
// so a ciphertext moved to another credential or version, or altered in any byte, fails to open.
// The master key never reaches the database; only its public id does. Thread-safe (immutable
// after construction).
//
// Sealed format v1 (binary):
//   "TPS" 0x01 | key_id(8) | wrap_nonce(12) | wrapped_dek(32) | wrap_tag(16) |
//   nonce(12) | tag(16) | ciphertext
#ifndef TURNPIKE_CONTROLPLANE_SECRET_BOX_H_
#define TURNPIKE_CONTROLPLANE_SECRET_BOX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turnpike::controlplane {

// 32 bytes of key material, wiped on destruction. Move-only.
class MasterKey {
 public:
  // Accepts 64 hex characters or standard/URL-safe base64 of 32 bytes; surrounding whitespace
  // is ignored. The error never echoes the input.
  static absl::StatusOr<MasterKey> Parse(std::string_view text);
  // A fixed, publicly known key for `tools/dev up` only. Anything sealed with it is not secret.
  static MasterKey InsecureDevelopmentKey();

  MasterKey(MasterKey&& other) noexcept;
  MasterKey& operator=(MasterKey&& other) noexcept;
  ~MasterKey();

  const std::string& bytes() const { return bytes_; }

 private:
  explicit MasterKey(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

class SecretBox {
 public:
  static absl::StatusOr<std::unique_ptr<SecretBox>> Create(const MasterKey& master_key);
  ~SecretBox();

  // Seals `plaintext` for credential `name` at `version`.
  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view name,
                                   int64_t version) const;
  // Opens what Seal() produced for the same name and version. FAILED_PRECONDITION if it was
  // sealed under another master key; DATA_LOSS if it is malformed, tampered with, or bound to
  // another name or version. Never returns partial plaintext.
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view name,
                                   int64_t version) const;

  // A short public fingerprint of a secret (hex of HMAC-SHA256 under a key derived from the
  // master key, first 8 bytes): lets people tell versions apart without revealing anything.
  std::string Fingerprint(std::string_view plaintext) const;

  // Public id of the master key (16 hex characters), stored in the database to detect a wrong key.
  const std::string& key_id_hex() const { return key_id_hex_; }

 private:
  SecretBox() = default;

  std::string kek_;         // 32 bytes
  std::string fp_key_;      // 32 bytes
  std::string key_id_;      // 8 bytes
  std::string key_id_hex_;  // 16 hex characters
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SECRET_BOX_H_
