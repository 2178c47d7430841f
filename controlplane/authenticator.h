// Authenticator is the control plane's single gate: a gRPC AuthMetadataProcessor that runs for
// every call, on every service, before any handler. It reads the method (":path") and the
// `authorization: Bearer <token>` metadata, looks the method up in the access policy
// (controlplane/access_policy.h; a method with no row is refused), authenticates the token with
// the IdentityStore and checks the token's principal against the row. With mutual TLS, a verified
// client certificate whose SAN is bound (controlplane/certificate_bindings.h) identifies the call
// as well; a token sent with it must name the same identity:
//   * no or malformed or unknown or revoked token -> UNAUTHENTICATED;
//   * a valid token of the wrong kind or role -> PERMISSION_DENIED naming the role needed.
// Why a processor and not a server interceptor: gRPC 1.51 server interceptors cannot refuse a
// call (no Hijack on the server side), so they cannot make "deny" the default; a processor's
// refusal ends the call in gRPC core. gRPC runs processors only on secure credentials, so the
// control plane serves plaintext loopback through LocalServerCredentials, which gRPC counts as
// secure (docs/security.md).
// Failed authentications are slowed down by an AuthThrottle (controlplane/auth_throttle.h): the
// refusal is held on this processor's thread (gRPC's auth thread pool), never on a
// completion-queue or handler thread.
// Handlers learn who called with Identify(): in gRPC 1.51 the AuthContext a processor is given is
// shared by every call of the connection, so nothing per call can be stored there; Identify()
// derives the identity again from the call's own metadata (a hash and a map lookup).
// Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_AUTHENTICATOR_H_
#define TURNPIKE_CONTROLPLANE_AUTHENTICATOR_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/auth_throttle.h"
#include "controlplane/identity_store.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/server_context.h"

namespace turnpike::controlplane {

inline constexpr char kAuthorizationHeader[] = "authorization";

class Authenticator final : public grpc::AuthMetadataProcessor {
 public:
  Authenticator(const IdentityStore& identities, Clock& clock,
                AuthThrottle::Options throttle = AuthThrottle::Options())
      : identities_(identities), throttle_(throttle, clock) {}

  // Runs on gRPC's auth thread pool, never on a completion-queue thread.
  bool IsBlocking() const override { return true; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // The decision for one call, without gRPC types. `authorization` is the header's value, if
  // present. Returns the caller's identity (nullopt for methods anyone may call).
  // `cert_sans`: the SANs of the call's verified client certificate (common/cert_san.h).
  absl::StatusOr<std::optional<Identity>> Decide(std::string_view method,
                                                 std::optional<std::string_view> authorization,
                                                 const std::vector<std::string>& cert_sans = {});

  // Decide(), and an UNAUTHENTICATED refusal held back by the throttle, as every gRPC call's
  // is: what Process() runs, and what the dashboard's HTTP endpoints run for the method they
  // transcode (controlplane/dashboard/dashboard.h). Blocks the calling thread while held.
  absl::StatusOr<std::optional<Identity>> Authorize(std::string_view method,
                                                    std::optional<std::string_view> authorization,
                                                    const std::vector<std::string>& cert_sans = {});

  // The identity of a call the gate admitted; UNAUTHENTICATED if it carries none (a method anyone
  // may call) or the token was revoked since.
  absl::StatusOr<Identity> Identify(const grpc::ServerContextBase& context) const;

  // For node RPCs (Watch, ReportHealth, ReportUsage, leases): the call's identity if it is a node
  // token bound to `node_id`; PERMISSION_DENIED if it is bound to another node (one gateway
  // cannot act as another), UNAUTHENTICATED as Identify().
  absl::StatusOr<Identity> IdentifyNode(const grpc::ServerContextBase& context,
                                        std::string_view node_id) const;

  // Refusals since start, by reason (metrics).
  struct Counts {
    uint64_t missing = 0;            // no authorization header
    uint64_t malformed = 0;          // not "Bearer <tpa_/tpn_ token>"
    uint64_t invalid = 0;            // well-formed but unknown or revoked; or token and
                                     // certificate naming two identities
    uint64_t permission_denied = 0;  // valid, wrong role or kind
    uint64_t unknown_method = 0;     // no row in the access policy
    uint64_t wrong_node = 0;         // a node token used for another node id
    uint64_t held = 0;               // failed authentications answered after a delay
  };
  Counts counts() const;

 private:
  absl::StatusOr<Identity> Authenticate(std::optional<std::string_view> authorization,
                                        const std::vector<std::string>& cert_sans) const;
  absl::StatusOr<Identity> AuthenticateToken(std::optional<std::string_view> authorization,
                                             bool has_certificate) const;
  // The identity the certificate's bound SANs name; nullopt if none is bound.
  absl::StatusOr<std::optional<Identity>> ByCertificate(
      const std::vector<std::string>& cert_sans) const;

  const IdentityStore& identities_;
  AuthThrottle throttle_;
  mutable std::atomic<uint64_t> missing_{0};
  mutable std::atomic<uint64_t> malformed_{0};
  mutable std::atomic<uint64_t> invalid_{0};
  std::atomic<uint64_t> permission_denied_{0};
  std::atomic<uint64_t> unknown_method_{0};
  mutable std::atomic<uint64_t> wrong_node_{0};
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUTHENTICATOR_H_
