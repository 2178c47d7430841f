#include "controlplane/alerts/alert_evaluator.h"

#include "controlplane/proto_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

std::vector<Notification> AlertEvaluator::Evaluate(const a::AlertRule& rule,
                                                   const std::vector<Observation>& observations) {
  const absl::Time now = clock_.Now();
  const absl::Duration for_duration = FromProto(rule.for_duration());
  const absl::Duration cooldown = FromProto(rule.cooldown());
  std::vector<Notification> out;
  auto append = [&out](std::vector<Notification> more) {
    for (Notification& n : more) out.push_back(std::move(n));
  };
  absl::MutexLock lock(&mu_);
  std::set<std::string> seen;
  // The condition no longer holds (or its subject is gone).
  auto clear = [&](std::map<Key, Entry>::iterator it) {
    mu_.AssertHeld();  // called below, under the lock (a lambda is analysed on its own)
    Entry& e = it->second;
    if (e.alert.state() == a::ALERT_STATE_PENDING) {
      ++generation_;
      if (e.alert.deliveries().empty()) {
        alerts_.erase(it);  // never fired: nothing to remember
      } else {
        e.alert.set_state(a::ALERT_STATE_RESOLVED);  // back to how it was
      }
    } else if (e.alert.state() == a::ALERT_STATE_FIRING) {
      ++generation_;
      e.alert.set_state(a::ALERT_STATE_RESOLVED);
      *e.alert.mutable_resolved_at() = ToTimestamp(now);
      append(NotifyLocked(e, rule, a::ALERT_STATE_RESOLVED, e.fire_suppressed, now));
    }
  };
  for (const Observation& o : observations) {
    if (!seen.insert(o.subject).second) continue;  // a subject once per evaluation
    const Key key{rule.name(), o.subject};
    auto it = alerts_.find(key);
    if (!o.breaching) {
      if (it == alerts_.end()) continue;
      it->second.alert.set_value(o.value);
      it->second.alert.set_summary(o.summary);
      clear(it);
      continue;
    }
    if (it == alerts_.end()) {
      it = alerts_.emplace(key, Entry{}).first;
      it->second.alert.set_rule(rule.name());
      it->second.alert.set_subject(o.subject);
    }
    Entry& e = it->second;
    e.alert.set_kind(rule.kind());
    e.alert.set_value(o.value);
    e.alert.set_summary(o.summary);
    if (e.alert.state() != a::ALERT_STATE_PENDING && e.alert.state() != a::ALERT_STATE_FIRING) {
      ++generation_;
      e.alert.set_state(a::ALERT_STATE_PENDING);
      e.pending_since = now;
      *e.alert.mutable_active_since() = ToTimestamp(now);
    }
    if (e.alert.state() == a::ALERT_STATE_PENDING && now - e.pending_since >= for_duration) {
      ++generation_;
      e.alert.set_state(a::ALERT_STATE_FIRING);
      *e.alert.mutable_fired_at() = ToTimestamp(now);
      e.alert.clear_resolved_at();
      e.fire_suppressed = now - e.last_notified < cooldown;
      if (!e.fire_suppressed) e.last_notified = now;
      append(NotifyLocked(e, rule, a::ALERT_STATE_FIRING, e.fire_suppressed, now));
    }
  }
  // Subjects of this rule that were not observed at all.
  for (auto it = alerts_.lower_bound(Key{rule.name(), ""});
       it != alerts_.end() && it->first.first == rule.name();) {
    auto next = std::next(it);
    if (seen.count(it->first.second) == 0) clear(it);
    it = next;
  }
  return out;
}

std::vector<Notification> AlertEvaluator::NotifyLocked(Entry& e, const a::AlertRule& rule,
                                                       a::AlertState event, bool suppressed,
                                                       absl::Time now) {
  std::vector<Notification> out;
  for (const std::string& channel : rule.channels()) {
    const uint64_t id = next_delivery_id_++;
    a::Delivery* d = e.alert.add_deliveries();
    d->set_channel(channel);
    d->set_event(event);
    d->set_status(suppressed ? a::DELIVERY_STATUS_SUPPRESSED : a::DELIVERY_STATUS_PENDING);
    *d->mutable_queued_at() = ToTimestamp(now);
    *d->mutable_updated_at() = ToTimestamp(now);
    e.delivery_ids.push_back(id);
    if (suppressed) continue;
    Notification n;
    n.delivery_id = id;
    n.channel = channel;
    n.event = event;
    n.alert = e.alert;
    n.alert.clear_deliveries();
    n.description = rule.description();
    out.push_back(std::move(n));
  }
  const int excess = e.alert.deliveries_size() - options_.max_deliveries;
  if (excess > 0) {
    e.alert.mutable_deliveries()->DeleteSubrange(0, excess);
    e.delivery_ids.erase(e.delivery_ids.begin(), e.delivery_ids.begin() + excess);
  }
  return out;
}

void AlertEvaluator::Retain(const std::set<std::string>& rules) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (auto it = alerts_.begin(); it != alerts_.end();) {
    const a::Alert& alert = it->second.alert;
    const bool expired = alert.state() == a::ALERT_STATE_RESOLVED && alert.has_resolved_at() &&
                         now - FromProto(alert.resolved_at()) > options_.resolved_retention;
    if (rules.count(it->first.first) == 0 || expired) {
      ++generation_;
      it = alerts_.erase(it);
    } else {
      ++it;
    }
  }
}

void AlertEvaluator::UpdateDelivery(const std::string& rule, const std::string& subject,
                                    uint64_t delivery_id, const a::Delivery& delivery) {
  absl::MutexLock lock(&mu_);
  auto it = alerts_.find(Key{rule, subject});
  if (it == alerts_.end()) return;
  Entry& e = it->second;
  for (size_t i = 0; i < e.delivery_ids.size(); ++i) {
    if (e.delivery_ids[i] == delivery_id) {
      ++generation_;
      *e.alert.mutable_deliveries(static_cast<int>(i)) = delivery;
      return;
    }
  }
}

uint64_t AlertEvaluator::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

std::vector<a::Alert> AlertEvaluator::Alerts() const {
  absl::MutexLock lock(&mu_);
  std::vector<a::Alert> out;
  out.reserve(alerts_.size());
  for (const auto& [key, e] : alerts_) out.push_back(e.alert);
  return out;
}

void AlertEvaluator::Restore(const std::vector<a::Alert>& alerts) {
  absl::MutexLock lock(&mu_);
  ++generation_;
  alerts_.clear();
  for (const a::Alert& alert : alerts) {
    Entry e;
    e.alert = alert;
    e.pending_since = FromProto(alert.active_since());
    if (alert.has_fired_at()) e.last_notified = FromProto(alert.fired_at());
    // Deliveries in flight when the process stopped are not resumed.
    for (a::Delivery& d : *e.alert.mutable_deliveries()) {
      if (d.status() == a::DELIVERY_STATUS_PENDING) {
        d.set_status(a::DELIVERY_STATUS_FAILED);
        d.set_last_error("the control plane restarted before it was delivered");
      }
      e.delivery_ids.push_back(next_delivery_id_++);
    }
    alerts_[Key{alert.rule(), alert.subject()}] = std::move(e);
  }
}

}  // namespace turnpike::controlplane
