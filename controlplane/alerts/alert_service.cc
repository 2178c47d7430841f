#include "controlplane/alerts/alert_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

grpc::Status Answer(const char* method, const absl::Status& s) {
  if (!s.ok() &&
      (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
       s.code() == absl::StatusCode::kUnavailable ||
       s.code() == absl::StatusCode::kResourceExhausted)) {
    spdlog::error("alert: {} failed: {}", method, s.ToString());
  }
  return ToGrpcStatus(s);
}

absl::Status CheckName(const std::string& name) {
  Violations v;
  ValidateName(name, "name", v);
  return v.ToStatus();
}

}  // namespace

grpc::Status AlertServiceImpl::CreateAlertRule(grpc::ServerContext*,
                                               const a::CreateAlertRuleRequest* request,
                                               a::CreateAlertRuleResponse* response) {
  absl::StatusOr<a::AlertRule> r = rules_.CreateRule(request->rule());
  if (!r.ok()) return Answer("CreateAlertRule", r.status());
  spdlog::info("alert rule {} created ({})", r->name(), a::AlertKind_Name(r->kind()));
  *response->mutable_rule() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::UpdateAlertRule(grpc::ServerContext*,
                                               const a::UpdateAlertRuleRequest* request,
                                               a::UpdateAlertRuleResponse* response) {
  absl::StatusOr<a::AlertRule> r = rules_.UpdateRule(request->rule());
  if (!r.ok()) return Answer("UpdateAlertRule", r.status());
  spdlog::info("alert rule {} updated", r->name());
  *response->mutable_rule() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::DeleteAlertRule(grpc::ServerContext*,
                                               const a::DeleteAlertRuleRequest* request,
                                               a::DeleteAlertRuleResponse*) {
  absl::Status s = CheckName(request->name());
  if (s.ok()) s = rules_.DeleteRule(request->name());
  if (s.ok()) spdlog::info("alert rule {} deleted", request->name());
  return Answer("DeleteAlertRule", s);
}

grpc::Status AlertServiceImpl::ListAlertRules(grpc::ServerContext*, const a::ListAlertRulesRequest*,
                                              a::ListAlertRulesResponse* response) {
  absl::StatusOr<std::vector<a::AlertRule>> r = rules_.ListRules();
  if (!r.ok()) return Answer("ListAlertRules", r.status());
  for (a::AlertRule& rule : *r) *response->add_rules() = std::move(rule);
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::CreateAlertChannel(grpc::ServerContext*,
                                                  const a::CreateAlertChannelRequest* request,
                                                  a::CreateAlertChannelResponse* response) {
  absl::StatusOr<a::AlertChannel> c = rules_.CreateChannel(request->channel());
  if (!c.ok()) return Answer("CreateAlertChannel", c.status());
  // The name, kind and redacted host only: the URL and routing key are secrets.
  spdlog::info("alert channel {} created ({}, {})", c->name(), a::ChannelKind_Name(c->kind()),
               c->url_redacted());
  *response->mutable_channel() = *std::move(c);
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::DeleteAlertChannel(grpc::ServerContext*,
                                                  const a::DeleteAlertChannelRequest* request,
                                                  a::DeleteAlertChannelResponse*) {
  absl::Status s = CheckName(request->name());
  if (s.ok()) s = rules_.DeleteChannel(request->name());
  if (s.ok()) spdlog::info("alert channel {} deleted", request->name());
  return Answer("DeleteAlertChannel", s);
}

grpc::Status AlertServiceImpl::ListAlertChannels(grpc::ServerContext*,
                                                 const a::ListAlertChannelsRequest*,
                                                 a::ListAlertChannelsResponse* response) {
  absl::StatusOr<std::vector<a::AlertChannel>> r = rules_.ListChannels();
  if (!r.ok()) return Answer("ListAlertChannels", r.status());
  for (a::AlertChannel& c : *r) *response->add_channels() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::ListAlerts(grpc::ServerContext*, const a::ListAlertsRequest* request,
                                          a::ListAlertsResponse* response) {
  if (!request->rule().empty()) {
    absl::Status s = CheckName(request->rule());
    if (!s.ok()) return Answer("ListAlerts", s);
  }
  for (a::Alert& alert : engine_.Alerts()) {
    if (!request->rule().empty() && alert.rule() != request->rule()) continue;
    if (!request->states().empty() && std::find(request->states().begin(), request->states().end(),
                                                alert.state()) == request->states().end()) {
      continue;
    }
    *response->add_alerts() = std::move(alert);
  }
  return grpc::Status::OK;
}

}  // namespace turnpike::controlplane
