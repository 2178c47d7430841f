#include "server/grpc/call_support.h"

#include <chrono>

#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace turnpike {

absl::Time DeadlineFromGrpc(const grpc::ServerContext& context, Clock& clock) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  const absl::Duration left = absl::FromChrono(deadline) - clock.Now();
  return clock.MonotonicNow() + left;
}

void SerializeTo(const google::protobuf::Message& message, grpc::ByteBuffer* out) {
  out->Clear();  // the serializer requires an empty buffer
  bool own;
  grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(message, out, &own);
}

void EmitRefused(RequestFinishedSink* sink, RequestMethod method, std::string request_id,
                 std::string capability, std::string caller, std::string end_user,
                 const absl::Status& status, absl::Time accepted, absl::Time accepted_wall,
                 Clock& clock) {
  if (sink == nullptr) return;
  RequestFinished event;
  event.method = method;
  event.request_id = std::move(request_id);
  event.capability = std::move(capability);
  event.caller = std::move(caller);
  event.end_user = std::move(end_user);
  event.status = status;
  event.refused = true;
  event.cost_known = true;  // nothing was billed
  event.start_time = accepted_wall;
  event.latency = clock.MonotonicNow() - accepted;
  event.overhead_nanos = absl::ToInt64Nanoseconds(event.latency);
  sink->OnRequestFinished(event);
}

}  // namespace turnpike
