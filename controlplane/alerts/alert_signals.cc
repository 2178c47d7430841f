#include "controlplane/alerts/alert_signals.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "controlplane/alerts/gateway_counters.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// "capability claims-summary, model gpt-4o" or "all requests".
std::string Scope(const a::AlertRule& rule) {
  std::vector<std::string> parts;
  if (!rule.capability().empty()) parts.push_back(absl::StrCat("capability ", rule.capability()));
  if (!rule.model().empty()) parts.push_back(absl::StrCat("model ", rule.model()));
  return parts.empty() ? "all requests" : absl::StrJoin(parts, ", ");
}

constexpr char kWhere[] =
    " FROM usage WHERE start_time >= ?1 AND refused = 0 AND (?2 = '' OR capability = ?2)"
    " AND (?3 = '' OR model = ?3)";

}  // namespace

absl::StatusOr<RequestStats> LiveAlertSignals::Requests(const std::string& capability,
                                                        const std::string& model, absl::Time since,
                                                        double quantile) {
  RequestStats out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        SqliteStatement count,
        db.Prepare(absl::StrCat("SELECT count(*), coalesce(sum(status != 'OK'), 0)", kWhere)));
    count.Bind(1, absl::ToUnixMicros(since)).Bind(2, capability).Bind(3, model);
    TP_ASSIGN_OR_RETURN(bool row, count.Step());
    if (!row) return absl::OkStatus();
    out.requests = count.ColumnInt(0);
    out.errors = count.ColumnInt(1);
    if (out.requests == 0 || quantile <= 0) return absl::OkStatus();
    // Nearest rank: the smallest latency with at least `quantile` of the requests at or below it.
    const int64_t rank = std::max<int64_t>(
        1, static_cast<int64_t>(std::ceil(quantile * static_cast<double>(out.requests))));
    TP_ASSIGN_OR_RETURN(SqliteStatement q,
                        db.Prepare(absl::StrCat("SELECT latency_us", kWhere,
                                                " ORDER BY latency_us LIMIT 1 OFFSET ?4")));
    q.Bind(1, absl::ToUnixMicros(since)).Bind(2, capability).Bind(3, model).Bind(4, rank - 1);
    TP_ASSIGN_OR_RETURN(bool found, q.Step());
    if (found) out.quantile_ms = static_cast<double>(q.ColumnInt(0)) / 1000.0;
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<BudgetUse>> LiveAlertSignals::Budget(const std::string& name) {
  absl::StatusOr<budget::v1::BudgetStatus> s = leases_.GetBudget(name);
  if (s.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  if (!s.ok()) return s.status();
  return BudgetUse{s->limit_usd_micros(), s->spent_usd_micros(), FromProto(s->window_start()),
                   FromProto(s->window_end())};
}

std::vector<GatewaySignal> LiveAlertSignals::Gateways() {
  std::vector<GatewaySignal> out;
  std::map<std::string, std::vector<CounterSample>> counters = registry_.CounterHistory();
  for (const admin::v1::DataPlane& d : registry_.List("", 0)) {
    GatewaySignal g;
    g.node_id = d.node_id();
    g.last_seen = FromProto(d.last_seen());
    g.connected = d.connected();
    g.nacked_version = d.nacked_version();
    g.last_nack = d.last_nack();
    for (const config::v1::UpstreamHealth& u : d.upstreams()) {
      g.upstreams.push_back(
          {u.provider(), u.model(), u.breaker_state() == config::v1::BREAKER_STATE_OPEN});
    }
    if (auto it = counters.find(d.node_id()); it != counters.end()) {
      g.counters = std::move(it->second);
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<RouteSignal> LiveAlertSignals::Routes() {
  std::vector<RouteSignal> out;
  std::shared_ptr<const config::v1::Snapshot> snapshot = snapshots_.Current().snapshot;
  if (snapshot == nullptr) return out;
  for (const config::v1::Route& route : snapshot->routes()) {
    RouteSignal r;
    r.capability = route.capability();
    for (const config::v1::Target& t : route.targets()) {
      r.targets.push_back(absl::StrCat(t.provider(), "/", t.model()));
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<Observation>> ObserveRule(const a::AlertRule& rule,
                                                     AlertSignals& signals, absl::Time now) {
  std::vector<Observation> out;
  switch (rule.kind()) {
    case a::ALERT_KIND_LATENCY:
    case a::ALERT_KIND_ERROR_RATE: {
      const absl::Duration window = FromProto(rule.window());
      TP_ASSIGN_OR_RETURN(RequestStats s, signals.Requests(rule.capability(), rule.model(),
                                                           now - window, rule.quantile()));
      const bool enough = s.requests > 0 && s.requests >= rule.min_requests();
      Observation o;
      if (rule.kind() == a::ALERT_KIND_LATENCY) {
        o.value = s.quantile_ms;
        o.breaching = enough && s.quantile_ms > rule.threshold();
        o.summary =
            absl::StrFormat("p%g latency of %s over %s is %.0f ms (threshold %g ms, %d requests)",
                            rule.quantile() * 100, Scope(rule), absl::FormatDuration(window),
                            s.quantile_ms, rule.threshold(), s.requests);
      } else {
        o.value = s.requests > 0
                      ? 100.0 * static_cast<double>(s.errors) / static_cast<double>(s.requests)
                      : 0;
        o.breaching = enough && o.value > rule.threshold();
        o.summary = absl::StrFormat(
            "error rate of %s over %s is %.1f%% (%d of %d requests; threshold %g%%)", Scope(rule),
            absl::FormatDuration(window), o.value, s.errors, s.requests, rule.threshold());
      }
      out.push_back(std::move(o));
      break;
    }
    case a::ALERT_KIND_BUDGET_THRESHOLD: {
      TP_ASSIGN_OR_RETURN(std::optional<BudgetUse> b, signals.Budget(rule.budget()));
      if (!b.has_value() || b->limit_usd_micros <= 0) break;  // gone: its alerts resolve
      const double used = 100.0 * static_cast<double>(b->spent_usd_micros) /
                          static_cast<double>(b->limit_usd_micros);
      for (double p : rule.budget_percents()) {
        Observation o;
        o.subject = absl::StrFormat("%g%%", p);
        o.value = used;
        // Integer comparison, so exactly 80 % of the limit is a crossing of 80 %.
        o.breaching = static_cast<double>(b->spent_usd_micros) * 100.0 >=
                      p * static_cast<double>(b->limit_usd_micros);
        o.summary = absl::StrFormat(
            "budget %s has spent %.1f%% of its limit ($%.2f of $%.2f; threshold %g%%)",
            rule.budget(), used, b->spent_usd_micros / 1e6, b->limit_usd_micros / 1e6, p);
        out.push_back(std::move(o));
      }
      break;
    }
    case a::ALERT_KIND_BUDGET_PROJECTION: {
      TP_ASSIGN_OR_RETURN(std::optional<BudgetUse> b, signals.Budget(rule.budget()));
      if (!b.has_value() || b->limit_usd_micros <= 0) break;  // gone: its alert resolves
      const absl::Duration elapsed = now - b->window_start;
      const absl::Duration length = b->window_end - b->window_start;
      // A window not started, or one with no end (a total budget), projects nothing.
      if (elapsed <= absl::ZeroDuration() || length == absl::InfiniteDuration() ||
          elapsed > length) {
        break;
      }
      const double spent = static_cast<double>(b->spent_usd_micros);
      const double limit = static_cast<double>(b->limit_usd_micros);
      const double ratio = absl::FDivDuration(length, elapsed);
      Observation o;
      // The spend the window would end with at this pace, in percent of the limit.
      o.value = 100.0 * spent * ratio / limit;
      o.breaching = b->spent_usd_micros > 0 && spent * ratio >= limit;
      const double per_hour = spent / absl::ToDoubleHours(elapsed) / 1e6;
      const absl::Time exhausted = spent >= limit ? now : now + (limit - spent) / spent * elapsed;
      o.summary = absl::StrFormat(
          "budget %s, spending $%.2f/h since its window started, runs out at %s, before its "
          "window ends at %s ($%.2f of $%.2f spent; %.0f%% of the limit by the window's end)",
          rule.budget(), per_hour,
          absl::FormatTime("%Y-%m-%d %H:%M UTC", exhausted, absl::UTCTimeZone()),
          absl::FormatTime("%Y-%m-%d %H:%M UTC", b->window_end, absl::UTCTimeZone()), spent / 1e6,
          limit / 1e6, o.value);
      if (!o.breaching) {
        o.summary = absl::StrFormat(
            "budget %s, spending $%.2f/h since its window started, ends its window at %.0f%% of "
            "its limit ($%.2f of $%.2f spent)",
            rule.budget(), per_hour, o.value, spent / 1e6, limit / 1e6);
      }
      out.push_back(std::move(o));
      break;
    }
    case a::ALERT_KIND_CAPABILITY_UNAVAILABLE: {
      // provider/model -> whether some connected gateway reports it with its circuit not open.
      // A target no gateway reports is not known to be down, so it counts as available.
      std::map<std::string, bool> up;
      for (const GatewaySignal& g : signals.Gateways()) {
        if (!g.connected) continue;
        for (const UpstreamSignal& u : g.upstreams) {
          bool& any_up = up.emplace(absl::StrCat(u.provider, "/", u.model), false).first->second;
          any_up = any_up || !u.open;
        }
      }
      for (const RouteSignal& route : signals.Routes()) {
        if (!rule.capability().empty() && route.capability != rule.capability()) continue;
        if (route.targets.empty()) continue;
        const bool all_down = std::all_of(route.targets.begin(), route.targets.end(),
                                          [&up](const std::string& target) {
                                            auto it = up.find(target);
                                            return it != up.end() && !it->second;
                                          });
        if (!all_down) continue;
        Observation o;
        o.subject = route.capability;
        o.breaching = true;
        o.value = static_cast<double>(route.targets.size());
        o.summary = absl::StrFormat(
            "every target of capability %s is unavailable (circuit open on every gateway that "
            "reports it): %s",
            route.capability, absl::StrJoin(route.targets, ", "));
        out.push_back(std::move(o));
      }
      break;
    }
    case a::ALERT_KIND_CIRCUIT_OPEN: {
      // provider/model -> gateways (connected ones: a gone gateway's last report is stale).
      std::map<std::string, std::vector<std::string>> open;
      for (const GatewaySignal& g : signals.Gateways()) {
        if (!g.connected) continue;
        for (const UpstreamSignal& u : g.upstreams) {
          if (!u.open) continue;
          if (!rule.provider().empty() && u.provider != rule.provider()) continue;
          if (!rule.model().empty() && u.model != rule.model()) continue;
          std::vector<std::string>& nodes = open[absl::StrCat(u.provider, "/", u.model)];
          if (nodes.empty() || nodes.back() != g.node_id) nodes.push_back(g.node_id);
        }
      }
      for (auto& [subject, nodes] : open) {
        Observation o;
        o.subject = subject;
        o.breaching = true;
        o.value = static_cast<double>(nodes.size());
        o.summary = absl::StrFormat("circuit open for %s on %d gateway(s): %s", subject,
                                    nodes.size(), absl::StrJoin(nodes, ", "));
        out.push_back(std::move(o));
      }
      break;
    }
    case a::ALERT_KIND_GATEWAY_SILENT: {
      const absl::Duration silent_after = FromProto(rule.silent_after());
      for (const GatewaySignal& g : signals.Gateways()) {
        const absl::Duration silent = now - g.last_seen;
        Observation o;
        o.subject = g.node_id;
        o.value = absl::ToDoubleSeconds(silent);
        o.breaching = silent > silent_after;
        o.summary = absl::StrFormat("gateway %s not heard from for %s (threshold %s)", g.node_id,
                                    absl::FormatDuration(absl::Trunc(silent, absl::Seconds(1))),
                                    absl::FormatDuration(silent_after));
        out.push_back(std::move(o));
      }
      break;
    }
    case a::ALERT_KIND_RATE_LIMIT_REFUSALS:
      return ObserveRefusals(rule, signals.Gateways(), now);
    case a::ALERT_KIND_USAGE_SPOOL_BACKLOG:
      return ObserveSpools(rule, signals.Gateways());
    case a::ALERT_KIND_SNAPSHOT_NACK: {
      // One alert per NACKed version, however many gateways NACKed it.
      std::map<std::string, std::vector<std::string>> nodes;
      std::map<std::string, std::string> message;
      for (const GatewaySignal& g : signals.Gateways()) {
        if (g.nacked_version.empty()) continue;
        nodes[g.nacked_version].push_back(g.node_id);
        message.emplace(g.nacked_version, g.last_nack);
      }
      for (auto& [version, ids] : nodes) {
        Observation o;
        o.subject = version;
        o.breaching = true;
        o.value = static_cast<double>(ids.size());
        o.summary = absl::StrFormat("snapshot %s NACKed by %d gateway(s) (%s): %s", version,
                                    ids.size(), absl::StrJoin(ids, ", "), message[version]);
        out.push_back(std::move(o));
      }
      break;
    }
    default:
      break;
  }
  return out;
}

}  // namespace turnpike::controlplane
