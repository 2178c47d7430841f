// Caller authentication and capability authorization on the request path (docs/architecture.md,
// "The request path", step 1). The key from `authorization: Bearer <key>` is hashed and looked up
// in the snapshot (keys are never stored in clear). No key on a closed route or an unknown key is
// UNAUTHENTICATED; a known caller asking for a capability it may not use is PERMISSION_DENIED; an
// unknown capability is NOT_FOUND. Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_AUTHORIZER_H_
#define TURNPIKE_SERVER_GRPC_AUTHORIZER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "server/config/runtime_config.h"

namespace turnpike {

struct Authorization {
  const RouteEntry* route = nullptr;
  // Empty for an unauthenticated caller on an open route.
  std::string caller;
  std::string tier;  // the caller's tier, for limits and budgets narrowed to one
};

absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const grpc::ServerContext& context,
                                        std::string_view capability);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_AUTHORIZER_H_
