// The gRPC face of the lease ledger: turnpike.budget.v1.BudgetService (docs/budgets.md).
// GetBudget, ListBudgets, AcquireLease and ReleaseLease are synchronous handlers (they wait on
// SQLite); WatchBudgets is a callback server stream, one reactor per stream fed by the
// BudgetWatchHub, the next message started only from OnWriteDone, so a slow dashboard gets the
// newest state of every budget that changed merged into its next message. A stream ends on client
// cancel (CANCELLED) and on shutdown (UNAVAILABLE). Statuses come from ToGrpcStatus. Not
// authenticated here: the control plane's method table will cover it. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_SERVICE_H_

#include "controlplane/authenticator.h"
#include "controlplane/budget/budget_watch_hub.h"
#include "controlplane/budget/lease_ledger.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"

namespace turnpike::controlplane {

class BudgetServiceImpl final : public budget::v1::BudgetService::WithCallbackMethod_WatchBudgets<
                                    budget::v1::BudgetService::Service> {
 public:
  // `authenticator` binds lease calls to the calling gateway's node token.
  BudgetServiceImpl(LeaseLedger& ledger, BudgetWatchHub& hub, const Authenticator& authenticator)
      : ledger_(ledger), hub_(hub), authenticator_(authenticator) {}

  grpc::Status GetBudget(grpc::ServerContext* context, const budget::v1::GetBudgetRequest* request,
                         budget::v1::GetBudgetResponse* response) override;
  grpc::Status ListBudgets(grpc::ServerContext* context,
                           const budget::v1::ListBudgetsRequest* request,
                           budget::v1::ListBudgetsResponse* response) override;
  grpc::Status AcquireLease(grpc::ServerContext* context,
                            const budget::v1::AcquireLeaseRequest* request,
                            budget::v1::AcquireLeaseResponse* response) override;
  grpc::Status ReleaseLease(grpc::ServerContext* context,
                            const budget::v1::ReleaseLeaseRequest* request,
                            budget::v1::ReleaseLeaseResponse* response) override;
  grpc::ServerWriteReactor<budget::v1::WatchBudgetsResponse>* WatchBudgets(
      grpc::CallbackServerContext* context,
      const budget::v1::WatchBudgetsRequest* request) override;

 private:
  LeaseLedger& ledger_;
  BudgetWatchHub& hub_;
  const Authenticator& authenticator_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_SERVICE_H_
