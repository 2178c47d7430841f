// The gRPC face of the admin API (turnpike.admin.v1.AdminService, sync API: the admin API is not
// the hot path and its handlers block on SQLite). Who may call which method was decided before
// the handler runs (controlplane/authenticator.h); each change takes its actor from the
// authenticated admin token (its name), never from anything the caller claims, calls ConfigAdmin
// or the IdentityStore, converts the result with ToGrpcStatus (google.rpc details in
// grpc-status-details-bin) and logs one line per change — never a secret or a token.
// Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ADMIN_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_ADMIN_SERVICE_H_

#include "controlplane/authenticator.h"
#include "controlplane/config_admin.h"
#include "controlplane/data_plane_registry.h"
#include "controlplane/identity_store.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"

namespace turnpike::controlplane {

class AdminServiceImpl final : public admin::v1::AdminService::Service {
 public:
  AdminServiceImpl(ConfigAdmin& admin, DataPlaneRegistry& registry, IdentityStore& identities,
                   const Authenticator& authenticator)
      : admin_(admin),
        registry_(registry),
        identities_(identities),
        authenticator_(authenticator) {}

#define TP_ADMIN_RPC(Name)                                                                 \
  grpc::Status Name(grpc::ServerContext* context, const admin::v1::Name##Request* request, \
                    admin::v1::Name##Response* response) override;
  TP_ADMIN_RPC(CreateProvider)
  TP_ADMIN_RPC(GetProvider)
  TP_ADMIN_RPC(ListProviders)
  TP_ADMIN_RPC(UpdateProvider)
  TP_ADMIN_RPC(DeleteProvider)
  TP_ADMIN_RPC(CreateCredential)
  TP_ADMIN_RPC(GetCredential)
  TP_ADMIN_RPC(ListCredentials)
  TP_ADMIN_RPC(UpdateCredential)
  TP_ADMIN_RPC(DeleteCredential)
  TP_ADMIN_RPC(RotateCredential)
  TP_ADMIN_RPC(RetireCredentialVersion)
  TP_ADMIN_RPC(CreateRoute)
  TP_ADMIN_RPC(GetRoute)
  TP_ADMIN_RPC(ListRoutes)
  TP_ADMIN_RPC(UpdateRoute)
  TP_ADMIN_RPC(DeleteRoute)
  TP_ADMIN_RPC(CreateRateLimit)
  TP_ADMIN_RPC(GetRateLimit)
  TP_ADMIN_RPC(ListRateLimits)
  TP_ADMIN_RPC(UpdateRateLimit)
  TP_ADMIN_RPC(DeleteRateLimit)
  TP_ADMIN_RPC(CreateBudget)
  TP_ADMIN_RPC(GetBudget)
  TP_ADMIN_RPC(ListBudgets)
  TP_ADMIN_RPC(UpdateBudget)
  TP_ADMIN_RPC(DeleteBudget)
  TP_ADMIN_RPC(CreateCaller)
  TP_ADMIN_RPC(GetCaller)
  TP_ADMIN_RPC(ListCallers)
  TP_ADMIN_RPC(UpdateCaller)
  TP_ADMIN_RPC(DeleteCaller)
  TP_ADMIN_RPC(CreateCallerKey)
  TP_ADMIN_RPC(RevokeCallerKey)
  TP_ADMIN_RPC(CreatePrice)
  TP_ADMIN_RPC(GetPrice)
  TP_ADMIN_RPC(ListPrices)
  TP_ADMIN_RPC(UpdatePrice)
  TP_ADMIN_RPC(DeletePrice)
  TP_ADMIN_RPC(ListDataPlanes)
  TP_ADMIN_RPC(GetDataPlane)
  TP_ADMIN_RPC(GetConfigStatus)
  TP_ADMIN_RPC(ListAuditEntries)
  TP_ADMIN_RPC(CreateAdminToken)
  TP_ADMIN_RPC(ListAdminTokens)
  TP_ADMIN_RPC(RevokeAdminToken)
  TP_ADMIN_RPC(CreateNodeToken)
  TP_ADMIN_RPC(ListNodeTokens)
  TP_ADMIN_RPC(RevokeNodeToken)
  TP_ADMIN_RPC(BindCertificate)
  TP_ADMIN_RPC(ListCertificateBindings)
  TP_ADMIN_RPC(UnbindCertificate)
  TP_ADMIN_RPC(RotateMasterKey)
#undef TP_ADMIN_RPC

 private:
  // A change: resolves the actor (the authenticated token's name), runs `fn`, logs the outcome.
  template <class Fn>
  grpc::Status Mutate(grpc::ServerContext* context, const char* method, const std::string& name,
                      Fn fn);

  ConfigAdmin& admin_;
  DataPlaneRegistry& registry_;
  IdentityStore& identities_;
  const Authenticator& authenticator_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ADMIN_SERVICE_H_
