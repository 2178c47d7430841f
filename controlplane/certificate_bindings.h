// CertificateBindings maps client-certificate subject alternative names to control-plane
// identities: an admin identity with a role, or a gateway bound to one node id (mutual TLS,
// docs/security.md). With --tls_client_ca, a call whose verified certificate carries a bound SAN
// is that identity, token or not; the Authenticator (controlplane/authenticator.h) asks Lookup()
// on every call. SANs are typed as openssl prints them and as callers' cert_sans are
// (common/cert_san.h). Bindings live in SQLite and in an in-memory index read by Lookup(), so an
// unbinding takes effect on the next call. Each bind and unbind is an entry of the audit trail,
// committed with it, naming the authenticated actor. Owned by the IdentityStore. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_CERTIFICATE_BINDINGS_H_
#define TURNPIKE_CONTROLPLANE_CERTIFICATE_BINDINGS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "controlplane/store.h"
#include "turnpike/admin/v1/admin.pb.h"

namespace turnpike::controlplane {

class CertificateBindings {
 public:
  static absl::StatusOr<std::unique_ptr<CertificateBindings>> Open(Store& store, Clock& clock);

  // The binding of `san`, if any.
  std::optional<admin::v1::CertificateBinding> Lookup(std::string_view san) const;

  // INVALID_ARGUMENT naming the field (a SAN not in the typed form, a bad name, neither or both
  // of role and node_id); ALREADY_EXISTS if the SAN is bound already (unbind it first).
  absl::StatusOr<admin::v1::CertificateBinding> Bind(const admin::v1::CertificateBinding& binding,
                                                     const std::string& actor);
  absl::StatusOr<std::vector<admin::v1::CertificateBinding>> List() const;
  // NOT_FOUND if the SAN is not bound.
  absl::StatusOr<admin::v1::CertificateBinding> Unbind(const std::string& san,
                                                       const std::string& actor);

 private:
  CertificateBindings(Store& store, Clock& clock) : store_(store), clock_(clock) {}
  absl::Status Load();

  Store& store_;
  Clock& clock_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, admin::v1::CertificateBinding> by_san_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CERTIFICATE_BINDINGS_H_
