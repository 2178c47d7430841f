#include "controlplane/alerts/alert_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

// "ALERT_KIND_BUDGET_THRESHOLD" -> "budget_threshold", as the rules' docs name the kinds.
std::string Short(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view s = enum_name;
  if (absl::StartsWith(s, prefix)) s.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(s);
}

}  // namespace

void AddAlertMetrics(MetricsRegistry& registry, std::function<std::vector<a::Alert>()> alerts,
                     std::function<int64_t()> evaluations) {
  using Type = MetricsRegistry::Type;
  if (evaluations != nullptr) {
    registry.AddCollector(
        "turnpike_alert_evaluations_total",
        "Evaluations of every alert rule completed since the control plane started (one per "
        "--alert_eval_interval while the engine runs).",
        Type::kCounter, {}, [evaluations = std::move(evaluations)] {
          return std::vector<MetricSample>{{{}, static_cast<double>(evaluations())}};
        });
  }
  registry.AddCollector(
      "turnpike_alert_state",
      "Each alert the control plane holds, 1, with its state (pending, firing, resolved) as a "
      "label; a resolved alert's series stays until the engine drops the alert.",
      Type::kGauge, {"rule", "kind", "subject", "state"}, [alerts] {
        std::vector<MetricSample> out;
        for (const a::Alert& alert : alerts()) {
          out.push_back(
              {{alert.rule(), Short(a::AlertKind_Name(alert.kind()), "ALERT_KIND_"),
                alert.subject(), Short(a::AlertState_Name(alert.state()), "ALERT_STATE_")},
               1});
        }
        return out;
      });
  registry.AddCollector(
      "turnpike_alert_value",
      "The value each alert's rule last observed (milliseconds, percent, count...: see the rule's "
      "kind in docs/alerts.md).",
      Type::kGauge, {"rule", "kind", "subject"}, [alerts = std::move(alerts)] {
        std::vector<MetricSample> out;
        for (const a::Alert& alert : alerts()) {
          out.push_back({{alert.rule(), Short(a::AlertKind_Name(alert.kind()), "ALERT_KIND_"),
                          alert.subject()},
                         alert.value()});
        }
        return out;
      });
}

}  // namespace turnpike::controlplane
