// The step of every call between authorization and the attempt driver: choose the route's chain
// that serves it (SelectRoute: tier chain or variant, docs/routing.md), pass the request through
// its route's rate limits and budgets (server/admission/admission.h), put what is left of them in
// the response metadata, and hand the request on with its admission ticket (or its refusal).
// Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_LIMITS_ADMISSION_H_
#define TURNPIKE_SERVER_GRPC_LIMITS_ADMISSION_H_

#include <functional>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "server/exchange/attempt_driver.h"
#include "server/grpc/call_env.h"

namespace turnpike {

// What admission needs to know about a request's size.
struct RequestSize {
  int64_t text_bytes = 0;  // the input text, all messages or inputs
  int items = 0;           // messages or inputs
  int64_t max_tokens = 0;  // 0: the route's default
  bool text_output = true;
};

// Receives the remaining allowance ("x-turnpike-remaining-*") for the response's headers or
// metadata; called before `then`, on the same thread.
using AllowanceSink = std::function<void(const std::string& key, const std::string& value)>;

// Runs `then` exactly once, inline or on the lease manager's thread: with the request admitted
// (ticket, route and degraded set) and OK, or with the request as it was and the refusal.
// Without an admission layer (env->admission null) `then` runs inline, admitted.
void AdmitToLimits(CallEnv* env, grpc::ServerContext* context, ExchangeRequest request,
                   const RequestSize& size,
                   std::function<void(ExchangeRequest, absl::Status)> then);
// The same for any front door: the allowance goes to `allowance`.
void AdmitToLimits(CallEnv* env, AllowanceSink allowance, ExchangeRequest request,
                   const RequestSize& size,
                   std::function<void(ExchangeRequest, absl::Status)> then);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_LIMITS_ADMISSION_H_
