// SecretBox seals provider credentials at rest with AES-256-GCM (OpenSSL 3 EVP), envelope style:
// every Seal() draws a fresh 256-bit data key and 96-bit nonces, encrypts the secret with the
// data key, and wraps the data key with a key-encryption key derived (HKDF-SHA256) from the
// master key. The associated data binds the credential name, its version and the master key id,
// so a ciphertext moved to another credential or version, or altered in any byte, fails to open.
// The master key never reaches the database; only its public id does. During a master-key
// rotation (docs/security.md) the box also holds the previous key: it opens what either key
// sealed and seals only under the current one. Thread-safe (immutable after construction).
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
  // `previous`, if given, is the key being rotated away from: opened, never sealed with.
  // INVALID_ARGUMENT if it is the same key as `master_key`.
  static absl::StatusOr<std::unique_ptr<SecretBox>> Create(const MasterKey& master_key,
                                                           const MasterKey* previous = nullptr);
  ~SecretBox();

  // Seals `plaintext` for credential `name` at `version`, under the current master key.
  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view name,
                                   int64_t version) const;
  // Opens what Seal() produced for the same name and version, under the current or the previous
  // key. FAILED_PRECONDITION if it was sealed under another master key; DATA_LOSS if it is
  // malformed, tampered with, or bound to another name or version. Never returns partial
  // plaintext.
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view name,
                                   int64_t version) const;

  // A short public fingerprint of a secret (hex of HMAC-SHA256 under a key derived from the
  // current master key, first 8 bytes): lets people tell versions apart without revealing
  // anything.
  std::string Fingerprint(std::string_view plaintext) const;

  // Public id of the current master key (16 hex characters), stored in the database to detect a
  // wrong key; the same 8 bytes raw (as in the sealed format).
  const std::string& key_id_hex() const { return current_.id_hex; }
  const std::string& key_id() const { return current_.id; }
  // The previous key's id in hex; empty without one.
  const std::string& previous_key_id_hex() const { return previous_.id_hex; }
  // Whether `id_hex` is the current or the previous key.
  bool Knows(std::string_view id_hex) const;

  // The id (hex) of the key `sealed` was sealed under; empty if it is not a sealed secret.
  static std::string SealedKeyIdHex(std::string_view sealed);

 private:
  struct Keys {
    std::string kek;     // 32 bytes
    std::string fp_key;  // 32 bytes
    std::string id;      // 8 bytes
    std::string id_hex;  // 16 hex characters; empty: no key
  };
  static absl::StatusOr<Keys> Derive(const MasterKey& master_key);
  SecretBox() = default;

  Keys current_;
  Keys previous_;  // id_hex empty without a previous key
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SECRET_BOX_H_
