#include "controlplane/secret_box.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turnpike::controlplane {
namespace {

constexpr size_t kKeyLen = 32;
constexpr size_t kNonceLen = 12;
constexpr size_t kTagLen = 16;
constexpr size_t kKeyIdLen = 8;
constexpr char kMagic[] = "TPS";
constexpr unsigned char kFormatV1 = 0x01;
constexpr size_t kHeaderLen = 3 + 1 + kKeyIdLen;
constexpr size_t kWrapOffset = kHeaderLen;
constexpr size_t kDataOffset = kWrapOffset + kNonceLen + kKeyLen + kTagLen;
constexpr size_t kMinSealedLen = kDataOffset + kNonceLen + kTagLen;

void Cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

absl::StatusOr<std::string> Hkdf(const std::string& key, std::string_view info) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return absl::InternalError("OpenSSL HKDF unavailable");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return absl::InternalError("EVP_KDF_CTX_new failed");
  std::string out(kKeyLen, '\0');
  char digest[] = "SHA256";
  std::string info_copy(info);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()),
                                        key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_copy.data(), info_copy.size()),
      OSSL_PARAM_construct_end(),
  };
  int ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (ok <= 0) return absl::InternalError("HKDF derivation failed");
  return out;
}

std::string HmacSha256(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  return out;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// AES-256-GCM encryption of `plaintext`; returns ciphertext and fills `tag`.
absl::StatusOr<std::string> GcmEncrypt(std::string_view key, std::string_view nonce,
                                       std::string_view aad, std::string_view plaintext,
                                       std::string& tag) {
  CipherCtx c;
  if (c.ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  int len = 0;
  std::string out(plaintext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_EncryptInit_ex2(c.ctx, EVP_aes_256_gcm(), U(key), U(nonce), nullptr) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, o, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-GCM encryption failed");
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(c.ctx, o + len, &final_len) != 1) {
    return absl::InternalError("AES-GCM encryption failed");
  }
  tag.assign(kTagLen, '\0');
  if (EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagLen, tag.data()) != 1) {
    return absl::InternalError("AES-GCM tag retrieval failed");
  }
  return out;
}

// AES-256-GCM decryption; any failure (including authentication) discards the output.
absl::StatusOr<std::string> GcmDecrypt(std::string_view key, std::string_view nonce,
                                       std::string_view aad, std::string_view ciphertext,
                                       std::string_view tag) {
  CipherCtx c;
  if (c.ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  int len = 0;
  std::string out(ciphertext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  std::string tag_copy(tag);
  bool ok =
      EVP_DecryptInit_ex2(c.ctx, EVP_aes_256_gcm(), U(key), U(nonce), nullptr) == 1 &&
      EVP_DecryptUpdate(c.ctx, nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(c.ctx, o, &len, U(ciphertext), static_cast<int>(ciphertext.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagLen, tag_copy.data()) == 1;
  int final_len = 0;
  if (!ok || EVP_DecryptFinal_ex(c.ctx, o + len, &final_len) <= 0) {
    Cleanse(out);
    return absl::DataLossError("authentication failed");
  }
  return out;
}

std::string Aad(std::string_view key_id, std::string_view name, int64_t version) {
  std::string aad = "turnpike.credential.v1";
  aad.push_back('\0');
  aad.push_back(static_cast<char>(kFormatV1));
  aad.append(key_id);
  uint32_t n = static_cast<uint32_t>(name.size());
  for (int i = 3; i >= 0; --i) aad.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  aad.append(name);
  auto v = static_cast<uint64_t>(version);
  for (int i = 7; i >= 0; --i) aad.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return aad;
}

}  // namespace

absl::StatusOr<MasterKey> MasterKey::Parse(std::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()));
  std::string bytes;
  bool all_hex = t.size() == 2 * kKeyLen;
  for (char ch : t) all_hex = all_hex && std::isxdigit(static_cast<unsigned char>(ch));
  if (all_hex) {
    bytes = absl::HexStringToBytes(t);
  } else if (!absl::Base64Unescape(t, &bytes) && !absl::WebSafeBase64Unescape(t, &bytes)) {
    bytes.clear();
  }
  if (bytes.size() != kKeyLen) {
    Cleanse(bytes);
    return absl::InvalidArgumentError(
        "master key must be 32 bytes given as 64 hex characters or base64 (e.g. `openssl rand "
        "-hex 32`)");
  }
  return MasterKey(std::move(bytes));
}

MasterKey MasterKey::InsecureDevelopmentKey() {
  // SHA-256 would do as well; the point is only that it is fixed and obviously not secret.
  std::string bytes = "turnpike-insecure-dev-master-key";
  return MasterKey(bytes.substr(0, kKeyLen));
}

MasterKey::MasterKey(MasterKey&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.bytes_.clear();
}

MasterKey& MasterKey::operator=(MasterKey&& other) noexcept {
  if (this != &other) {
    Cleanse(bytes_);
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

MasterKey::~MasterKey() { Cleanse(bytes_); }

absl::StatusOr<SecretBox::Keys> SecretBox::Derive(const MasterKey& master_key) {
  if (master_key.bytes().size() != kKeyLen) {
    return absl::InvalidArgumentError("master key must be 32 bytes");
  }
  Keys keys;
  TP_ASSIGN_OR_RETURN(keys.kek, Hkdf(master_key.bytes(), "turnpike key-encryption key v1"));
  TP_ASSIGN_OR_RETURN(keys.fp_key, Hkdf(master_key.bytes(), "turnpike fingerprint key v1"));
  TP_ASSIGN_OR_RETURN(std::string id_key, Hkdf(master_key.bytes(), "turnpike key id v1"));
  keys.id = HmacSha256(id_key, "key-id").substr(0, kKeyIdLen);
  Cleanse(id_key);
  keys.id_hex = absl::BytesToHexString(keys.id);
  return keys;
}

absl::StatusOr<std::unique_ptr<SecretBox>> SecretBox::Create(const MasterKey& master_key,
                                                             const MasterKey* previous) {
  std::unique_ptr<SecretBox> box(new SecretBox());
  TP_ASSIGN_OR_RETURN(box->current_, Derive(master_key));
  if (previous != nullptr) {
    TP_ASSIGN_OR_RETURN(box->previous_, Derive(*previous));
    if (box->previous_.id == box->current_.id) {
      return absl::InvalidArgumentError(
          "the previous master key is the current one; give the new key as the master key and "
          "the old one as the previous key");
    }
  }
  return box;
}

SecretBox::~SecretBox() {
  for (Keys* k : {&current_, &previous_}) {
    Cleanse(k->kek);
    Cleanse(k->fp_key);
  }
}

bool SecretBox::Knows(std::string_view id_hex) const {
  return !id_hex.empty() && (id_hex == current_.id_hex || id_hex == previous_.id_hex);
}

std::string SecretBox::SealedKeyIdHex(std::string_view sealed) {
  if (sealed.size() < kMinSealedLen || sealed.substr(0, 3) != kMagic) return "";
  std::string_view id = sealed.substr(4, kKeyIdLen);
  return absl::BytesToHexString(absl::string_view(id.data(), id.size()));
}

absl::StatusOr<std::string> SecretBox::Seal(std::string_view plaintext, std::string_view name,
                                            int64_t version) const {
  std::string aad = Aad(current_.id, name, version);
  TP_ASSIGN_OR_RETURN(std::string dek, RandomBytes(kKeyLen));
  TP_ASSIGN_OR_RETURN(std::string wrap_nonce, RandomBytes(kNonceLen));
  TP_ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kNonceLen));
  std::string wrap_tag, tag;
  absl::StatusOr<std::string> wrapped = GcmEncrypt(current_.kek, wrap_nonce, aad, dek, wrap_tag);
  absl::StatusOr<std::string> ct = GcmEncrypt(dek, nonce, aad, plaintext, tag);
  Cleanse(dek);
  if (!wrapped.ok()) return wrapped.status();
  if (!ct.ok()) return ct.status();
  std::string out;
  out.reserve(kMinSealedLen + ct->size());
  out.append(kMagic, 3);
  out.push_back(static_cast<char>(kFormatV1));
  out.append(current_.id);
  out.append(wrap_nonce).append(*wrapped).append(wrap_tag);
  out.append(nonce).append(tag).append(*ct);
  return out;
}

absl::StatusOr<std::string> SecretBox::Open(std::string_view sealed, std::string_view name,
                                            int64_t version) const {
  std::string what = absl::StrCat("credential \"", std::string(name), "\" version ", version);
  if (sealed.size() < kMinSealedLen || sealed.substr(0, 3) != kMagic) {
    return absl::DataLossError(absl::StrCat(what, ": sealed secret is malformed"));
  }
  if (static_cast<unsigned char>(sealed[3]) != kFormatV1) {
    return absl::DataLossError(absl::StrCat(
        what, ": unknown sealed format ", static_cast<int>(static_cast<unsigned char>(sealed[3]))));
  }
  std::string_view key_id = sealed.substr(4, kKeyIdLen);
  const Keys* keys = key_id == current_.id                             ? &current_
                     : !previous_.id.empty() && key_id == previous_.id ? &previous_
                                                                       : nullptr;
  if (keys == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": sealed under master key id ",
        absl::BytesToHexString(absl::string_view(key_id.data(), key_id.size())),
        ", but the configured master key has id ", current_.id_hex,
        previous_.id_hex.empty() ? "" : absl::StrCat(" (previous key ", previous_.id_hex, ")")));
  }
  std::string aad = Aad(keys->id, name, version);
  std::string_view p = sealed.substr(kWrapOffset);
  absl::StatusOr<std::string> dek =
      GcmDecrypt(keys->kek, p.substr(0, kNonceLen), aad, p.substr(kNonceLen, kKeyLen),
                 p.substr(kNonceLen + kKeyLen, kTagLen));
  if (!dek.ok()) {
    return absl::DataLossError(absl::StrCat(
        what, ": cannot be opened (tampered with, or bound to another credential or version)"));
  }
  std::string_view d = sealed.substr(kDataOffset);
  absl::StatusOr<std::string> pt =
      GcmDecrypt(*dek, d.substr(0, kNonceLen), aad, d.substr(kNonceLen + kTagLen),
                 d.substr(kNonceLen, kTagLen));
  Cleanse(*dek);
  if (!pt.ok()) {
    return absl::DataLossError(absl::StrCat(
        what, ": cannot be opened (tampered with, or bound to another credential or version)"));
  }
  return pt;
}

std::string SecretBox::Fingerprint(std::string_view plaintext) const {
  return absl::BytesToHexString(HmacSha256(current_.fp_key, plaintext).substr(0, 8));
}

}  // namespace turnpike::controlplane
