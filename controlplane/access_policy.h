// The one table that says who may call what on the control plane: every gRPC method served there,
// by full name ("/turnpike.admin.v1.AdminService/CreateRoute"), mapped to the principals allowed
// to call it. A method missing from the table is refused (default deny); a unit test walks every
// service registered on the control plane and fails on a method without a row, so a new RPC
// cannot ship unguarded. Roles nest viewer < operator < admin; auditor stands apart (the audit
// trail and the usage ledger, read-only); "node" is a gateway's node token. docs/security.md
// renders this table for people. Stateless; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ACCESS_POLICY_H_
#define TURNPIKE_CONTROLPLANE_ACCESS_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnpike::controlplane {

// Who a caller is, as far as the policy cares.
enum class Principal : uint8_t {
  kViewer = 1 << 0,
  kOperator = 1 << 1,
  kAdmin = 1 << 2,
  kAuditor = 1 << 3,
  kNode = 1 << 4,
};

// The principals allowed to call one method; `anyone` for health checks and reflection (no
// credential needed: neither reveals anything that is not in the repository's protos).
struct Access {
  uint8_t allowed = 0;  // bitwise OR of Principal
  bool anyone = false;
  // What PERMISSION_DENIED names, e.g. "operator" or "auditor or operator".
  std::string_view needed;

  bool Allows(Principal p) const { return anyone || (allowed & static_cast<uint8_t>(p)) != 0; }
};

// The row for `full_method` ("/package.Service/Method"); nullopt if it has none.
std::optional<Access> AccessFor(std::string_view full_method);

// Every method in the table, for tests and docs.
std::vector<std::string> PolicyMethods();

std::string_view PrincipalName(Principal p);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ACCESS_POLICY_H_
