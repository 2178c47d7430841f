// What every asynchronous call of the gateway shares: the client's deadline on the gateway's
// clock, response serialization into a reusable buffer, and the RequestFinished event of a call
// refused before it reached the attempt driver (bad input, no config, unauthenticated).
// Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_
#define TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/exchange/request_finished.h"

namespace turnpike {

// The client's deadline as a point on `clock`'s monotonic time (absl::InfiniteFuture() if the
// client set none): the one conversion from gRPC's wall-clock deadline to the planner's time.
absl::Time DeadlineFromGrpc(const grpc::ServerContext& context, Clock& clock);

// Serializes `message` into `out` (cleared first; buffers are reused per write).
void SerializeTo(const google::protobuf::Message& message, grpc::ByteBuffer* out);

// Emits the RequestFinished event of a call refused before any upstream work.
void EmitRefused(RequestFinishedSink* sink, RequestMethod method, std::string request_id,
                 std::string capability, std::string caller, std::string end_user,
                 const absl::Status& status, absl::Time accepted, absl::Time accepted_wall,
                 Clock& clock);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_
