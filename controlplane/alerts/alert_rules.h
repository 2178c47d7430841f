// AlertRules is the admin side of alerting: rules and notification channels kept in SQLite
// (migrations/0006_alerts.sql), validated on the way in. A channel's URL and PagerDuty routing key
// are sealed with the SecretBox like provider credentials; lists show only the URL's scheme and
// host and a fingerprint, and only the notifier opens them (OpenChannel). Every change is an entry
// of the audit trail, committed in the change's transaction (who, what, the rule or the channel as
// listed: never a URL or key). Libraries return errors and do not log: nothing here ever puts a
// URL or key in a status message. Thread-safe (the Store serialises connections; nothing else is
// mutable). Channels live in alert_channels.cc.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_RULES_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_RULES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "controlplane/secret_box.h"
#include "controlplane/store.h"
#include "turnpike/alert/v1/alert.pb.h"

namespace turnpike::controlplane {

// A channel with its secrets opened, for the notifier only.
struct OpenedChannel {
  std::string name;
  alert::v1::ChannelKind kind = alert::v1::CHANNEL_KIND_UNSPECIFIED;
  std::string url;
  std::string routing_key;
};

// The PagerDuty Events v2 endpoint a PAGERDUTY channel without a URL posts to.
inline constexpr char kPagerDutyEventsUrl[] = "https://events.pagerduty.com/v2/enqueue";

// One page of a list (page sizes and tokens as every list of the admin API: proto_util.h).
template <class T>
struct AlertListPage {
  std::vector<T> items;
  std::string next_page_token;  // empty on the last page
};

class AlertRules {
 public:
  AlertRules(Store& store, const SecretBox& box, Clock& clock)
      : store_(store), box_(box), clock_(clock) {}

  // The changes below are audited as made by `actor` (the authenticated admin token's name).

  // INVALID_ARGUMENT with field violations (paths under "rule."); ALREADY_EXISTS;
  // FAILED_PRECONDITION when a channel it names does not exist. Returns the rule as stored
  // (defaults filled in).
  absl::StatusOr<alert::v1::AlertRule> CreateRule(alert::v1::AlertRule rule,
                                                  const std::string& actor);
  // As CreateRule; NOT_FOUND if there is no rule of that name.
  absl::StatusOr<alert::v1::AlertRule> UpdateRule(alert::v1::AlertRule rule,
                                                  const std::string& actor);
  // NOT_FOUND if there is no such rule.
  absl::Status DeleteRule(const std::string& name, const std::string& actor);
  // Every rule, by name (the evaluator's read).
  absl::StatusOr<std::vector<alert::v1::AlertRule>> ListRules();
  // One page of rules, by name. INVALID_ARGUMENT for a negative size or a foreign token.
  absl::StatusOr<AlertListPage<alert::v1::AlertRule>> ListRules(int page_size,
                                                                const std::string& page_token);

  // Seals the URL and routing key; returns the channel as listed. INVALID_ARGUMENT (paths under
  // "channel."), ALREADY_EXISTS.
  absl::StatusOr<alert::v1::AlertChannel> CreateChannel(const alert::v1::AlertChannel& channel,
                                                        const std::string& actor);
  // NOT_FOUND; FAILED_PRECONDITION while a rule names the channel.
  absl::Status DeleteChannel(const std::string& name, const std::string& actor);
  // One page of channels, by name, secrets redacted.
  absl::StatusOr<AlertListPage<alert::v1::AlertChannel>> ListChannels(
      int page_size, const std::string& page_token);
  // NOT_FOUND; the SecretBox's errors if the sealed secret does not open.
  absl::StatusOr<OpenedChannel> OpenChannel(const std::string& name);

  // The checks CreateRule and UpdateRule run, and the defaults they fill in (quantile 0.99,
  // for_duration 0, cooldown 5 minutes, silent_after 2 minutes). Exposed for tests.
  static absl::Status ValidateRule(alert::v1::AlertRule& rule);
  static absl::Status ValidateChannel(const alert::v1::AlertChannel& channel);

 private:
  absl::StatusOr<alert::v1::AlertRule> PutRule(alert::v1::AlertRule rule, bool create,
                                               const std::string& actor);

  Store& store_;
  const SecretBox& box_;
  Clock& clock_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_RULES_H_
