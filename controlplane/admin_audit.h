// AuditAdminChange: an admin change that is not part of the config snapshot (an admin or node
// token, a certificate binding, an alert rule or channel) as an entry of the admin audit and the
// hash-chained trail, written in the caller's write transaction so the change and its entry
// commit together (docs/audit.md): who (the authenticated actor), what (the action and the
// listing before and after), when. Callers pass what a list shows: never a token, its hash, a
// channel's URL or routing key. Such changes make no new config version, so the entry carries the
// current one. Stateless.
#ifndef TURNPIKE_CONTROLPLANE_ADMIN_AUDIT_H_
#define TURNPIKE_CONTROLPLANE_ADMIN_AUDIT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "controlplane/sqlite.h"
#include "google/protobuf/message.h"

namespace turnpike::controlplane {

// Appends one admin change: `actor` did `action` (the RPC's name) to `resource_type` `name`;
// `before` and `after` (null: none) as JSON.
absl::Status AuditAdminChange(SqliteDb& db, absl::Time now, const std::string& actor,
                              const char* action, const char* resource_type,
                              const std::string& name, const google::protobuf::Message* before,
                              const google::protobuf::Message* after);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_ADMIN_AUDIT_H_
