#include "controlplane/alerts/alert_engine.h"

#include <spdlog/spdlog.h>

#include <set>
#include <string>

#include "common/status_macros.h"

namespace turnpike::controlplane {

namespace a = ::turnpike::alert::v1;

absl::StatusOr<std::unique_ptr<AlertEngine>> AlertEngine::Start(Store& store, AlertRules& rules,
                                                                AlertSignals& signals,
                                                                HttpPoster& poster, Clock& clock,
                                                                Options options) {
  std::unique_ptr<AlertEngine> e(new AlertEngine(store, rules, signals, clock, options));
  std::vector<a::Alert> saved;
  TP_RETURN_IF_ERROR(store.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT body FROM alerts ORDER BY rule, subject"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return absl::OkStatus();
      a::Alert alert;
      if (!alert.ParseFromString(s.ColumnText(0))) {
        return absl::DataLossError("an alerts row does not parse");
      }
      saved.push_back(std::move(alert));
    }
  }));
  e->evaluator_.Restore(saved);
  AlertEvaluator* evaluator = &e->evaluator_;
  e->notifier_ = AlertNotifier::Start(
      [&rules](const std::string& channel) { return rules.OpenChannel(channel); }, poster, clock,
      options.notifier,
      [evaluator](const std::string& rule, const std::string& subject, uint64_t id,
                  const a::Delivery& d) {
        evaluator->UpdateDelivery(rule, subject, id, d);
        if (d.status() == a::DELIVERY_STATUS_FAILED) {
          // The channel's name and the error class only: never its URL.
          spdlog::warn("alert {} ({}): notification to channel {} failed after {} attempt(s): {}",
                       rule, subject, d.channel(), d.attempts(), d.last_error());
        }
      });
  if (options.eval_interval > absl::ZeroDuration()) {
    e->thread_ = std::thread([raw = e.get()] { raw->Loop(); });
  }
  return e;
}

AlertEngine::~AlertEngine() { Shutdown(); }

void AlertEngine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (notifier_ != nullptr) notifier_->Shutdown();
  absl::MutexLock lock(&eval_mu_);
  (void)Save();
}

void AlertEngine::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (clock_.AwaitWithDeadline(mu_, absl::Condition(&stopping_),
                                 clock_.MonotonicNow() + options_.eval_interval)) {
      break;
    }
    mu_.Unlock();
    absl::StatusOr<int> n = EvaluateOnce();
    if (!n.ok()) spdlog::warn("alert evaluation failed: {}", n.status().ToString());
    mu_.Lock();
  }
}

absl::StatusOr<int> AlertEngine::EvaluateOnce() {
  absl::MutexLock lock(&eval_mu_);
  TP_ASSIGN_OR_RETURN(std::vector<a::AlertRule> rules, rules_.ListRules());
  const absl::Time now = clock_.Now();
  std::set<std::string> names;
  std::vector<Notification> out;
  for (const a::AlertRule& rule : rules) {
    names.insert(rule.name());
    absl::StatusOr<std::vector<Observation>> seen = ObserveRule(rule, signals_, now);
    if (!seen.ok()) {
      spdlog::warn("alert rule {}: signals unavailable, its alerts kept as they are: {}",
                   rule.name(), seen.status().ToString());
      continue;
    }
    for (Notification& n : evaluator_.Evaluate(rule, *seen)) {
      spdlog::info("alert {} ({}) {}: {} -> channel {}", n.alert.rule(), n.alert.subject(),
                   a::AlertState_Name(n.event), n.alert.summary(), n.channel);
      out.push_back(std::move(n));
    }
  }
  evaluator_.Retain(names);
  const int queued = static_cast<int>(out.size());
  if (!out.empty()) notifier_->Enqueue(std::move(out));
  absl::Status saved = Save();
  if (!saved.ok()) spdlog::warn("saving alert states failed: {}", saved.ToString());
  evaluations_.fetch_add(1, std::memory_order_relaxed);
  return queued;
}

absl::Status AlertEngine::Save() {
  const uint64_t generation = evaluator_.generation();
  if (generation == saved_generation_) return absl::OkStatus();
  const std::vector<a::Alert> alerts = evaluator_.Alerts();
  const int64_t now = absl::ToUnixMicros(clock_.Now());
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_RETURN_IF_ERROR(db.Exec("DELETE FROM alerts"));
    TP_ASSIGN_OR_RETURN(
        SqliteStatement s,
        db.Prepare("INSERT INTO alerts (rule, subject, body, update_time) VALUES (?, ?, ?, ?)"));
    for (const a::Alert& alert : alerts) {
      TP_RETURN_IF_ERROR(s.Reset());
      s.Bind(1, alert.rule()).Bind(2, alert.subject()).BindBlob(3, alert.SerializeAsString());
      s.Bind(4, now);
      TP_RETURN_IF_ERROR(s.Run());
    }
    return absl::OkStatus();
  }));
  saved_generation_ = generation;
  return absl::OkStatus();
}

}  // namespace turnpike::controlplane
