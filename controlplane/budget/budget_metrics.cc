#include "controlplane/budget/budget_metrics.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace turnpike::controlplane {
namespace {

const std::vector<std::string> kLabels = {"budget", "capability", "caller", "tier"};

// The budgets as one scrape reads them. MetricsRegistry::Render runs collectors in registration
// order, one scrape at a time: the first family refreshes, the others reuse that read, so every
// family of a scrape shows the same consistent state.
class ScrapeRead {
 public:
  explicit ScrapeRead(LeaseLedger& ledger) : ledger_(ledger) {}

  void Refresh() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<std::vector<budget::v1::BudgetStatus>> read = ledger_.Budgets({});
    absl::MutexLock lock(&mu_);
    // A failed read (the database stayed locked) shows no budget series rather than stale ones.
    budgets_ = read.ok() ? *std::move(read) : std::vector<budget::v1::BudgetStatus>();
  }

  std::vector<MetricSample> Samples(double (*value)(const budget::v1::BudgetStatus&)) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::vector<MetricSample> out;
    out.reserve(budgets_.size());
    for (const budget::v1::BudgetStatus& b : budgets_) {
      out.push_back({{b.name(), b.capability(), b.caller(), b.tier()}, value(b)});
    }
    return out;
  }

 private:
  LeaseLedger& ledger_;
  mutable absl::Mutex mu_;
  std::vector<budget::v1::BudgetStatus> budgets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void AddBudgetMetrics(MetricsRegistry& registry, LeaseLedger& ledger) {
  auto read = std::make_shared<ScrapeRead>(ledger);
  using Type = MetricsRegistry::Type;
  using Status = budget::v1::BudgetStatus;
  registry.AddCollector("turnpike_budget_limit_usd_micros",
                        "Each budget's limit for its current window, in micro-dollars.",
                        Type::kGauge, kLabels, [read] {
                          read->Refresh();  // the first family of the group: one read per scrape
                          return read->Samples([](const Status& b) {
                            return static_cast<double>(b.limit_usd_micros());
                          });
                        });
  registry.AddCollector(
      "turnpike_budget_spent_usd_micros",
      "Each budget's spend in its current window: settled, plus what live leases reported spent, "
      "in micro-dollars.",
      Type::kGauge, kLabels, [read] {
        return read->Samples(
            [](const Status& b) { return static_cast<double>(b.spent_usd_micros()); });
      });
  registry.AddCollector(
      "turnpike_budget_reserved_usd_micros",
      "Each budget's amount held by gateways' live leases beyond what they reported spent, in "
      "micro-dollars (limit = spent + reserved + remaining until the budget is exhausted).",
      Type::kGauge, kLabels, [read] {
        return read->Samples(
            [](const Status& b) { return static_cast<double>(b.leased_usd_micros()); });
      });
  registry.AddCollector("turnpike_budget_remaining_usd_micros",
                        "Each budget's limit - spent - reserved, at least 0, in micro-dollars.",
                        Type::kGauge, kLabels, [read] {
                          return read->Samples([](const Status& b) {
                            return static_cast<double>(b.remaining_usd_micros());
                          });
                        });
  registry.AddCollector(
      "turnpike_budget_window_end_timestamp_seconds",
      "When each budget's current window ends, in Unix seconds (a total budget's: the end of "
      "year 9999).",
      Type::kGauge, kLabels, [read] {
        return read->Samples(
            [](const Status& b) { return static_cast<double>(b.window_end().seconds()); });
      });
}

}  // namespace turnpike::controlplane
