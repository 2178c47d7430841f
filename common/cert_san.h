// The form of a caller's certificate SAN (turnpike.config.v1.Caller.cert_sans), checked the same
// way by the control plane (on write) and the gateway (on every snapshot): a type as openssl
// writes it, a colon, and a value of printable characters without spaces. TypedCertSans reads
// them, in that form, from the client certificate gRPC verified: the gateway matches callers'
// cert_sans with it, the control plane its certificate bindings. Thread-safe.
#ifndef TURNPIKE_COMMON_CERT_SAN_H_
#define TURNPIKE_COMMON_CERT_SAN_H_

#include <grpc/grpc_security_constants.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "grpcpp/security/auth_context.h"

namespace turnpike {

inline constexpr std::array<std::string_view, 4> kCertSanTypes = {"DNS:", "URI:", "email:", "IP:"};
inline constexpr size_t kMaxCertSanLength = 1024;
inline constexpr int kMaxCertSansPerCaller = 100;
inline constexpr char kCertSanForm[] =
    "must be DNS:<name>, URI:<uri>, email:<address> or IP:<address> (at most 1024 printable "
    "characters, no spaces)";

inline bool IsValidCertSan(std::string_view san) {
  if (san.size() > kMaxCertSanLength) return false;
  for (std::string_view type : kCertSanTypes) {
    if (san.substr(0, type.size()) != type) continue;
    if (san.size() == type.size()) return false;
    for (char ch : san.substr(type.size())) {
      if (ch <= 0x20 || ch >= 0x7f) return false;
    }
    return true;
  }
  return false;
}

// The subject alternative names of the connection's client certificate, typed as above; empty
// unless gRPC verified one (a TLS listener with a client CA; peer properties exist only then).
inline std::vector<std::string> TypedCertSans(const grpc::AuthContext* auth) {
  std::vector<std::string> out;
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return out;
  static constexpr std::pair<const char*, std::string_view> kTyped[] = {
      {GRPC_PEER_DNS_PROPERTY_NAME, "DNS:"},
      {GRPC_PEER_URI_PROPERTY_NAME, "URI:"},
      {GRPC_PEER_EMAIL_PROPERTY_NAME, "email:"},
      {GRPC_PEER_IP_PROPERTY_NAME, "IP:"}};
  for (const auto& [property, type] : kTyped) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      std::string san(type);
      san.append(value.data(), value.size());
      out.push_back(std::move(san));
    }
  }
  return out;
}

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_CERT_SAN_H_
