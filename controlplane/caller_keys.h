// Caller API keys and the control plane's bearer tokens share one format: a 4-character prefix
// ("tpk_" caller keys, "tpa_" admin tokens, "tpn_" node tokens; see controlplane/identity_store.h)
// + 43 base62 characters carrying 256 random bits + a 6-character
// base62 CRC-32 checksum of everything before it (53 characters in all). The recognisable
// prefix lets secret scanners find leaked keys, and the checksum lets anyone reject a mistyped
// or made-up key without a lookup. Only the SHA-256 of the whole key (lowercase hex) is stored
// and shipped to gateways. Stateless functions; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_CALLER_KEYS_H_
#define TURNPIKE_CONTROLPLANE_CALLER_KEYS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace turnpike::controlplane {

inline constexpr std::string_view kCallerKeyPrefix = "tpk_";
inline constexpr size_t kCallerKeyLength = 53;

struct GeneratedCallerKey {
  std::string key;             // shown once, never stored
  std::string sha256_hex;      // what the database and the snapshot hold
  std::string display_prefix;  // first 12 characters, safe to show in lists
};

absl::StatusOr<GeneratedCallerKey> GenerateCallerKey();

// Prefix, length, alphabet and checksum all valid.
bool IsWellFormedCallerKey(std::string_view key);

// The same format under another 4-character prefix (admin and node tokens).
absl::StatusOr<GeneratedCallerKey> GenerateKeyWithPrefix(std::string_view prefix);
bool IsWellFormedKeyWithPrefix(std::string_view key, std::string_view prefix);

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CALLER_KEYS_H_
