// Dashboard serves the control plane's read-only budget and spend page (docs/dashboard.md) on its
// HTTP port, beside /metrics: the page's static files (controlplane/dashboard/*.html, .js, .css,
// embedded into the binary at build time) and JSON endpoints that each transcode one gRPC method.
// For an endpoint, the query string becomes the request message (parameters named as the
// request's fields), the method's own implementation is called in-process, and the response
// message is the body, in proto3 JSON (what grpcurl prints): the page reads the same code and the
// same numbers as the gRPC API, never a second implementation of a query. Each endpoint is
// authorized exactly as its gRPC method is (Authenticator::Authorize with the method's full name
// and the Authorization header), so the page needs an admin token of a role allowed to call the
// method. The services must outlive the Dashboard. Thread-safe (the services are).
#ifndef TURNPIKE_CONTROLPLANE_DASHBOARD_DASHBOARD_H_
#define TURNPIKE_CONTROLPLANE_DASHBOARD_DASHBOARD_H_

#include <optional>
#include <string_view>

#include "absl/types/span.h"
#include "common/http_route.h"
#include "controlplane/authenticator.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/alert/v1/alert.grpc.pb.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike::controlplane {

// One static file of the page, embedded by controlplane/dashboard/embed_dashboard.cmake.
struct DashboardFile {
  std::string_view name;  // e.g. "index.html"
  std::string_view body;
};
absl::Span<const DashboardFile> EmbeddedDashboardFiles();

class Dashboard {
 public:
  // The gRPC services whose methods the endpoints call, and the gate that authorizes them.
  struct Services {
    budget::v1::BudgetService::Service& budgets;
    usage::v1::UsageService::Service& usage;
    alert::v1::AlertService::Service& alerts;
    admin::v1::AdminService::Service& admin;
    Authenticator& authenticator;
  };

  explicit Dashboard(Services services) : services_(services) {}

  // The reply for /dashboard, /dashboard/<file> and /dashboard/api/<endpoint>; nullopt for any
  // other path. Endpoints (each GET, parameters as in the request message):
  //   /dashboard/api/budgets     BudgetService/ListBudgets
  //   /dashboard/api/spend       UsageService/QuerySpend
  //   /dashboard/api/alerts      AlertService/ListAlerts
  //   /dashboard/api/dataplanes  AdminService/ListDataPlanes
  // Refusals are JSON {"code", "message"} with the HTTP status of the gRPC code (401 without a
  // valid token, 403 for a role not allowed, 400 for a bad parameter).
  std::optional<HttpReply> Handle(const HttpGet& get) const;

 private:
  Services services_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_DASHBOARD_DASHBOARD_H_
