// Alert-rule and alert-channel changes as entries of the audit trail (docs/audit.md), written in
// the caller's write transaction so a change and its entry commit together, the way token changes
// are (identity_store.cc). Rules and channels are not part of the config snapshot, so the entry
// carries the current config version. Callers pass what a list shows (a channel without its URL
// or routing key). Stateless.
#ifndef TURNPIKE_CONTROLPLANE_ALERTS_ALERT_AUDIT_H_
#define TURNPIKE_CONTROLPLANE_ALERTS_ALERT_AUDIT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "controlplane/sqlite.h"
#include "google/protobuf/message.h"

namespace turnpike::controlplane {

// Appends one admin change: `actor` did `action` (the RPC's name) to `resource_type` `name`;
// `before` and `after` (null: none) as JSON.
absl::Status AuditAlertChange(SqliteDb& db, absl::Time now, const std::string& actor,
                              const char* action, const char* resource_type,
                              const std::string& name, const google::protobuf::Message* before,
                              const google::protobuf::Message* after);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ALERTS_ALERT_AUDIT_H_
