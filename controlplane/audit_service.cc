#include "controlplane/audit_service.h"

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace turnpike::controlplane {
namespace {

namespace au = ::turnpike::audit::v1;

template <typename T>
grpc::Status Answer(const char* method, absl::StatusOr<T> result, T* response) {
  if (!result.ok()) {
    const absl::StatusCode code = result.status().code();
    if (code == absl::StatusCode::kInternal || code == absl::StatusCode::kDataLoss ||
        code == absl::StatusCode::kUnavailable) {
      spdlog::error("audit: {} failed: {}", method, result.status().ToString());
    }
    return ToGrpcStatus(result.status());
  }
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AuditServiceImpl::ListAdminChanges(grpc::ServerContext*,
                                                const au::ListAdminChangesRequest* request,
                                                au::ListAdminChangesResponse* response) {
  return Answer("ListAdminChanges", trail_.ListAdminChanges(*request), response);
}

grpc::Status AuditServiceImpl::QueryAudit(grpc::ServerContext*,
                                          const au::QueryAuditRequest* request,
                                          au::QueryAuditResponse* response) {
  return Answer("QueryAudit", trail_.Query(*request), response);
}

grpc::Status AuditServiceImpl::VerifyAudit(grpc::ServerContext*, const au::VerifyAuditRequest*,
                                           au::VerifyAuditResponse* response) {
  absl::StatusOr<au::VerifyAuditResponse> result = trail_.Verify();
  if (result.ok() && !result->intact()) {
    spdlog::error("audit trail verification failed: {}", result->problem());
  }
  return Answer("VerifyAudit", std::move(result), response);
}

grpc::Status AuditServiceImpl::GetCheckpoint(grpc::ServerContext*, const au::GetCheckpointRequest*,
                                             au::GetCheckpointResponse* response) {
  return Answer("GetCheckpoint", trail_.GetCheckpoint(), response);
}

}  // namespace turnpike::controlplane
