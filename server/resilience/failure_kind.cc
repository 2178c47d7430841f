#include "server/resilience/failure_kind.h"

#include <optional>

#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "server/providers/provider_adapter.h"
#include "server/upstream/transport.h"

namespace turnpike {

FailureKind ClassifyFailure(const absl::Status& status, bool deadline_passed) {
  if (status.ok()) return FailureKind::kNone;
  if (std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(status);
      info.has_value() && info->reason() == kBadAnswerReason) {
    return FailureKind::kBadAnswer;
  }
  if (std::optional<ProviderError> error = ProviderErrorFromStatus(status)) {
    switch (error->error_class) {
      case ProviderErrorClass::kInvalidRequest:
      case ProviderErrorClass::kNotFound:
        return FailureKind::kInvalidRequest;
      case ProviderErrorClass::kAuth:
        return FailureKind::kAuth;
      case ProviderErrorClass::kQuotaExhausted:
        return FailureKind::kQuotaExhausted;
      case ProviderErrorClass::kRateLimited:
        return FailureKind::kRateLimited;
      case ProviderErrorClass::kOverloaded:
      case ProviderErrorClass::kServer:
      case ProviderErrorClass::kUnknown:
        return FailureKind::kUpstream;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return FailureKind::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return deadline_passed ? FailureKind::kDeadline : FailureKind::kTimeout;
    case absl::StatusCode::kInvalidArgument:
      return FailureKind::kInvalidRequest;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return FailureKind::kUnsupported;
    default:
      return IsConnectFailure(status) ? FailureKind::kConnect : FailureKind::kUpstream;
  }
}

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kNone:
      return "success";
    case FailureKind::kCancelled:
      return "cancelled";
    case FailureKind::kDeadline:
      return "deadline passed";
    case FailureKind::kInvalidRequest:
      return "invalid request";
    case FailureKind::kUnsupported:
      return "unsupported by this target";
    case FailureKind::kAuth:
      return "authentication failed";
    case FailureKind::kQuotaExhausted:
      return "quota exhausted";
    case FailureKind::kRateLimited:
      return "rate limited";
    case FailureKind::kConnect:
      return "connect failure";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kUpstream:
      return "upstream failure";
    case FailureKind::kBadAnswer:
      return "answer outside the request's labels";
  }
  return "failure";
}

}  // namespace turnpike
