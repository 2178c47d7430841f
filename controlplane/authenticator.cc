#include "controlplane/authenticator.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cert_san.h"
#include "common/status.h"

namespace turnpike::controlplane {
namespace {

constexpr std::string_view kBearer = "bearer ";

// Abseil's string_view is its own type in this toolchain, not an alias of std::string_view.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Two credentials of one node (a token and a certificate, or two bound SANs) agree on what it may
// serve when their restrictions are equal or one has none; the restricted one then applies (a
// credential never widens another's restriction).
bool SameOrOneUnrestricted(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.empty() || b.empty() || a == b;
}

}  // namespace

absl::StatusOr<std::optional<Identity>> Authenticator::ByCertificate(
    const std::vector<std::string>& cert_sans) const {
  std::optional<Identity> found;
  for (const std::string& san : cert_sans) {
    std::optional<admin::v1::CertificateBinding> binding = identities_.certificates().Lookup(san);
    if (!binding.has_value()) continue;
    Identity id = IdentityOf(*binding);
    if (found.has_value() && (found->kind != id.kind || found->name != id.name ||
                              !SameOrOneUnrestricted(found->capabilities, id.capabilities))) {
      invalid_.fetch_add(1, std::memory_order_relaxed);
      return ErrorWithReason(
          absl::StatusCode::kUnauthenticated,
          absl::StrCat("the client certificate names two identities, ", found->Describe(), " and ",
                       id.Describe(), "; issue one certificate per identity"),
          "AMBIGUOUS_CERTIFICATE");
    }
    if (!found.has_value()) {
      found = std::move(id);
    } else if (found->capabilities.empty()) {
      found->capabilities = std::move(id.capabilities);  // the restricted binding's applies
    }
  }
  return found;
}

absl::StatusOr<Identity> Authenticator::Authenticate(
    std::optional<std::string_view> authorization,
    const std::vector<std::string>& cert_sans) const {
  absl::StatusOr<std::optional<Identity>> by_cert = ByCertificate(cert_sans);
  if (!by_cert.ok()) return by_cert.status();
  const bool has_token = authorization.has_value() && !authorization->empty();
  if (by_cert->has_value() && !has_token) return **std::move(by_cert);
  absl::StatusOr<Identity> by_token = AuthenticateToken(authorization, !cert_sans.empty());
  if (!by_token.ok() || !by_cert->has_value()) return by_token;
  // Both: they must name the same identity, as a caller's key and certificate must.
  const Identity& cert = **by_cert;
  const bool same = by_token->kind == cert.kind &&
                    (cert.kind == Identity::Kind::kNode
                         ? by_token->node_id == cert.node_id &&
                               SameOrOneUnrestricted(by_token->capabilities, cert.capabilities)
                         : by_token->name == cert.name && by_token->role == cert.role);
  if (!same) {
    invalid_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(
        absl::StatusCode::kUnauthenticated,
        absl::StrCat("the token is ", by_token->Describe(), " but the client certificate is ",
                     cert.Describe(), "; send one identity's credentials"),
        "CREDENTIALS_DISAGREE");
  }
  by_token->certificate_san = cert.certificate_san;
  if (by_token->capabilities.empty()) by_token->capabilities = cert.capabilities;
  return by_token;
}

absl::StatusOr<Identity> Authenticator::AuthenticateToken(
    std::optional<std::string_view> authorization, bool has_certificate) const {
  if (!authorization.has_value() || authorization->empty()) {
    missing_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                           has_certificate
                               ? "missing credentials: the client certificate's SANs are bound to "
                                 "no identity (BindCertificate), and no \"authorization: Bearer "
                                 "<token>\" metadata was sent (docs/security.md)"
                               : "missing credentials: send metadata \"authorization: Bearer "
                                 "<token>\" (docs/security.md)",
                           "MISSING_CREDENTIALS");
  }
  std::string_view value = *authorization;
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(AV(value.substr(0, kBearer.size())), AV(kBearer))) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                           "malformed authorization metadata: expected \"Bearer <token>\"",
                           "MALFORMED_TOKEN");
  }
  absl::string_view token = absl::StripAsciiWhitespace(AV(value.substr(kBearer.size())));
  absl::StatusOr<Identity> identity =
      identities_.Authenticate(std::string_view(token.data(), token.size()));
  if (!identity.ok()) {
    (absl::StrContains(identity.status().message(), "malformed") ? malformed_ : invalid_)
        .fetch_add(1, std::memory_order_relaxed);
  }
  return identity;
}

absl::StatusOr<std::optional<Identity>> Authenticator::Decide(
    std::string_view method, std::optional<std::string_view> authorization,
    const std::vector<std::string>& cert_sans) {
  std::optional<Access> access = AccessFor(method);
  if (!access.has_value()) {
    unknown_method_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           absl::StrCat(AV(method), " is not in the control plane's access policy"),
                           "METHOD_NOT_IN_POLICY");
  }
  if (access->anyone) return std::optional<Identity>();
  absl::StatusOr<Identity> identity = Authenticate(authorization, cert_sans);
  if (!identity.ok()) return identity.status();
  if (!access->Allows(identity->principal())) {
    permission_denied_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(
        absl::StatusCode::kPermissionDenied,
        absl::StrCat(AV(method), " needs role ", AV(access->needed), "; ", identity->Describe(),
                     " is ",
                     identity->kind == Identity::Kind::kNode
                         ? "a gateway's node credential"
                         : absl::StrCat("role ", AV(PrincipalName(identity->principal())))),
        "PERMISSION_DENIED");
  }
  return std::optional<Identity>(*std::move(identity));
}

grpc::Status Authenticator::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                    OutputMetadata*, OutputMetadata*) {
  auto path = auth_metadata.find(":path");
  std::string_view method = path == auth_metadata.end()
                                ? std::string_view()
                                : std::string_view(path->second.data(), path->second.size());
  std::optional<std::string_view> authorization;
  if (auto it = auth_metadata.find(kAuthorizationHeader); it != auth_metadata.end()) {
    authorization = std::string_view(it->second.data(), it->second.size());
  }
  absl::StatusOr<std::optional<Identity>> decision =
      Authorize(method, authorization, TypedCertSans(context));
  if (decision.ok()) return grpc::Status::OK;
  return ToGrpc(decision.status());
}

absl::StatusOr<std::optional<Identity>> Authenticator::Authorize(
    std::string_view method, std::optional<std::string_view> authorization,
    const std::vector<std::string>& cert_sans) {
  absl::StatusOr<std::optional<Identity>> decision = Decide(method, authorization, cert_sans);
  if (decision.status().code() == absl::StatusCode::kUnauthenticated) {
    // A guess (or a mistake): answered after a delay that grows with recent failures.
    if (absl::Time until = throttle_.RecordFailure(); until != absl::InfinitePast()) {
      throttle_.Hold(until);
    }
  }
  return decision;
}

absl::StatusOr<Identity> Authenticator::Identify(const grpc::ServerContextBase& context) const {
  const auto& md = context.client_metadata();
  auto it = md.find(kAuthorizationHeader);
  std::optional<std::string_view> authorization;
  if (it != md.end()) authorization = std::string_view(it->second.data(), it->second.size());
  return Authenticate(authorization, TypedCertSans(context.auth_context().get()));
}

absl::StatusOr<Identity> Authenticator::IdentifyNode(const grpc::ServerContextBase& context,
                                                     std::string_view node_id) const {
  absl::StatusOr<Identity> identity = Identify(context);
  if (!identity.ok()) return identity;
  if (identity->kind != Identity::Kind::kNode || identity->node_id != node_id) {
    wrong_node_.fetch_add(1, std::memory_order_relaxed);
    return ErrorWithReason(
        absl::StatusCode::kPermissionDenied,
        identity->kind == Identity::Kind::kNode
            ? absl::StrCat("node_id \"", AV(node_id), "\": ", identity->Describe(),
                           " is bound to node \"", identity->node_id, "\"")
            : absl::StrCat("node RPCs need a node credential; ", identity->Describe(),
                           " is not one"),
        "WRONG_NODE");
  }
  return identity;
}

Authenticator::Counts Authenticator::counts() const {
  Counts c;
  c.missing = missing_.load(std::memory_order_relaxed);
  c.malformed = malformed_.load(std::memory_order_relaxed);
  c.invalid = invalid_.load(std::memory_order_relaxed);
  c.permission_denied = permission_denied_.load(std::memory_order_relaxed);
  c.unknown_method = unknown_method_.load(std::memory_order_relaxed);
  c.wrong_node = wrong_node_.load(std::memory_order_relaxed);
  c.held = throttle_.held_total();
  return c;
}

}  // namespace turnpike::controlplane
