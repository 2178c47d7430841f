// The front half both completion methods share (docs/architecture.md, "The request path", step
// 1): parse and validate the raw request, read the current snapshot once, authorize the caller's
// key for the capability, and describe the admitted request for the attempt driver. Stateless;
// thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_
#define TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/exchange/attempt_driver.h"
#include "server/exchange/chat_exchange.h"
#include "server/grpc/call_env.h"
#include "server/grpc/limits_admission.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// Parses `buffer` into `request` and admits it. Fills `exchange` (begun with BeginCall) with
// what is known, also on failure (request id, end user, tags; then config, route, caller and
// deadline once authorized), so a refused call's event says as much as can be said. A request
// without an id gets one.
absl::Status AdmitCompletion(CallEnv* env, const grpc::ByteBuffer& buffer,
                             const grpc::ServerContext& context,
                             v1::StreamCompletionRequest* request, ExchangeRequest* exchange);

// The request's size for admission: its messages' text, its max_tokens.
RequestSize CompletionSize(const v1::StreamCompletionRequest& request);

// The chat protocol's view of a request. `request` must outlive the exchange.
ChatRequest ToChatRequest(const v1::StreamCompletionRequest& request);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_
