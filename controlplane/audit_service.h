// The gRPC face of the audit trail (turnpike.audit.v1.AuditService, sync API: its handlers block
// on SQLite): admin changes, chained entries, verification and checkpoints (docs/audit.md). Who
// may call it is the access policy's call (controlplane/access_policy.cc: the auditor and the
// admin). Statuses come from ToGrpcStatus. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_AUDIT_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_AUDIT_SERVICE_H_

#include "controlplane/audit_trail.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"

namespace turnpike::controlplane {

class AuditServiceImpl final : public audit::v1::AuditService::Service {
 public:
  explicit AuditServiceImpl(AuditTrail& trail) : trail_(trail) {}

  grpc::Status ListAdminChanges(grpc::ServerContext* context,
                                const audit::v1::ListAdminChangesRequest* request,
                                audit::v1::ListAdminChangesResponse* response) override;
  grpc::Status QueryAudit(grpc::ServerContext* context, const audit::v1::QueryAuditRequest* request,
                          audit::v1::QueryAuditResponse* response) override;
  grpc::Status VerifyAudit(grpc::ServerContext* context,
                           const audit::v1::VerifyAuditRequest* request,
                           audit::v1::VerifyAuditResponse* response) override;
  grpc::Status GetCheckpoint(grpc::ServerContext* context,
                             const audit::v1::GetCheckpointRequest* request,
                             audit::v1::GetCheckpointResponse* response) override;

 private:
  AuditTrail& trail_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUDIT_SERVICE_H_
