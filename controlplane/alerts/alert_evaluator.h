// AlertEvaluator is the alerts' state machine: given a rule and what it observes now, it moves
// each (rule, subject) alert between pending, firing and resolved, and says which notifications
// to send. A subject becomes PENDING when its condition first holds and FIRING once it has held
// for the rule's for_duration (at once when that is 0); it leaves PENDING silently and leaves
// FIRING as RESOLVED when the condition no longer holds (or the subject is no longer observed).
// A FIRING notification within the rule's cooldown of the alert's previous one is recorded as
// SUPPRESSED, and so is the resolve that follows it. Each alert keeps its last 20 deliveries,
// which the notifier updates by id (UpdateDelivery). It does no I/O; time comes from the injected
// Clock. Thread-safe (one mutex).
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_EVALUATOR_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_EVALUATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/alerts/alert_signals.h"
#include "turnpike/alert/v1/alert.pb.h"

namespace turnpike::controlplane {

// One notification to send: the alert as it is now, to one channel.
struct Notification {
  uint64_t delivery_id = 0;
  std::string channel;
  alert::v1::AlertState event = alert::v1::ALERT_STATE_UNSPECIFIED;
  alert::v1::Alert alert;  // without its deliveries
  std::string description;
};

class AlertEvaluator {
 public:
  struct Options {
    // Resolved alerts are forgotten this long after they resolved.
    absl::Duration resolved_retention = absl::Hours(24);
    // Deliveries kept per alert.
    int max_deliveries = 20;
  };

  AlertEvaluator(Clock& clock, Options options) : clock_(clock), options_(options) {}

  // Applies `observations` of `rule` at the clock's Now(); returns the notifications to send.
  std::vector<Notification> Evaluate(const alert::v1::AlertRule& rule,
                                     const std::vector<Observation>& observations);
  // Forgets the alerts of rules not in `rules` (deleted rules), without notifications, and
  // resolved alerts past their retention.
  void Retain(const std::set<std::string>& rules);
  // Records what became of a notification (the notifier's callback). Unknown ids are ignored.
  void UpdateDelivery(const std::string& rule, const std::string& subject, uint64_t delivery_id,
                      const alert::v1::Delivery& delivery);

  // Counts changes of state and of deliveries (not of values), so a caller saves only when
  // something changed.
  uint64_t generation() const;
  // Every alert, by rule then subject, deliveries included.
  std::vector<alert::v1::Alert> Alerts() const;
  // Replaces the state with `alerts` (as Alerts() returned them, e.g. from the database at start).
  void Restore(const std::vector<alert::v1::Alert>& alerts);

 private:
  struct Entry {
    alert::v1::Alert alert;
    std::vector<uint64_t> delivery_ids;  // parallel to alert.deliveries()
    absl::Time pending_since;
    // When a FIRING notification was last sent (for the cooldown); InfinitePast if never.
    absl::Time last_notified = absl::InfinitePast();
    bool fire_suppressed = false;
  };
  using Key = std::pair<std::string, std::string>;  // rule, subject

  // Adds one delivery per channel to `e`; returns the notifications (none if suppressed).
  std::vector<Notification> NotifyLocked(Entry& e, const alert::v1::AlertRule& rule,
                                         alert::v1::AlertState event, bool suppressed,
                                         absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock& clock_;
  const Options options_;

  mutable absl::Mutex mu_;
  std::map<Key, Entry> alerts_ ABSL_GUARDED_BY(mu_);
  uint64_t next_delivery_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_EVALUATOR_H_
