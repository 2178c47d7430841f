#include "controlplane/admin_audit.h"

#include "common/status_macros.h"
#include "controlplane/config_tables.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {

absl::Status AuditAdminChange(SqliteDb& db, absl::Time now, const std::string& actor,
                              const char* action, const char* resource_type,
                              const std::string& name, const google::protobuf::Message* before,
                              const google::protobuf::Message* after) {
  TP_ASSIGN_OR_RETURN(ConfigVersion version, ReadConfigVersion(db));
  AuditRecord r;
  r.time = now;
  r.actor = actor;
  r.action = action;
  r.resource_type = resource_type;
  r.resource_name = name;
  if (before != nullptr) r.before_json = ToJson(*before);
  if (after != nullptr) r.after_json = ToJson(*after);
  r.config_version = version.version;
  return AppendAudit(db, r);
}

}  // namespace turnpike::controlplane
