#include "server/grpc/authorizer.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cert_san.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "grpcpp/security/auth_context.h"

namespace turnpike {
namespace {

absl::Status Unauthenticated(std::string_view message) {
  absl::Status status = absl::UnauthenticatedError(Absl(message));
  AttachReason(status, "UNAUTHENTICATED");
  return status;
}

// The caller the key in the authorization metadata names; nullptr when there is none.
absl::StatusOr<const CallerEntry*> CallerByKey(const RuntimeConfig& config,
                                               const std::vector<std::string_view>& values,
                                               absl::Time now) {
  if (values.empty()) return nullptr;
  if (values.size() > 1) return Unauthenticated("more than one authorization header");
  absl::string_view value(values[0].data(), values[0].size());
  value = absl::StripAsciiWhitespace(value);
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return Unauthenticated("authorization must be \"Bearer <key>\"");
  }
  absl::string_view key = absl::StripAsciiWhitespace(value.substr(7));
  const CallerKeyEntry* entry = config.FindKey(Std(key));
  // The same message for every bad key: no oracle for which keys exist.
  if (entry == nullptr) return Unauthenticated("invalid API key");
  if (now >= entry->expire_time) {
    // Only the key's holder can get here, so naming the key's public id tells nobody anything.
    absl::Status status = absl::UnauthenticatedError(absl::StrCat(
        "API key ", entry->key_id.empty() ? "" : absl::StrCat("\"", entry->key_id, "\" "),
        "expired at ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", entry->expire_time, absl::UTCTimeZone()),
        "; ask for a new key"));
    AttachReason(status, "KEY_EXPIRED");
    return status;
  }
  if (entry->last_used != nullptr) KeyUseTable::Record(*entry->last_used, now);
  return entry->caller;
}

// The caller the verified client certificate names; nullptr when it names none (the connection
// is still encrypted: the caller may use a key, or none on an open route).
absl::StatusOr<const CallerEntry*> CallerByCertificate(const RuntimeConfig& config,
                                                       const std::vector<std::string>& sans) {
  const CallerEntry* found = nullptr;
  for (const std::string& san : sans) {
    const CallerEntry* caller = config.FindCallerByCertSan(san);
    if (caller == nullptr || caller == found) continue;
    if (found != nullptr) {
      return Unauthenticated(absl::StrCat("the client certificate names two callers, \"",
                                          found->name, "\" and \"", caller->name,
                                          "\"; issue one certificate per caller"));
    }
    found = caller;
  }
  return found;
}

}  // namespace

CallerCredentials CallerCredentialsOf(const grpc::ServerContext& context, bool read_certificate) {
  CallerCredentials out;
  const auto& metadata = context.client_metadata();
  for (auto [it, end] = metadata.equal_range("authorization"); it != end; ++it) {
    out.authorization.emplace_back(it->second.data(), it->second.size());
  }
  if (!read_certificate) return out;
  // Peer properties exist only on a TLS connection whose client certificate gRPC verified
  // against --tls_client_ca (the listener asks for none otherwise).
  out.cert_sans = TypedCertSans(context.auth_context().get());
  return out;
}

absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const CallerCredentials& credentials,
                                        std::string_view capability, absl::Time now) {
  absl::StatusOr<const CallerEntry*> by_key = CallerByKey(config, credentials.authorization, now);
  if (!by_key.ok()) return by_key.status();
  absl::StatusOr<const CallerEntry*> by_cert = CallerByCertificate(config, credentials.cert_sans);
  if (!by_cert.ok()) return by_cert.status();
  if (*by_key != nullptr && *by_cert != nullptr && *by_key != *by_cert) {
    return Unauthenticated(absl::StrCat("the API key is caller \"", (*by_key)->name,
                                        "\"'s but the client certificate is caller \"",
                                        (*by_cert)->name, "\"'s; send one caller's credentials"));
  }
  const CallerEntry* caller = *by_key != nullptr ? *by_key : *by_cert;
  const RouteEntry* route = config.FindRoute(capability);
  if (route == nullptr) {
    absl::Status status =
        absl::NotFoundError(absl::StrCat("no route for capability \"", Absl(capability), "\""));
    AttachReason(status, "CAPABILITY_NOT_FOUND");
    return status;
  }
  Authorization result;
  result.route = route;
  if (caller == nullptr) {
    if (!route->allow_unauthenticated) {
      return Unauthenticated(
          credentials.cert_sans.empty()
              ? "missing API key: send \"authorization: Bearer <key>\" metadata"
              : "missing API key: send \"authorization: Bearer <key>\" metadata (the client "
                "certificate names no caller)");
    }
    return result;
  }
  if (!caller->Allows(capability)) {
    absl::Status status = absl::PermissionDeniedError(absl::StrCat(
        "caller \"", caller->name, "\" may not use capability \"", Absl(capability), "\""));
    AttachReason(status, "CAPABILITY_NOT_ALLOWED");
    return status;
  }
  result.caller = caller->name;
  result.tier = caller->tier;
  result.method = *by_key == nullptr    ? AuthMethod::kCertificate
                  : *by_cert == nullptr ? AuthMethod::kKey
                                        : AuthMethod::kKeyAndCertificate;
  return result;
}

absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const grpc::ServerContext& context,
                                        std::string_view capability, absl::Time now) {
  return Authorize(config, CallerCredentialsOf(context, config.has_cert_callers()), capability,
                   now);
}

}  // namespace turnpike
