// Caller authentication and capability authorization on the request path (docs/architecture.md,
// "The request path", step 1). A caller proves who it is with the key from `authorization:
// Bearer <key>` (hashed and looked up in the snapshot: keys are never stored in clear), with a
// client certificate whose subject alternative name is one of its cert_sans (mutual TLS,
// docs/tls.md), or with both, which must then name the same caller. Either way the result is
// the caller's name, the identity usage records and logs carry. No credential on a closed route
// or an unknown key is UNAUTHENTICATED, and so is a key from its expiry on (to the second, at
// `now`; the message names the key's id and says it expired, never the key). A valid key's use
// is noted in its KeyUseTable slot (the minute, for the health report). A known caller asking for a
// capability it may not use is PERMISSION_DENIED; an unknown capability is NOT_FOUND. Stateless;
// thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_AUTHORIZER_H_
#define TURNPIKE_SERVER_GRPC_AUTHORIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "server/config/runtime_config.h"

namespace turnpike {

// How a caller came to be known.
enum class AuthMethod { kNone, kKey, kCertificate, kKeyAndCertificate };

struct Authorization {
  const RouteEntry* route = nullptr;
  // Empty for an unauthenticated caller on an open route.
  std::string caller;
  std::string tier;  // the caller's tier, for limits and budgets narrowed to one
  AuthMethod method = AuthMethod::kNone;
};

// What a call presented: its `authorization` metadata values, and the SANs of the client
// certificate the TLS handshake verified, typed as in cert_sans ("DNS:…", "URI:…", "email:…",
// "IP:…"); empty without one.
struct CallerCredentials {
  std::vector<std::string_view> authorization;
  std::vector<std::string> cert_sans;
};

// The credentials of the call behind `context`. The certificate is read only when
// `read_certificate` (the snapshot identifies some caller by certificate).
CallerCredentials CallerCredentialsOf(const grpc::ServerContext& context, bool read_certificate);

// `now` is wall-clock time (Clock::Now()), for key expiry and last use.
absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const CallerCredentials& credentials,
                                        std::string_view capability, absl::Time now);

// CallerCredentialsOf + Authorize: what the call objects use.
absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const grpc::ServerContext& context,
                                        std::string_view capability, absl::Time now);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_AUTHORIZER_H_
