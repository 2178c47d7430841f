#include "server/grpc/call_support.h"

#include <algorithm>
#include <chrono>

#include "common/status.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace turnpike {
namespace {

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

ExchangeRequest BeginCall(RequestMethod method, const grpc::ServerContext& context, Clock& clock) {
  ExchangeRequest r;
  r.method = method;
  r.accepted = clock.MonotonicNow();
  r.accepted_wall = clock.Now();
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("traceparent"); it != metadata.end()) {
    r.trace_id = TraceIdOf(std::string_view(it->second.data(), it->second.size()));
  }
  return r;
}

std::string TraceIdOf(std::string_view traceparent) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 characters. A
  // future version may append fields after the flags.
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-' ||
      traceparent[52] != '-') {
    return "";
  }
  const std::string_view version = traceparent.substr(0, 2);
  const std::string_view trace_id = traceparent.substr(3, 32);
  const std::string_view parent_id = traceparent.substr(36, 16);
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace_id) || !IsLowerHex(parent_id) ||
      !IsLowerHex(traceparent.substr(53, 2))) {
    return "";
  }
  if (version == "00" && traceparent.size() != 55) return "";
  if (trace_id.find_first_not_of('0') == std::string_view::npos) return "";
  return std::string(trace_id);
}

std::vector<std::pair<std::string, std::string>> SortedTags(
    const google::protobuf::Map<std::string, std::string>& tags) {
  std::vector<std::pair<std::string, std::string>> out(tags.begin(), tags.end());
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status CheckMetering(const UsageRecorder* usage) {
  if (usage == nullptr || usage->Accepting()) return absl::OkStatus();
  absl::Status status = absl::UnavailableError(
      "the gateway's usage spool is full and it is set to refuse unmetered requests "
      "(--usage_spool_full=reject); the control plane may be unreachable");
  AttachReason(status, "USAGE_SPOOL_FULL");
  return status;
}

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

void EmitRefused(RequestFinishedSink* sink, const ExchangeRequest& request,
                 const absl::Status& status, Clock& clock) {
  if (sink == nullptr) return;
  RequestFinished event;
  event.method = request.method;
  event.request_id = request.request_id;
  if (request.route != nullptr) event.capability = request.route->capability;
  event.caller = request.caller;
  event.end_user = request.end_user;
  event.trace_id = request.trace_id;
  event.tags = request.tags;
  if (request.config != nullptr) event.config_version = request.config->version();
  event.status = status;
  event.refused = true;
  event.cost_known = true;  // nothing was billed
  event.start_time = request.accepted_wall;
  event.latency = clock.MonotonicNow() - request.accepted;
  event.overhead_nanos = absl::ToInt64Nanoseconds(event.latency);
  sink->OnRequestDecided(event);
  sink->OnRequestFinished(event);
}

}  // namespace turnpike
