// FakeAlertSignals: AlertSignals whose answers a test sets directly (request stats per
// capability/model, budgets, gateways), for the evaluator's unit tests. Requests() answers with
// the stats set for its exact capability and model, whatever the window; Fail() makes every call
// return UNAVAILABLE. Thread-safe.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_ALERTS_FAKE_ALERT_SIGNALS_H_
#define TURNPIKE_TESTS_CONTROLPLANE_ALERTS_FAKE_ALERT_SIGNALS_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controlplane/alerts/alert_signals.h"

namespace turnpike::controlplane::testing {

class FakeAlertSignals final : public AlertSignals {
 public:
  void SetRequests(const std::string& capability, const std::string& model, RequestStats s) {
    absl::MutexLock lock(&mu_);
    requests_[{capability, model}] = s;
  }
  void SetBudget(const std::string& name, int64_t limit, int64_t spent,
                 absl::Time window_start = absl::InfinitePast(),
                 absl::Time window_end = absl::InfiniteFuture()) {
    absl::MutexLock lock(&mu_);
    budgets_[name] = BudgetUse{limit, spent, window_start, window_end};
  }
  void SetGateways(std::vector<GatewaySignal> g) {
    absl::MutexLock lock(&mu_);
    gateways_ = std::move(g);
  }
  void SetRoutes(std::vector<RouteSignal> r) {
    absl::MutexLock lock(&mu_);
    routes_ = std::move(r);
  }
  void Fail(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  // The `since` of the last Requests() call.
  absl::Time last_since() {
    absl::MutexLock lock(&mu_);
    return last_since_;
  }

  absl::StatusOr<RequestStats> Requests(const std::string& capability, const std::string& model,
                                        absl::Time since, double) override {
    absl::MutexLock lock(&mu_);
    if (fail_) return absl::UnavailableError("ledger unreadable (fake)");
    last_since_ = since;
    auto it = requests_.find({capability, model});
    return it == requests_.end() ? RequestStats{} : it->second;
  }
  absl::StatusOr<std::optional<BudgetUse>> Budget(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    if (fail_) return absl::UnavailableError("ledger unreadable (fake)");
    auto it = budgets_.find(name);
    if (it == budgets_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<GatewaySignal> Gateways() override {
    absl::MutexLock lock(&mu_);
    return gateways_;
  }
  std::vector<RouteSignal> Routes() override {
    absl::MutexLock lock(&mu_);
    return routes_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, RequestStats> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, BudgetUse> budgets_ ABSL_GUARDED_BY(mu_);
  std::vector<GatewaySignal> gateways_ ABSL_GUARDED_BY(mu_);
  std::vector<RouteSignal> routes_ ABSL_GUARDED_BY(mu_);
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_ALERTS_FAKE_ALERT_SIGNALS_H_
