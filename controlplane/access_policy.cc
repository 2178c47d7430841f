#include "controlplane/access_policy.h"

#include <map>

namespace turnpike::controlplane {
namespace {

constexpr uint8_t Bits(Principal p) { return static_cast<uint8_t>(p); }

constexpr uint8_t kViewerBits =
    Bits(Principal::kViewer) | Bits(Principal::kOperator) | Bits(Principal::kAdmin);
constexpr uint8_t kOperatorBits = Bits(Principal::kOperator) | Bits(Principal::kAdmin);

const Access kAnyone{0, true, "anyone"};
const Access kViewer{kViewerBits, false, "viewer"};
const Access kOperator{kOperatorBits, false, "operator"};
const Access kAdmin{Bits(Principal::kAdmin), false, "admin"};
// The audit trail: the auditor, and the admin who answers for it.
const Access kAudit{Bits(Principal::kAuditor) | Bits(Principal::kAdmin), false, "auditor"};
// Spend (sums by hour and dimension): anyone who reads config, and the auditor.
const Access kSpend{kViewerBits | Bits(Principal::kAuditor), false, "viewer or auditor"};
// Raw usage records name callers, end users (`user`) and trace ids, one row per request: more
// than "spend". The auditor reads the ledger; operators and admins manage the callers those rows
// name and need them to investigate. A viewer gets the sums (QuerySpend), not the rows.
const Access kRawUsage{kOperatorBits | Bits(Principal::kAuditor), false, "auditor or operator"};
const Access kNode{Bits(Principal::kNode), false, "node (a gateway's node token)"};

const std::map<std::string, Access, std::less<>>& Table() {
  static const auto* table = [] {
    auto* t = new std::map<std::string, Access, std::less<>>;
    const std::string admin = "/turnpike.admin.v1.AdminService/";
    for (const char* resource : {"Provider", "Route", "RateLimit", "Budget", "Caller", "Price"}) {
      const std::string r = resource;
      (*t)[admin + "Create" + r] = kOperator;
      (*t)[admin + "Update" + r] = kOperator;
      (*t)[admin + "Delete" + r] = kOperator;
      (*t)[admin + "Get" + r] = kViewer;
    }
    for (const char* list : {"ListProviders", "ListRoutes", "ListRateLimits", "ListBudgets",
                             "ListCallers", "ListPrices", "ListCredentials", "GetCredential",
                             "ListDataPlanes", "GetDataPlane", "GetConfigStatus"}) {
      (*t)[admin + list] = kViewer;
    }
    for (const char* m : {"CreateCallerKey", "RevokeCallerKey"}) (*t)[admin + m] = kOperator;
    for (const char* m :
         {"CreateCredential", "UpdateCredential", "DeleteCredential", "RotateCredential",
          "RetireCredentialVersion", "CreateAdminToken", "ListAdminTokens", "RevokeAdminToken",
          "CreateNodeToken", "ListNodeTokens", "RevokeNodeToken", "RotateMasterKey",
          "BindCertificate", "ListCertificateBindings", "UnbindCertificate"}) {
      (*t)[admin + m] = kAdmin;
    }
    (*t)[admin + "ListAuditEntries"] = kAudit;
    // The chained trail holds request excerpts (under REDACTED or FULL routes): auditors and
    // admins only, like the admin changes.
    for (const char* m : {"ListAdminChanges", "QueryAudit", "VerifyAudit", "GetCheckpoint"}) {
      (*t)[std::string("/turnpike.audit.v1.AuditService/") + m] = kAudit;
    }

    (*t)["/turnpike.config.v1.ConfigDiscoveryService/Watch"] = kNode;
    (*t)["/turnpike.config.v1.ConfigDiscoveryService/ReportHealth"] = kNode;

    (*t)["/turnpike.usage.v1.UsageService/ReportUsage"] = kNode;
    (*t)["/turnpike.usage.v1.UsageService/QuerySpend"] = kSpend;
    (*t)["/turnpike.usage.v1.UsageService/ListUsage"] = kRawUsage;
    // An export is either a spend query or a record listing; it gets the stricter row.
    (*t)["/turnpike.usage.v1.UsageService/ExportUsage"] = kRawUsage;

    (*t)["/turnpike.budget.v1.BudgetService/GetBudget"] = kViewer;
    (*t)["/turnpike.budget.v1.BudgetService/ListBudgets"] = kViewer;
    (*t)["/turnpike.budget.v1.BudgetService/WatchBudgets"] = kViewer;
    (*t)["/turnpike.budget.v1.BudgetService/AcquireLease"] = kNode;
    (*t)["/turnpike.budget.v1.BudgetService/ReleaseLease"] = kNode;

    // Alerting (docs/alerts.md): rules are operations, channels hold webhook secrets.
    const std::string alert = "/turnpike.alert.v1.AlertService/";
    for (const char* m : {"CreateAlertRule", "UpdateAlertRule", "DeleteAlertRule"}) {
      (*t)[alert + m] = kOperator;
    }
    (*t)[alert + "ListAlertRules"] = kViewer;
    for (const char* m : {"CreateAlertChannel", "DeleteAlertChannel", "ListAlertChannels"}) {
      (*t)[alert + m] = kAdmin;
    }
    (*t)[alert + "ListAlerts"] = kViewer;

    (*t)["/grpc.health.v1.Health/Check"] = kAnyone;
    (*t)["/grpc.health.v1.Health/Watch"] = kAnyone;
    (*t)["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = kAnyone;
    (*t)["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = kAnyone;
    return t;
  }();
  return *table;
}

}  // namespace

std::optional<Access> AccessFor(std::string_view full_method) {
  const auto& table = Table();
  auto it = table.find(full_method);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> PolicyMethods() {
  std::vector<std::string> out;
  for (const auto& [method, access] : Table()) out.push_back(method);
  return out;
}

std::string_view PrincipalName(Principal p) {
  switch (p) {
    case Principal::kViewer:
      return "viewer";
    case Principal::kOperator:
      return "operator";
    case Principal::kAdmin:
      return "admin";
    case Principal::kAuditor:
      return "auditor";
    case Principal::kNode:
      return "node";
  }
  return "unknown";
}

}  // namespace turnpike::controlplane
