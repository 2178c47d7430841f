// The one module that builds and rewrites error statuses for both services (the gateway and the
// control plane). Library code returns absl::Status and attaches google.rpc detail messages
// (BadRequest, ErrorInfo, RetryInfo, or any proto) as payloads keyed by their Any type URL
// ("type.googleapis.com/<full name>"); ToGrpcStatus() is the one place a status becomes a
// grpc::Status, packing those public payloads into a google.rpc.Status in
// grpc-status-details-bin so every client (generated stubs, grpcurl, buf curl) can decode them.
// Payloads under any other URL are internal and never leave the process. WithCode() and
// WithMessage()/WithMessagePrefix() rewrite a status without losing its details.
// Stateless functions; thread-safe.
#ifndef TURNPIKE_COMMON_STATUS_H_
#define TURNPIKE_COMMON_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace turnpike {

// Error domain used in google.rpc.ErrorInfo.
inline constexpr char kErrorDomain[] = "turnpike.dev";
// Payloads whose type URL starts with this are public details; any other URL stays internal.
inline constexpr char kPublicDetailPrefix[] = "type.googleapis.com/";

// The payload URL of a public detail of type `message`'s type.
std::string DetailTypeUrl(const google::protobuf::Message& message);

// Attaches `detail` (any proto message) to `status` as a public error detail, replacing a detail
// of the same type. No-op on an OK status.
void AttachDetail(absl::Status& status, const google::protobuf::Message& detail);
// Attaches a google.rpc.ErrorInfo with a stable UPPER_SNAKE `reason` in kErrorDomain.
void AttachReason(absl::Status& status, std::string_view reason);
// Attaches a google.rpc.RetryInfo asking the client to wait `retry_after_ms`.
void AttachRetryInfo(absl::Status& status, int64_t retry_after_ms);

// The public detail of type T attached to `status`, if any (tests and callers that branch on it).
template <class T>
std::optional<T> GetDetail(const absl::Status& status) {
  T detail;
  auto payload = status.GetPayload(DetailTypeUrl(detail));
  if (!payload.has_value() || !detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

// A status with `code`, `message` and an ErrorInfo `reason`.
absl::Status ErrorWithReason(absl::StatusCode code, std::string_view message,
                             std::string_view reason);
// INVALID_ARGUMENT "<field>: <description>" with a google.rpc.BadRequest naming the field.
absl::Status InvalidFieldError(std::string_view field, std::string_view description);

// Collects google.rpc.BadRequest field violations while validating a request. Not thread-safe.
class Violations {
 public:
  void Add(std::string field, std::string description) {
    items_.emplace_back(std::move(field), std::move(description));
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  // OK if there are none; else `code` with "<prefix><first field>: <description> (and N more)"
  // and every violation in one BadRequest.
  absl::Status ToStatus(absl::StatusCode code = absl::StatusCode::kInvalidArgument,
                        std::string_view message_prefix = "") const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// `status` with its code replaced by `code`; message and every payload kept. An OK status stays
// OK (there is nothing to rewrite); `code` kOk gives OK (an OK status carries nothing).
absl::Status WithCode(const absl::Status& status, absl::StatusCode code);
// `status` with its message replaced by `message`; code and every payload kept. OK stays OK.
absl::Status WithMessage(const absl::Status& status, std::string_view message);
// `status` with `prefix` put before its message; code and every payload kept. OK stays OK.
absl::Status WithMessagePrefix(const absl::Status& status, std::string_view prefix);

// The gRPC status for `status`: same code and message, public payloads as rich details
// (grpc-status-details-bin); internal payloads are dropped.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The reverse, for answers from other services: code, message and public details (so GetDetail
// reads an ErrorInfo the other side attached).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_STATUS_H_
