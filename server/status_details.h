// Rich error details carried on absl::Status and turned into gRPC statuses in one place.
// Library code attaches google.rpc detail messages as status payloads keyed by their Any type URL
// ("type.googleapis.com/<full name>"); ToGrpcStatus() packs every such payload into a
// google.rpc.Status in grpc-status-details-bin, so any gRPC client can decode them. Payloads under
// other URLs are internal and never leave the process. Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_STATUS_DETAILS_H_
#define TURNPIKE_SERVER_STATUS_DETAILS_H_

#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace turnpike {

// Error domain used in google.rpc.ErrorInfo.
inline constexpr char kErrorDomain[] = "turnpike.dev";

// Attaches `detail` (any proto message) to `status` as a public error detail.
void AttachDetail(absl::Status& status, const google::protobuf::Message& detail);

// INVALID_ARGUMENT "<field>: <description>" with a google.rpc.BadRequest naming the field.
absl::Status InvalidFieldError(std::string_view field, std::string_view description);

// Attaches a google.rpc.ErrorInfo with a stable UPPER_SNAKE reason.
void AttachReason(absl::Status& status, std::string_view reason);

// Attaches a google.rpc.RetryInfo asking the client to wait `retry_after_ms`.
void AttachRetryInfo(absl::Status& status, int64_t retry_after_ms);

// The gRPC status for `status`: same code and message, public payloads as rich details.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_STATUS_DETAILS_H_
