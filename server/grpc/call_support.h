// What every asynchronous call of the gateway shares: the facts of an accepted call (method,
// times, trace id), the client's deadline on the gateway's clock, response serialization into a
// reusable buffer, and the RequestFinished event of a call refused before it reached the attempt
// driver (bad input, no config, unauthenticated). Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_
#define TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "google/protobuf/map.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/exchange/attempt_driver.h"
#include "server/exchange/request_finished.h"
#include "server/usage/usage_recorder.h"

namespace turnpike {

// The facts of a call known when it is accepted: method, acceptance times (monotonic and wall),
// the W3C trace id of its `traceparent` metadata.
ExchangeRequest BeginCall(RequestMethod method, const grpc::ServerContext& context, Clock& clock);

// The trace id (32 lowercase hex digits) of a W3C `traceparent` value
// ("00-<trace id>-<parent id>-<flags>"), or empty if the value is malformed or the id all zero.
std::string TraceIdOf(std::string_view traceparent);

// The request's tags, sorted by key.
std::vector<std::pair<std::string, std::string>> SortedTags(
    const google::protobuf::Map<std::string, std::string>& tags);

// UNAVAILABLE (reason USAGE_SPOOL_FULL) while the gateway refuses new requests because it could
// not meter them; OK otherwise.
absl::Status CheckMetering(const UsageRecorder* usage);

// The client's deadline as a point on `clock`'s monotonic time (absl::InfiniteFuture() if the
// client set none): the one conversion from gRPC's wall-clock deadline to the planner's time.
absl::Time DeadlineFromGrpc(const grpc::ServerContext& context, Clock& clock);

// Serializes `message` into `out` (cleared first; buffers are reused per write).
void SerializeTo(const google::protobuf::Message& message, grpc::ByteBuffer* out);

// Emits the RequestFinished event of a call refused before any upstream work. `request` holds
// what was known when it was refused (its route, if any, names the capability).
void EmitRefused(RequestFinishedSink* sink, const ExchangeRequest& request,
                 const absl::Status& status, Clock& clock);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_CALL_SUPPORT_H_
