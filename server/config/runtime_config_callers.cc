// The callers of a RuntimeConfig: checked and indexed when a snapshot is built (keys by the
// SHA-256 of the bearer token, with their ids and expiry; certificate SANs), and found per
// request. Immutable once built; lookups are thread-safe.
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "common/cert_san.h"
#include "server/config/runtime_config_internal.h"

namespace turnpike {
namespace {

using runtime_config_internal::FieldError;
using runtime_config_internal::ValidName;

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

}  // namespace

absl::Status RuntimeConfig::BuildCallers(const config::v1::Snapshot& snapshot,
                                         RuntimeConfig& config) {
  for (int i = 0; i < snapshot.callers_size(); ++i) {
    const auto& c = snapshot.callers(i);
    const std::string field = absl::StrCat("callers[", i, "]");
    if (!ValidName(c.name()))
      return FieldError(field + ".name", "must be 1-128 characters of [A-Za-z0-9._-]");
    auto caller = std::make_unique<CallerEntry>();
    caller->name = c.name();
    caller->tier = c.tier();
    for (const std::string& cap : c.allowed_capabilities()) {
      if (cap == "*") caller->all_capabilities = true;
      caller->capabilities.insert(cap);
    }
    for (int j = 0; j < c.key_sha256_size(); ++j) {
      const std::string& hex = c.key_sha256(j);
      if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
            return absl::ascii_isdigit(ch) || (ch >= 'a' && ch <= 'f');
          })) {
        return FieldError(absl::StrCat(field, ".key_sha256[", j, "]"),
                          "must be 64 lowercase hex characters");
      }
      config.keys_by_digest_[absl::HexStringToBytes(hex)].caller = caller.get();
    }
    for (int j = 0; j < c.keys_size(); ++j) {
      const config::v1::CallerKey& k = c.keys(j);
      const std::string kfield = absl::StrCat(field, ".keys[", j, "]");
      const std::string& hex = k.key_sha256();
      if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
            return absl::ascii_isdigit(ch) || (ch >= 'a' && ch <= 'f');
          })) {
        return FieldError(kfield + ".key_sha256", "must be 64 lowercase hex characters");
      }
      if (k.expire_unix_seconds() < 0) {
        return FieldError(kfield + ".expire_unix_seconds", "must not be negative");
      }
      CallerKeyEntry& entry = config.keys_by_digest_[absl::HexStringToBytes(hex)];
      if (entry.caller != nullptr && entry.caller != caller.get()) {
        return FieldError(kfield + ".key_sha256",
                          absl::StrCat("is also a key of caller \"", entry.caller->name, "\""));
      }
      entry.caller = caller.get();
      entry.key_id = k.key_id();
      entry.expire_time = k.expire_unix_seconds() == 0
                              ? absl::InfiniteFuture()
                              : absl::FromUnixSeconds(k.expire_unix_seconds());
    }
    for (int j = 0; j < c.cert_sans_size(); ++j) {
      const std::string san_field = absl::StrCat(field, ".cert_sans[", j, "]");
      if (!IsValidCertSan(c.cert_sans(j))) return FieldError(san_field, kCertSanForm);
      auto [it, inserted] = config.callers_by_san_.emplace(c.cert_sans(j), caller.get());
      if (!inserted && it->second != caller.get()) {
        return FieldError(san_field,
                          absl::StrCat("also identifies caller \"", it->second->name, "\""));
      }
    }
    config.callers_.push_back(std::move(caller));
  }
  return absl::OkStatus();
}

const CallerKeyEntry* RuntimeConfig::FindKey(std::string_view key) const {
  const std::string digest = Sha256(key);  // std::string_view in, raw bytes out
  auto it = keys_by_digest_.find(digest);
  if (it == keys_by_digest_.end()) return nullptr;
  // The map lookup is on a digest of the key; confirm the match in constant time as well.
  if (CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) != 0) return nullptr;
  return &it->second;
}

const CallerEntry* RuntimeConfig::FindCallerByCertSan(std::string_view san) const {
  auto it = callers_by_san_.find(std::string(san));
  return it == callers_by_san_.end() ? nullptr : it->second;
}

}  // namespace turnpike
