// IdentityStore keeps the control plane's bearer tokens: admin tokens ("tpa_", each with a role)
// and node tokens ("tpn_", each bound to one gateway's node id), in the caller-key format
// (controlplane/caller_keys.h). Only a token's SHA-256 is stored, in SQLite and in an in-memory
// index of the valid tokens that Authenticate() reads, so a revocation takes effect on the next
// call. A token is shown once, in the response that creates it. Each creation and revocation is
// an entry of the audit trail, committed with it (who, what, when; never the token or its hash).
// Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_IDENTITY_STORE_H_
#define TURNPIKE_CONTROLPLANE_IDENTITY_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "controlplane/access_policy.h"
#include "controlplane/certificate_bindings.h"
#include "controlplane/sqlite.h"
#include "controlplane/store.h"
#include "turnpike/admin/v1/admin.pb.h"

namespace turnpike::controlplane {

inline constexpr std::string_view kAdminTokenPrefix = "tpa_";
inline constexpr std::string_view kNodeTokenPrefix = "tpn_";

// Who an authenticated call comes from.
struct Identity {
  enum class Kind { kAdmin, kNode };
  Kind kind = Kind::kAdmin;
  std::string name;  // the token's name: the actor in the audit trail
  admin::v1::AdminRole role = admin::v1::ADMIN_ROLE_UNSPECIFIED;  // admin tokens
  std::string node_id;                                            // node tokens
  // Node tokens: the capabilities the gateway may serve, sorted; empty for every capability.
  std::vector<std::string> capabilities;
  std::string display_prefix;
  // Set when a bound client certificate identified the call, alone or with a token naming the
  // same identity (the bound SAN; mutual TLS).
  std::string certificate_san;

  Principal principal() const;
  // "admin token alice (tpa_8Kq2Zx1x…)", "node certificate gw-1 (DNS:gw-1.example)", "node
  // token gw-1 (tpn_…) with certificate DNS:gw-1.example": safe to log and show.
  std::string Describe() const;
};

// "viewer", "operator", "admin", "auditor"; "" for UNSPECIFIED. And back (UNSPECIFIED if unknown).
std::string_view AdminRoleName(admin::v1::AdminRole role);
admin::v1::AdminRole AdminRoleFromName(std::string_view name);

// A node's capability restriction (CreateNodeTokenRequest.capabilities), sorted and checked in
// `db`'s transaction: at most 64 valid names, no duplicates (INVALID_ARGUMENT naming `field`),
// each naming an existing route (FAILED_PRECONDITION: a typo would otherwise leave the gateway
// nothing to serve, silently). And its stored form: names joined by ','; '' for every capability.
absl::StatusOr<std::vector<std::string>> CheckNodeCapabilities(SqliteDb& db,
                                                               std::vector<std::string> caps,
                                                               const std::string& field);
std::vector<std::string> SplitCapabilities(const std::string& joined);

// The identity a certificate binding makes.
Identity IdentityOf(const admin::v1::CertificateBinding& binding);

class IdentityStore {
 public:
  static absl::StatusOr<std::unique_ptr<IdentityStore>> Open(Store& store, Clock& clock);

  // The identity of a well-formed, stored, unrevoked token; UNAUTHENTICATED otherwise, with a
  // message that never contains the token.
  absl::StatusOr<Identity> Authenticate(std::string_view token) const;

  // Registers `token` (a well-formed admin token) as an admin-role token named
  // "bootstrap-<prefix>", unless its hash is stored already (a revoked one stays revoked).
  absl::Status AddBootstrapAdminToken(std::string_view token);
  // Whether any admin token, valid or revoked, exists (an empty database has none).
  bool HasAdminTokens() const;

  absl::StatusOr<admin::v1::CreateAdminTokenResponse> CreateAdminToken(const std::string& name,
                                                                       admin::v1::AdminRole role,
                                                                       const std::string& actor);
  absl::StatusOr<std::vector<admin::v1::AdminToken>> ListAdminTokens() const;
  // FAILED_PRECONDITION for the last valid admin-role token (nobody could manage tokens after).
  // Revoking a revoked token changes nothing.
  absl::StatusOr<admin::v1::AdminToken> RevokeAdminToken(const std::string& name,
                                                         const std::string& actor);

  // `capabilities`: at most 64 names, each of an existing route (FAILED_PRECONDITION otherwise);
  // empty for every capability.
  absl::StatusOr<admin::v1::CreateNodeTokenResponse> CreateNodeToken(
      const std::string& name, const std::string& node_id,
      const std::vector<std::string>& capabilities, const std::string& actor);
  absl::StatusOr<std::vector<admin::v1::NodeToken>> ListNodeTokens() const;
  absl::StatusOr<admin::v1::NodeToken> RevokeNodeToken(const std::string& name,
                                                       const std::string& actor);

  // Client-certificate identities (mutual TLS).
  CertificateBindings& certificates() const { return *certificates_; }

 private:
  IdentityStore(Store& store, Clock& clock) : store_(store), clock_(clock) {}
  absl::Status Load();
  // `audit`: the insert is also an audit-trail entry (every token an RPC creates).
  absl::Status InsertAdmin(const std::string& name, admin::v1::AdminRole role,
                           const std::string& sha256_hex, const std::string& display_prefix,
                           const std::string& actor, absl::Time now, bool audit);

  Store& store_;
  Clock& clock_;
  std::unique_ptr<CertificateBindings> certificates_;  // set by Open

  mutable absl::Mutex mu_;
  // Valid tokens by SHA-256 (lowercase hex).
  absl::flat_hash_map<std::string, Identity> valid_ ABSL_GUARDED_BY(mu_);
  bool any_admin_token_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_IDENTITY_STORE_H_
