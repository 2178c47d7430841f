// Error helpers for the control plane. Library code returns absl::Status and attaches
// google.rpc detail messages (BadRequest, ErrorInfo) as payloads keyed by their Any type URL;
// ToGrpcStatus() is the one place they become a gRPC status with grpc-status-details-bin, so
// every client (grpcurl, buf curl, generated stubs) can decode them. Stateless; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ERRORS_H_
#define TURNPIKE_CONTROLPLANE_ERRORS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace turnpike::controlplane {

// Collects google.rpc.BadRequest field violations while validating a request.
class Violations {
 public:
  void Add(std::string field, std::string description) {
    items_.emplace_back(std::move(field), std::move(description));
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  // INVALID_ARGUMENT (or `code`) naming the first violation, with all of them attached.
  absl::Status ToStatus(absl::StatusCode code = absl::StatusCode::kInvalidArgument,
                        const std::string& message_prefix = "") const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Attaches `detail` as a public error detail.
void AttachDetail(absl::Status& status, const google::protobuf::Message& detail);
// Attaches a google.rpc.ErrorInfo with a stable UPPER_SNAKE reason.
void AttachReason(absl::Status& status, const std::string& reason);
// A status with `code`, `message` and an ErrorInfo `reason`.
absl::Status ErrorWithReason(absl::StatusCode code, const std::string& message,
                             const std::string& reason);

// The gRPC status for `status`: same code and message, public payloads as rich details.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ERRORS_H_
