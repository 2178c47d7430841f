// The form of a caller's certificate SAN (turnpike.config.v1.Caller.cert_sans), checked the same
// way by the control plane (on write) and the gateway (on every snapshot): a type as openssl
// writes it, a colon, and a value of printable characters without spaces. Thread-safe.
#ifndef TURNPIKE_COMMON_CERT_SAN_H_
#define TURNPIKE_COMMON_CERT_SAN_H_

#include <array>
#include <string_view>

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

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_CERT_SAN_H_
