// The gRPC face of alerting (turnpike.alert.v1.AlertService, docs/alerts.md): rules and channels
// through AlertRules, alerts and their delivery history from the AlertEngine. Synchronous
// handlers (they wait on SQLite). Access is decided before a handler runs
// (controlplane/access_policy.cc: rules operator, channels admin, ListAlerts viewer). Statuses
// come from ToGrpcStatus. Changes are audited as made by the caller the Authenticator identifies.
// The lists are paged like every list of the admin API (proto_util.h). Channel secrets never
// appear in a response or a log line. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SERVICE_H_

#include "controlplane/alerts/alert_engine.h"
#include "controlplane/alerts/alert_rules.h"
#include "controlplane/authenticator.h"
#include "turnpike/alert/v1/alert.grpc.pb.h"

namespace turnpike::controlplane {

class AlertServiceImpl final : public alert::v1::AlertService::Service {
 public:
  AlertServiceImpl(AlertRules& rules, AlertEngine& engine, const Authenticator& authenticator)
      : rules_(rules), engine_(engine), authenticator_(authenticator) {}

  grpc::Status CreateAlertRule(grpc::ServerContext* context,
                               const alert::v1::CreateAlertRuleRequest* request,
                               alert::v1::CreateAlertRuleResponse* response) override;
  grpc::Status UpdateAlertRule(grpc::ServerContext* context,
                               const alert::v1::UpdateAlertRuleRequest* request,
                               alert::v1::UpdateAlertRuleResponse* response) override;
  grpc::Status DeleteAlertRule(grpc::ServerContext* context,
                               const alert::v1::DeleteAlertRuleRequest* request,
                               alert::v1::DeleteAlertRuleResponse* response) override;
  grpc::Status ListAlertRules(grpc::ServerContext* context,
                              const alert::v1::ListAlertRulesRequest* request,
                              alert::v1::ListAlertRulesResponse* response) override;
  grpc::Status CreateAlertChannel(grpc::ServerContext* context,
                                  const alert::v1::CreateAlertChannelRequest* request,
                                  alert::v1::CreateAlertChannelResponse* response) override;
  grpc::Status DeleteAlertChannel(grpc::ServerContext* context,
                                  const alert::v1::DeleteAlertChannelRequest* request,
                                  alert::v1::DeleteAlertChannelResponse* response) override;
  grpc::Status ListAlertChannels(grpc::ServerContext* context,
                                 const alert::v1::ListAlertChannelsRequest* request,
                                 alert::v1::ListAlertChannelsResponse* response) override;
  grpc::Status ListAlerts(grpc::ServerContext* context, const alert::v1::ListAlertsRequest* request,
                          alert::v1::ListAlertsResponse* response) override;

 private:
  // Runs `change(actor)` as the authenticated caller; logs and converts its status.
  template <class Fn>
  grpc::Status Change(grpc::ServerContext* context, const char* method, Fn change);

  AlertRules& rules_;
  AlertEngine& engine_;
  const Authenticator& authenticator_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_SERVICE_H_
