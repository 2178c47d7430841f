// The front half every front door's calls share (docs/architecture.md, "The request path", step
// 1): validate the request, read the current snapshot once, authorize the caller for the
// capability, and describe the admitted request for the attempt driver. The gRPC calls and the
// HTTP front door (server/http/) both go through AdmitCompletionRequest / AdmitEmbedRequest, so
// the two cannot drift. Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_
#define TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/exchange/attempt_driver.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/classification.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_env.h"
#include "server/grpc/limits_admission.h"
#include "turnpike/v1/completion.pb.h"
#include "turnpike/v1/embedding.pb.h"

namespace turnpike {

// The credentials a call presented, read once the snapshot it is authorized against is known
// (whether to read a client certificate depends on it).
using CredentialsOf = absl::FunctionRef<CallerCredentials(const RuntimeConfig&)>;

// Validates a parsed request and admits it: metering, snapshot, authorization. Fills `exchange`
// (begun with BeginCall) with what is known, also on failure (request id, end user, tags; then
// config, route, caller and `deadline` once authorized), so a refused call's event says as much
// as can be said. A request without an id gets one.
absl::Status AdmitCompletionRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                                    v1::StreamCompletionRequest* request,
                                    ExchangeRequest* exchange);
absl::Status AdmitEmbedRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                               v1::EmbedRequest* request, ExchangeRequest* exchange);

// Validates a classification (labels, text; then as the completion it is served as), admits it
// as AdmitCompletionRequest does, and checks that the capability's route is a classification
// route (FAILED_PRECONDITION naming it if not). Fills `plan` once the labels are valid.
absl::Status AdmitClassifyRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                                  v1::ClassifyRequest* request,
                                  std::unique_ptr<ClassificationPlan>* plan,
                                  ExchangeRequest* exchange);

// Parses `buffer` into `request` and admits it. Fills `exchange` (begun with BeginCall) with
// what is known, also on failure (request id, end user, tags; then config, route, caller and
// deadline once authorized), so a refused call's event says as much as can be said. A request
// without an id gets one.
absl::Status AdmitCompletion(CallEnv* env, const grpc::ByteBuffer& buffer,
                             const grpc::ServerContext& context,
                             v1::StreamCompletionRequest* request, ExchangeRequest* exchange);

// The request's size for admission: its messages' text, its max_tokens.
RequestSize CompletionSize(const v1::StreamCompletionRequest& request);

// The request's size for admission: its inputs' text; no text output.
RequestSize EmbedSize(const v1::EmbedRequest& request);

// The chat protocol's view of a request. `request` must outlive the exchange.
ChatRequest ToChatRequest(const v1::StreamCompletionRequest& request);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_COMPLETION_ADMISSION_H_
