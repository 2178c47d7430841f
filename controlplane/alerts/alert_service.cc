#include "controlplane/alerts/alert_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/proto_util.h"
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

// The page of `alerts` (sorted by rule, then subject) after the page token's key.
absl::Status FillAlertsPage(std::vector<a::Alert> alerts, const a::ListAlertsRequest& request,
                            a::ListAlertsResponse* response) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(request.page_size()));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(request.page_token()));
  // The key is "<rule>/<subject>": rule names never hold a '/'.
  std::pair<std::string, std::string> last;
  if (!after.empty()) {
    const size_t slash = after.find('/');
    if (slash == std::string::npos) {
      return InvalidFieldError("page_token", "is not a token returned by ListAlerts");
    }
    last = {after.substr(0, slash), after.substr(slash + 1)};
  }
  for (a::Alert& alert : alerts) {
    if (!request.rule().empty() && alert.rule() != request.rule()) continue;
    if (!request.states().empty() && std::find(request.states().begin(), request.states().end(),
                                               alert.state()) == request.states().end()) {
      continue;
    }
    if (!after.empty() && std::make_pair(alert.rule(), alert.subject()) <= last) continue;
    if (response->alerts_size() == limit) {
      const a::Alert& end = response->alerts(limit - 1);
      response->set_next_page_token(EncodePageToken(absl::StrCat(end.rule(), "/", end.subject())));
      break;
    }
    *response->add_alerts() = std::move(alert);
  }
  return absl::OkStatus();
}

}  // namespace

template <class Fn>
grpc::Status AlertServiceImpl::Change(grpc::ServerContext* context, const char* method, Fn change) {
  absl::StatusOr<Identity> who = authenticator_.Identify(*context);
  if (!who.ok()) return Answer(method, who.status());
  return Answer(method, change(who->name));
}

grpc::Status AlertServiceImpl::CreateAlertRule(grpc::ServerContext* context,
                                               const a::CreateAlertRuleRequest* request,
                                               a::CreateAlertRuleResponse* response) {
  return Change(context, "CreateAlertRule", [&](const std::string& actor) -> absl::Status {
    TP_ASSIGN_OR_RETURN(*response->mutable_rule(), rules_.CreateRule(request->rule(), actor));
    spdlog::info("alert rule {} created ({}) by {}", response->rule().name(),
                 a::AlertKind_Name(response->rule().kind()), actor);
    return absl::OkStatus();
  });
}

grpc::Status AlertServiceImpl::UpdateAlertRule(grpc::ServerContext* context,
                                               const a::UpdateAlertRuleRequest* request,
                                               a::UpdateAlertRuleResponse* response) {
  return Change(context, "UpdateAlertRule", [&](const std::string& actor) -> absl::Status {
    TP_ASSIGN_OR_RETURN(*response->mutable_rule(), rules_.UpdateRule(request->rule(), actor));
    spdlog::info("alert rule {} updated by {}", response->rule().name(), actor);
    return absl::OkStatus();
  });
}

grpc::Status AlertServiceImpl::DeleteAlertRule(grpc::ServerContext* context,
                                               const a::DeleteAlertRuleRequest* request,
                                               a::DeleteAlertRuleResponse*) {
  return Change(context, "DeleteAlertRule", [&](const std::string& actor) -> absl::Status {
    TP_RETURN_IF_ERROR(CheckName(request->name()));
    TP_RETURN_IF_ERROR(rules_.DeleteRule(request->name(), actor));
    spdlog::info("alert rule {} deleted by {}", request->name(), actor);
    return absl::OkStatus();
  });
}

grpc::Status AlertServiceImpl::ListAlertRules(grpc::ServerContext*,
                                              const a::ListAlertRulesRequest* request,
                                              a::ListAlertRulesResponse* response) {
  absl::StatusOr<AlertListPage<a::AlertRule>> page =
      rules_.ListRules(request->page_size(), request->page_token());
  if (!page.ok()) return Answer("ListAlertRules", page.status());
  for (a::AlertRule& rule : page->items) *response->add_rules() = std::move(rule);
  response->set_next_page_token(std::move(page->next_page_token));
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::CreateAlertChannel(grpc::ServerContext* context,
                                                  const a::CreateAlertChannelRequest* request,
                                                  a::CreateAlertChannelResponse* response) {
  return Change(context, "CreateAlertChannel", [&](const std::string& actor) -> absl::Status {
    TP_ASSIGN_OR_RETURN(*response->mutable_channel(),
                        rules_.CreateChannel(request->channel(), actor));
    // The name, kind and redacted host only: the URL and routing key are secrets.
    const a::AlertChannel& c = response->channel();
    spdlog::info("alert channel {} created ({}, {}) by {}", c.name(), a::ChannelKind_Name(c.kind()),
                 c.url_redacted(), actor);
    return absl::OkStatus();
  });
}

grpc::Status AlertServiceImpl::DeleteAlertChannel(grpc::ServerContext* context,
                                                  const a::DeleteAlertChannelRequest* request,
                                                  a::DeleteAlertChannelResponse*) {
  return Change(context, "DeleteAlertChannel", [&](const std::string& actor) -> absl::Status {
    TP_RETURN_IF_ERROR(CheckName(request->name()));
    TP_RETURN_IF_ERROR(rules_.DeleteChannel(request->name(), actor));
    spdlog::info("alert channel {} deleted by {}", request->name(), actor);
    return absl::OkStatus();
  });
}

grpc::Status AlertServiceImpl::ListAlertChannels(grpc::ServerContext*,
                                                 const a::ListAlertChannelsRequest* request,
                                                 a::ListAlertChannelsResponse* response) {
  absl::StatusOr<AlertListPage<a::AlertChannel>> page =
      rules_.ListChannels(request->page_size(), request->page_token());
  if (!page.ok()) return Answer("ListAlertChannels", page.status());
  for (a::AlertChannel& c : page->items) *response->add_channels() = std::move(c);
  response->set_next_page_token(std::move(page->next_page_token));
  return grpc::Status::OK;
}

grpc::Status AlertServiceImpl::ListAlerts(grpc::ServerContext*, const a::ListAlertsRequest* request,
                                          a::ListAlertsResponse* response) {
  if (!request->rule().empty()) {
    absl::Status s = CheckName(request->rule());
    if (!s.ok()) return Answer("ListAlerts", s);
  }
  return Answer("ListAlerts", FillAlertsPage(engine_.Alerts(), *request, response));
}

}  // namespace turnpike::controlplane
