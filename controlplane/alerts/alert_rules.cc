#include "controlplane/alerts/alert_rules.h"

#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

constexpr int kMaxChannelsPerRule = 10;
constexpr int kMaxBudgetPercents = 10;
constexpr size_t kMaxUrlBytes = 2048;
constexpr size_t kMaxRoutingKeyBytes = 256;
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

// The URL checks; messages never quote the URL.
void CheckUrl(absl::string_view url, const std::string& path, Violations& v) {
  if (url.size() > kMaxUrlBytes) {
    v.Add(path, absl::StrCat("is longer than ", kMaxUrlBytes, " bytes"));
    return;
  }
  absl::string_view rest = url;
  if (absl::StartsWith(rest, "https://")) {
    rest.remove_prefix(8);
  } else if (absl::StartsWith(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    v.Add(path, "must be an http:// or https:// URL");
    return;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      v.Add(path, "must not contain spaces or control characters");
      return;
    }
  }
  if (rest.empty() || rest[0] == '/' || rest[0] == ':' || rest[0] == '?') {
    v.Add(path, "has no host");
  }
}

// scheme://host[:port] without user info, path or query: what lists show.
std::string Redact(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  absl::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  const size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) rest.remove_prefix(at + 1);
  return absl::StrCat(url.substr(0, scheme_end), "://", rest);
}

std::string SealName(const std::string& channel) { return absl::StrCat("alert-channel/", channel); }

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
    case a::ALERT_KIND_GATEWAY_SILENT:
      if (!rule.has_silent_after()) SetProto(absl::Minutes(2), rule.mutable_silent_after());
      CheckDuration(rule.silent_after(), absl::Seconds(10), absl::Hours(24), "rule.silent_after",
                    v);
      break;
    default:
      v.Add("rule.kind", "must be one of the ALERT_KIND_ values (docs/alerts.md)");
  }
  if (traffic) {
    CheckDuration(rule.window(), absl::Minutes(1), absl::Hours(24), "rule.window", v);
    if (rule.min_requests() < 0 || rule.min_requests() > 1000000000) {
      v.Add("rule.min_requests", "must be in [0, 1e9]");
    }
  } else {
    if (rule.has_window()) v.Add("rule.window", "applies to LATENCY and ERROR_RATE rules only");
    if (rule.min_requests() != 0) {
      v.Add("rule.min_requests", "applies to LATENCY and ERROR_RATE rules only");
    }
  }
  if (rule.kind() != a::ALERT_KIND_BUDGET_THRESHOLD &&
      rule.kind() != a::ALERT_KIND_BUDGET_PROJECTION &&
      (!rule.budget().empty() || !rule.budget_percents().empty())) {
    v.Add("rule.budget", "applies to BUDGET_THRESHOLD and BUDGET_PROJECTION rules only");
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

absl::Status AlertRules::ValidateChannel(const a::AlertChannel& channel) {
  Violations v;
  ValidateName(channel.name(), "channel.name", v);
  switch (channel.kind()) {
    case a::CHANNEL_KIND_WEBHOOK:
    case a::CHANNEL_KIND_SLACK:
      CheckUrl(channel.url(), "channel.url", v);
      if (!channel.routing_key().empty()) {
        v.Add("channel.routing_key", "applies to PAGERDUTY channels only");
      }
      break;
    case a::CHANNEL_KIND_PAGERDUTY:
      if (!channel.url().empty()) CheckUrl(channel.url(), "channel.url", v);
      if (channel.routing_key().empty() || channel.routing_key().size() > kMaxRoutingKeyBytes) {
        v.Add("channel.routing_key", "must be 1 to 256 bytes (the integration's routing key)");
      }
      for (char c : channel.routing_key()) {
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
          v.Add("channel.routing_key", "must not contain spaces or control characters");
          break;
        }
      }
      break;
    default:
      v.Add("channel.kind",
            "must be CHANNEL_KIND_WEBHOOK, CHANNEL_KIND_SLACK or "
            "CHANNEL_KIND_PAGERDUTY");
  }
  if (!channel.url_redacted().empty()) v.Add("channel.url_redacted", "is output only");
  if (!channel.fingerprint().empty()) v.Add("channel.fingerprint", "is output only");
  return v.ToStatus();
}

absl::StatusOr<a::AlertRule> AlertRules::CreateRule(a::AlertRule rule) {
  return PutRule(std::move(rule), /*create=*/true);
}

absl::StatusOr<a::AlertRule> AlertRules::UpdateRule(a::AlertRule rule) {
  return PutRule(std::move(rule), /*create=*/false);
}

absl::StatusOr<a::AlertRule> AlertRules::PutRule(a::AlertRule rule, bool create) {
  TP_RETURN_IF_ERROR(ValidateRule(rule));
  const int64_t now = absl::ToUnixMicros(clock_.Now());
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_RETURN_IF_ERROR(ChannelsExist(db, rule));
    TP_ASSIGN_OR_RETURN(SqliteStatement exists,
                        db.Prepare("SELECT 1 FROM alert_rules WHERE name = ?"));
    exists.Bind(1, rule.name());
    TP_ASSIGN_OR_RETURN(bool found, exists.Step());
    if (create && found) {
      return absl::AlreadyExistsError(absl::StrCat("alert rule \"", rule.name(), "\" exists"));
    }
    if (!create && !found) {
      return absl::NotFoundError(absl::StrCat("no alert rule named \"", rule.name(), "\""));
    }
    TP_ASSIGN_OR_RETURN(
        SqliteStatement s,
        db.Prepare(
            "INSERT OR REPLACE INTO alert_rules (name, spec, update_time) VALUES (?, ?, ?)"));
    s.Bind(1, rule.name()).BindBlob(2, rule.SerializeAsString()).Bind(3, now);
    return s.Run();
  }));
  return rule;
}

absl::Status AlertRules::DeleteRule(const std::string& name) {
  return store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM alert_rules WHERE name = ?"));
    s.Bind(1, name);
    TP_RETURN_IF_ERROR(s.Run());
    if (db.changes() == 0) {
      return absl::NotFoundError(absl::StrCat("no alert rule named \"", name, "\""));
    }
    TP_ASSIGN_OR_RETURN(SqliteStatement d, db.Prepare("DELETE FROM alerts WHERE rule = ?"));
    d.Bind(1, name);
    return d.Run();
  });
}

absl::StatusOr<std::vector<a::AlertRule>> AlertRules::ListRules() {
  std::vector<a::AlertRule> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT spec FROM alert_rules ORDER BY name"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return absl::OkStatus();
      a::AlertRule rule;
      if (!rule.ParseFromString(s.ColumnText(0))) {
        return absl::DataLossError("an alert_rules row does not parse");
      }
      out.push_back(std::move(rule));
    }
  }));
  return out;
}

absl::StatusOr<a::AlertChannel> AlertRules::CreateChannel(const a::AlertChannel& channel) {
  TP_RETURN_IF_ERROR(ValidateChannel(channel));
  const std::string url = channel.kind() == a::CHANNEL_KIND_PAGERDUTY && channel.url().empty()
                              ? std::string(kPagerDutyEventsUrl)
                              : channel.url();
  TP_ASSIGN_OR_RETURN(std::string sealed, box_.Seal(absl::StrCat(url, "\n", channel.routing_key()),
                                                    SealName(channel.name()), 1));
  a::AlertChannel listed;
  listed.set_name(channel.name());
  listed.set_kind(channel.kind());
  listed.set_url_redacted(Redact(url));
  listed.set_fingerprint(box_.Fingerprint(absl::StrCat(url, "\n", channel.routing_key())));
  const int64_t now = absl::ToUnixMicros(clock_.Now());
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("INSERT INTO alert_channels (name, kind, sealed, url_redacted, "
                                   "fingerprint, create_time) VALUES (?, ?, ?, ?, ?, ?)"));
    s.Bind(1, listed.name())
        .Bind(2, static_cast<int64_t>(listed.kind()))
        .BindBlob(3, sealed)
        .Bind(4, listed.url_redacted())
        .Bind(5, listed.fingerprint())
        .Bind(6, now);
    absl::Status st = s.Run();
    if (st.code() == absl::StatusCode::kAlreadyExists ||
        st.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::AlreadyExistsError(absl::StrCat("alert channel \"", listed.name(), "\" exists"));
    }
    return st;
  }));
  return listed;
}

absl::Status AlertRules::DeleteChannel(const std::string& name) {
  return store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement rules, db.Prepare("SELECT name, spec FROM alert_rules"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, rules.Step());
      if (!row) break;
      a::AlertRule rule;
      if (!rule.ParseFromString(rules.ColumnText(1))) continue;
      for (const std::string& c : rule.channels()) {
        if (c == name) {
          return absl::FailedPreconditionError(absl::StrCat(
              "alert rule \"", rule.name(), "\" names channel \"", name, "\"; update it first"));
        }
      }
    }
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM alert_channels WHERE name = ?"));
    s.Bind(1, name);
    TP_RETURN_IF_ERROR(s.Run());
    if (db.changes() == 0) {
      return absl::NotFoundError(absl::StrCat("no alert channel named \"", name, "\""));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<a::AlertChannel>> AlertRules::ListChannels() {
  std::vector<a::AlertChannel> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        SqliteStatement s,
        db.Prepare(
            "SELECT name, kind, url_redacted, fingerprint FROM alert_channels ORDER BY name"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return absl::OkStatus();
      a::AlertChannel c;
      c.set_name(s.ColumnText(0));
      c.set_kind(static_cast<a::ChannelKind>(s.ColumnInt(1)));
      c.set_url_redacted(s.ColumnText(2));
      c.set_fingerprint(s.ColumnText(3));
      out.push_back(std::move(c));
    }
  }));
  return out;
}

absl::StatusOr<OpenedChannel> AlertRules::OpenChannel(const std::string& name) {
  OpenedChannel out;
  std::string sealed;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT kind, sealed FROM alert_channels WHERE name = ?"));
    s.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("no alert channel named \"", name, "\""));
    out.kind = static_cast<a::ChannelKind>(s.ColumnInt(0));
    sealed = s.ColumnText(1);
    return absl::OkStatus();
  }));
  TP_ASSIGN_OR_RETURN(std::string plain, box_.Open(sealed, SealName(name), 1));
  const size_t nl = plain.find('\n');
  out.name = name;
  out.url = plain.substr(0, nl);
  if (nl != std::string::npos) out.routing_key = plain.substr(nl + 1);
  return out;
}

}  // namespace turnpike::controlplane
