// The gRPC face of the usage ledger (turnpike.usage.v1.UsageService, sync API: its handlers
// block on SQLite): ReportUsage from gateways, QuerySpend/ListUsage/ExportUsage for dashboards
// and finance. Statuses come from ToGrpcStatus (BadRequest details naming the field or record);
// one log line per refused batch. ReportUsage is a node RPC: every record must name the node its
// token is bound to (a gateway cannot report usage as another). Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_USAGE_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_USAGE_SERVICE_H_

#include "controlplane/authenticator.h"
#include "controlplane/usage_ledger.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike::controlplane {

class UsageServiceImpl final : public usage::v1::UsageService::Service {
 public:
  UsageServiceImpl(UsageLedger& ledger, const Authenticator& authenticator)
      : ledger_(ledger), authenticator_(authenticator) {}

  grpc::Status ReportUsage(grpc::ServerContext* context,
                           const usage::v1::ReportUsageRequest* request,
                           usage::v1::ReportUsageResponse* response) override;
  grpc::Status QuerySpend(grpc::ServerContext* context, const usage::v1::QuerySpendRequest* request,
                          usage::v1::QuerySpendResponse* response) override;
  grpc::Status ListUsage(grpc::ServerContext* context, const usage::v1::ListUsageRequest* request,
                         usage::v1::ListUsageResponse* response) override;
  grpc::Status ExportUsage(grpc::ServerContext* context,
                           const usage::v1::ExportUsageRequest* request,
                           grpc::ServerWriter<usage::v1::ExportUsageResponse>* writer) override;

 private:
  UsageLedger& ledger_;
  const Authenticator& authenticator_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_USAGE_SERVICE_H_
