#include "controlplane/alerts/alert_rules.h"

#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/admin_audit.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

constexpr int kMaxChannelsPerRule = 10;
constexpr int kMaxBudgetPercents = 10;
constexpr size_t kMaxDescriptionBytes = 1024;
constexpr size_t kMaxModelBytes = 256;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void SetProto(absl::Duration d, google::protobuf::Duration* out) {
  out->set_seconds(absl::ToInt64Seconds(d));
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d % absl::Seconds(1))));
}

// A duration field within [lo, hi]; `name` is the field path.
void CheckDuration(const google::protobuf::Duration& d, absl::Duration lo, absl::Duration hi,
                   const std::string& name, Violations& v) {
  const absl::Duration x = FromProto(d);
  if (d.nanos() < 0 || d.nanos() >= 1000000000 || x < lo || x > hi) {
    v.Add(name, absl::StrCat("must be between ", absl::FormatDuration(lo), " and ",
                             absl::FormatDuration(hi)));
  }
}

absl::StatusOr<a::AlertRule> ParseRule(const std::string& spec) {
  a::AlertRule rule;
  if (!rule.ParseFromString(spec)) return absl::DataLossError("an alert_rules row does not parse");
  return rule;
}

absl::StatusOr<std::optional<a::AlertRule>> ReadRule(SqliteDb& db, const std::string& name) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("SELECT spec FROM alert_rules WHERE name = ?"));
  s.Bind(1, name);
  TP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return std::nullopt;
  return ParseRule(s.ColumnText(0));
}

// Rules named after `after`, by name, at most `limit` (all when negative).
absl::StatusOr<std::vector<a::AlertRule>> ReadRules(SqliteDb& db, const std::string& after,
                                                    int64_t limit) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("SELECT spec FROM alert_rules WHERE name > ? ORDER BY name LIMIT ?"));
  s.Bind(1, after).Bind(2, limit);
  std::vector<a::AlertRule> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    TP_ASSIGN_OR_RETURN(a::AlertRule rule, ParseRule(s.ColumnText(0)));
    out.push_back(std::move(rule));
  }
}

absl::Status ChannelsExist(SqliteDb& db, const a::AlertRule& rule) {
  for (int i = 0; i < rule.channels_size(); ++i) {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT 1 FROM alert_channels WHERE name = ?"));
    s.Bind(1, rule.channels(i));
    TP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) {
      Violations v;
      v.Add(absl::StrCat("rule.channels[", i, "]"),
            absl::StrCat("no channel named \"", rule.channels(i), "\""));
      return v.ToStatus(absl::StatusCode::kFailedPrecondition);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AlertRules::ValidateRule(a::AlertRule& rule) {
  Violations v;
  ValidateName(rule.name(), "rule.name", v);
  if (!rule.capability().empty()) ValidateName(rule.capability(), "rule.capability", v);
  if (rule.model().size() > kMaxModelBytes) v.Add("rule.model", "is longer than 256 bytes");
  if (rule.provider().size() > kMaxModelBytes) v.Add("rule.provider", "is longer than 256 bytes");
  if (rule.description().size() > kMaxDescriptionBytes) {
    v.Add("rule.description", "is longer than 1024 bytes");
  }
  const bool traffic =
      rule.kind() == a::ALERT_KIND_LATENCY || rule.kind() == a::ALERT_KIND_ERROR_RATE;
  switch (rule.kind()) {
    case a::ALERT_KIND_LATENCY:
      if (rule.quantile() == 0) rule.set_quantile(0.99);
      if (!(rule.quantile() > 0 && rule.quantile() <= 1)) {
        v.Add("rule.quantile", "must be in (0, 1]");
      }
      if (!(rule.threshold() > 0 && rule.threshold() <= 86400000)) {
        v.Add("rule.threshold", "must be milliseconds in (0, 86400000]");
      }
      break;
    case a::ALERT_KIND_ERROR_RATE:
      if (!(rule.threshold() >= 0 && rule.threshold() < 100)) {
        v.Add("rule.threshold", "must be a percentage in [0, 100)");
      }
      break;
    case a::ALERT_KIND_BUDGET_THRESHOLD: {
      ValidateName(rule.budget(), "rule.budget", v);
      if (rule.budget_percents().empty() || rule.budget_percents_size() > kMaxBudgetPercents) {
        v.Add("rule.budget_percents", "must list 1 to 10 percentages");
      }
      std::set<double> seen;
      for (int i = 0; i < rule.budget_percents_size(); ++i) {
        const double p = rule.budget_percents(i);
        if (!(p > 0 && p <= 1000)) {
          v.Add(absl::StrCat("rule.budget_percents[", i, "]"), "must be in (0, 1000]");
        } else if (!seen.insert(p).second) {
          v.Add(absl::StrCat("rule.budget_percents[", i, "]"), "is listed twice");
        }
      }
      break;
    }
    case a::ALERT_KIND_BUDGET_PROJECTION:
      ValidateName(rule.budget(), "rule.budget", v);
      if (!rule.budget_percents().empty()) {
        v.Add("rule.budget_percents", "applies to BUDGET_THRESHOLD rules only");
      }
      break;
    case a::ALERT_KIND_CIRCUIT_OPEN:
    case a::ALERT_KIND_SNAPSHOT_NACK:
    case a::ALERT_KIND_CAPABILITY_UNAVAILABLE:
      break;
    case a::ALERT_KIND_RATE_LIMIT_REFUSALS:
      if (!(rule.threshold() > 0 && rule.threshold() <= 1e9)) {
        v.Add("rule.threshold", "must be refusals per minute in (0, 1e9]");
      }
      break;
    case a::ALERT_KIND_USAGE_SPOOL_BACKLOG:
      if (rule.spool_records() < 0) v.Add("rule.spool_records", "must not be negative");
      if (rule.has_spool_age()) {
        CheckDuration(rule.spool_age(), absl::Seconds(1), absl::Hours(24 * 7), "rule.spool_age", v);
      }
      if (rule.spool_records() == 0 && !rule.has_spool_age()) {
        v.Add("rule.spool_records", "set spool_records, spool_age or both");
      }
      break;
    case a::ALERT_KIND_GATEWAY_SILENT:
      if (!rule.has_silent_after()) SetProto(absl::Minutes(2), rule.mutable_silent_after());
      CheckDuration(rule.silent_after(), absl::Seconds(10), absl::Hours(24), "rule.silent_after",
                    v);
      break;
    default:
      v.Add("rule.kind", "must be one of the ALERT_KIND_ values (docs/alerts.md)");
  }
  if (rule.kind() == a::ALERT_KIND_RATE_LIMIT_REFUSALS) {
    // Gateways' counters are kept for an hour (DataPlaneRegistry::kCounterHistory).
    CheckDuration(rule.window(), absl::Minutes(1), absl::Hours(1), "rule.window", v);
    if (rule.min_requests() != 0) {
      v.Add("rule.min_requests", "applies to LATENCY and ERROR_RATE rules only");
    }
  } else if (traffic) {
    CheckDuration(rule.window(), absl::Minutes(1), absl::Hours(24), "rule.window", v);
    if (rule.min_requests() < 0 || rule.min_requests() > 1000000000) {
      v.Add("rule.min_requests", "must be in [0, 1e9]");
    }
  } else {
    if (rule.has_window()) {
      v.Add("rule.window", "applies to LATENCY, ERROR_RATE and RATE_LIMIT_REFUSALS rules only");
    }
    if (rule.min_requests() != 0) {
      v.Add("rule.min_requests", "applies to LATENCY and ERROR_RATE rules only");
    }
  }
  if (rule.kind() != a::ALERT_KIND_BUDGET_THRESHOLD &&
      rule.kind() != a::ALERT_KIND_BUDGET_PROJECTION &&
      (!rule.budget().empty() || !rule.budget_percents().empty())) {
    v.Add("rule.budget", "applies to BUDGET_THRESHOLD and BUDGET_PROJECTION rules only");
  }
  if (rule.kind() != a::ALERT_KIND_USAGE_SPOOL_BACKLOG &&
      (rule.spool_records() != 0 || rule.has_spool_age())) {
    v.Add(rule.spool_records() != 0 ? "rule.spool_records" : "rule.spool_age",
          "applies to USAGE_SPOOL_BACKLOG rules only");
  }
  if (rule.kind() != a::ALERT_KIND_GATEWAY_SILENT && rule.has_silent_after()) {
    v.Add("rule.silent_after", "applies to GATEWAY_SILENT rules only");
  }
  CheckDuration(rule.for_duration(), absl::ZeroDuration(), absl::Hours(24), "rule.for_duration", v);
  if (!rule.has_cooldown()) SetProto(absl::Minutes(5), rule.mutable_cooldown());
  CheckDuration(rule.cooldown(), absl::ZeroDuration(), absl::Hours(24), "rule.cooldown", v);
  if (rule.channels_size() > kMaxChannelsPerRule) {
    v.Add("rule.channels", "must list at most 10 channels");
  }
  std::set<std::string> channels;
  for (int i = 0; i < rule.channels_size(); ++i) {
    const std::string path = absl::StrCat("rule.channels[", i, "]");
    ValidateName(rule.channels(i), path, v);
    if (!channels.insert(rule.channels(i)).second) v.Add(path, "is listed twice");
  }
  return v.ToStatus();
}

absl::StatusOr<a::AlertRule> AlertRules::CreateRule(a::AlertRule rule, const std::string& actor) {
  return PutRule(std::move(rule), /*create=*/true, actor);
}

absl::StatusOr<a::AlertRule> AlertRules::UpdateRule(a::AlertRule rule, const std::string& actor) {
  return PutRule(std::move(rule), /*create=*/false, actor);
}

absl::StatusOr<a::AlertRule> AlertRules::PutRule(a::AlertRule rule, bool create,
                                                 const std::string& actor) {
  TP_RETURN_IF_ERROR(ValidateRule(rule));
  const absl::Time now = clock_.Now();
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_RETURN_IF_ERROR(ChannelsExist(db, rule));
    TP_ASSIGN_OR_RETURN(std::optional<a::AlertRule> before, ReadRule(db, rule.name()));
    if (create && before.has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("alert rule \"", rule.name(), "\" exists"));
    }
    if (!create && !before.has_value()) {
      return absl::NotFoundError(absl::StrCat("no alert rule named \"", rule.name(), "\""));
    }
    TP_ASSIGN_OR_RETURN(
        SqliteStatement s,
        db.Prepare(
            "INSERT OR REPLACE INTO alert_rules (name, spec, update_time) VALUES (?, ?, ?)"));
    s.Bind(1, rule.name()).BindBlob(2, rule.SerializeAsString()).Bind(3, absl::ToUnixMicros(now));
    TP_RETURN_IF_ERROR(s.Run());
    return AuditAdminChange(db, now, actor, create ? "CreateAlertRule" : "UpdateAlertRule",
                            "alert_rule", rule.name(), before.has_value() ? &*before : nullptr,
                            &rule);
  }));
  return rule;
}

absl::Status AlertRules::DeleteRule(const std::string& name, const std::string& actor) {
  const absl::Time now = clock_.Now();
  return store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<a::AlertRule> before, ReadRule(db, name));
    if (!before.has_value()) {
      return absl::NotFoundError(absl::StrCat("no alert rule named \"", name, "\""));
    }
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM alert_rules WHERE name = ?"));
    s.Bind(1, name);
    TP_RETURN_IF_ERROR(s.Run());
    TP_ASSIGN_OR_RETURN(SqliteStatement d, db.Prepare("DELETE FROM alerts WHERE rule = ?"));
    d.Bind(1, name);
    TP_RETURN_IF_ERROR(d.Run());
    return AuditAdminChange(db, now, actor, "DeleteAlertRule", "alert_rule", name, &*before,
                            nullptr);
  });
}

absl::StatusOr<std::vector<a::AlertRule>> AlertRules::ListRules() {
  std::vector<a::AlertRule> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(out, ReadRules(db, "", -1));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AlertListPage<a::AlertRule>> AlertRules::ListRules(int page_size,
                                                                  const std::string& page_token) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  AlertListPage<a::AlertRule> page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(page.items, ReadRules(db, after, limit + 1));
    return absl::OkStatus();
  }));
  if (page.items.size() > static_cast<size_t>(limit)) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken(page.items.back().name());
  }
  return page;
}

}  // namespace turnpike::controlplane
