// AlertEngine runs alerting once per control plane: every eval_interval it reads the rules,
// observes each through AlertSignals (ledger, budgets, the registry that merges every gateway's
// reports), steps the AlertEvaluator, hands notifications to the AlertNotifier, and saves the
// alerts (table `alerts`) so a restart neither forgets nor re-sends what already fired. A rule
// whose signals cannot be read keeps its alerts as they are (and is logged). Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_ENGINE_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_ENGINE_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/alerts/alert_evaluator.h"
#include "controlplane/alerts/alert_notifier.h"
#include "controlplane/alerts/alert_rules.h"
#include "controlplane/alerts/alert_signals.h"
#include "controlplane/store.h"

namespace turnpike::controlplane {

class AlertEngine {
 public:
  struct Options {
    // 0: no background evaluation (tests call EvaluateOnce()).
    absl::Duration eval_interval = absl::Seconds(15);
    AlertEvaluator::Options evaluator;
    AlertNotifier::Options notifier;
  };

  // Loads the saved alerts and starts the notifier and (if eval_interval > 0) the evaluation
  // thread. `store`, `rules`, `signals`, `poster` and `clock` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<AlertEngine>> Start(Store& store, AlertRules& rules,
                                                            AlertSignals& signals,
                                                            HttpPoster& poster, Clock& clock,
                                                            Options options);
  ~AlertEngine();

  // One evaluation of every rule; returns the number of notifications queued.
  absl::StatusOr<int> EvaluateOnce();
  std::vector<alert::v1::Alert> Alerts() const { return evaluator_.Alerts(); }
  // Evaluations completed (EvaluateOnce calls that read the rules), for /metrics.
  int64_t evaluations() const { return evaluations_.load(std::memory_order_relaxed); }
  const AlertNotifier& notifier() const { return *notifier_; }
  // Stops evaluating and delivering. Idempotent.
  void Shutdown();

 private:
  AlertEngine(Store& store, AlertRules& rules, AlertSignals& signals, Clock& clock, Options options)
      : store_(store),
        rules_(rules),
        signals_(signals),
        clock_(clock),
        options_(options),
        evaluator_(clock, options.evaluator) {}
  void Loop();
  absl::Status Save() ABSL_EXCLUSIVE_LOCKS_REQUIRED(eval_mu_);

  Store& store_;
  AlertRules& rules_;
  AlertSignals& signals_;
  Clock& clock_;
  const Options options_;
  AlertEvaluator evaluator_;
  std::unique_ptr<AlertNotifier> notifier_;
  std::thread thread_;

  absl::Mutex eval_mu_;  // one evaluation at a time (the loop and EvaluateOnce callers)
  // The evaluator's generation last saved (Save() writes only when it moved).
  uint64_t saved_generation_ ABSL_GUARDED_BY(eval_mu_) = 0;
  std::atomic<int64_t> evaluations_{0};
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_ENGINE_H_
