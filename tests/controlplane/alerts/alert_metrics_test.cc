// The control plane's alert gauges (docs/metrics.md, "Alerts"): one turnpike_alert_state series
// per alert with its state as a label, and the value its rule observed; an alert that changes
// state moves to the other series, one that is dropped disappears.
#include "controlplane/alerts/alert_metrics.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

a::Alert MakeAlert(const std::string& rule, a::AlertKind kind, const std::string& subject,
                   a::AlertState state, double value) {
  a::Alert alert;
  alert.set_rule(rule);
  alert.set_kind(kind);
  alert.set_subject(subject);
  alert.set_state(state);
  alert.set_value(value);
  return alert;
}

bool Has(const std::string& page, const std::string& line) {
  return page.find("\n" + line + "\n") != std::string::npos;
}

TEST(AlertMetricsTest, EachAlertIsOneSeriesLabelledWithItsState) {
  std::vector<a::Alert> alerts = {
      MakeAlert("spend", a::ALERT_KIND_BUDGET_THRESHOLD, "80%", a::ALERT_STATE_FIRING, 83.5),
      MakeAlert("p99", a::ALERT_KIND_LATENCY, "", a::ALERT_STATE_PENDING, 2400)};
  MetricsRegistry registry;
  AddAlertMetrics(registry, [&alerts] { return alerts; });
  std::string page = registry.Render();
  EXPECT_TRUE(Has(page,
                  "turnpike_alert_state{rule=\"spend\",kind=\"budget_threshold\","
                  "subject=\"80%\",state=\"firing\"} 1"))
      << page;
  EXPECT_TRUE(Has(page,
                  "turnpike_alert_state{rule=\"p99\",kind=\"latency\",subject=\"\","
                  "state=\"pending\"} 1"))
      << page;
  EXPECT_TRUE(Has(page,
                  "turnpike_alert_value{rule=\"spend\",kind=\"budget_threshold\","
                  "subject=\"80%\"} 83.5"))
      << page;

  // p99 fires, spend resolves, then the engine drops spend.
  alerts[0].set_state(a::ALERT_STATE_RESOLVED);
  alerts[1].set_state(a::ALERT_STATE_FIRING);
  page = registry.Render();
  EXPECT_TRUE(Has(page,
                  "turnpike_alert_state{rule=\"spend\",kind=\"budget_threshold\","
                  "subject=\"80%\",state=\"resolved\"} 1"))
      << page;
  EXPECT_EQ(page.find("state=\"pending\""), std::string::npos) << page;
  EXPECT_TRUE(Has(page,
                  "turnpike_alert_state{rule=\"p99\",kind=\"latency\",subject=\"\","
                  "state=\"firing\"} 1"))
      << page;
  alerts.erase(alerts.begin());
  page = registry.Render();
  EXPECT_EQ(page.find("rule=\"spend\""), std::string::npos) << page;
}

TEST(AlertMetricsTest, EvaluationsAreACounterReadAtScrapeTime) {
  int64_t evaluations = 0;
  MetricsRegistry registry;
  AddAlertMetrics(
      registry, [] { return std::vector<a::Alert>{}; }, [&] { return evaluations; });
  std::string page = registry.Render();
  EXPECT_NE(page.find("# TYPE turnpike_alert_evaluations_total counter"), std::string::npos)
      << page;
  EXPECT_TRUE(Has(page, "turnpike_alert_evaluations_total 0")) << page;
  evaluations = 7;
  page = registry.Render();
  EXPECT_TRUE(Has(page, "turnpike_alert_evaluations_total 7")) << page;
  // Without the engine's count (a registry that only shows alerts) there is no such family.
  MetricsRegistry alerts_only;
  AddAlertMetrics(alerts_only, [] { return std::vector<a::Alert>{}; });
  EXPECT_EQ(alerts_only.Render().find("turnpike_alert_evaluations_total"), std::string::npos);
}

}  // namespace
}  // namespace turnpike::controlplane
