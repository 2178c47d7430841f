#include "controlplane/config_tables.h"

#include "controlplane/audit_chain.h"
#include "controlplane/proto_util.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turnpike::controlplane {
namespace {

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }
std::optional<int64_t> Micros(std::optional<absl::Time> t) {
  if (!t.has_value()) return std::nullopt;
  return absl::ToUnixMicros(*t);
}
std::optional<absl::Time> OptionalTime(const SqliteStatement& s, int col) {
  std::optional<int64_t> us = s.ColumnOptionalInt(col);
  if (!us.has_value()) return std::nullopt;
  return FromMicros(*us);
}

absl::StatusOr<std::vector<std::string>> Names(SqliteDb& db, const char* sql,
                                               const std::string& arg) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare(sql));
  s.Bind(1, arg);
  std::vector<std::string> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.ColumnText(0));
  }
  return out;
}

std::string SpecColumns(const SpecTable& t) {
  return absl::StrCat("name, spec, revision, create_time, update_time",
                      t.ref_column != nullptr ? absl::StrCat(", ", t.ref_column) : "");
}

SpecRow ReadSpecRow(const SqliteStatement& s, const SpecTable& t) {
  SpecRow r;
  r.name = s.ColumnText(0);
  r.spec_json = s.ColumnText(1);
  r.revision = s.ColumnInt(2);
  r.create_time = FromMicros(s.ColumnInt(3));
  r.update_time = FromMicros(s.ColumnInt(4));
  if (t.ref_column != nullptr && !s.ColumnIsNull(5)) r.ref = s.ColumnText(5);
  return r;
}

void BindRef(SqliteStatement& s, int index, const std::optional<std::string>& ref) {
  if (ref.has_value()) {
    s.Bind(index, *ref);
  } else {
    s.BindNull(index);
  }
}

}  // namespace

absl::StatusOr<std::optional<SpecRow>> GetSpecRow(SqliteDb& db, const SpecTable& t,
                                                  const std::string& name) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("SELECT ", SpecColumns(t), " FROM ", t.table, " WHERE name = ?")));
  s.Bind(1, name);
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<SpecRow>();
  return std::optional<SpecRow>(ReadSpecRow(s, t));
}

absl::StatusOr<std::vector<SpecRow>> ListSpecRows(SqliteDb& db, const SpecTable& t,
                                                  const std::string& after, int limit) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("SELECT ", SpecColumns(t), " FROM ", t.table,
                                              " WHERE name > ? ORDER BY name LIMIT ?")));
  s.Bind(1, after).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<SpecRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadSpecRow(s, t));
  }
  return out;
}

absl::Status InsertSpecRow(SqliteDb& db, const SpecTable& t, const SpecRow& row) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("INSERT INTO ", t.table, " (", SpecColumns(t),
                                              ") VALUES (?, ?, ?, ?, ?",
                                              t.ref_column != nullptr ? ", ?" : "", ")")));
  s.Bind(1, row.name).Bind(2, row.spec_json).Bind(3, row.revision);
  s.Bind(4, Micros(row.create_time)).Bind(5, Micros(row.update_time));
  if (t.ref_column != nullptr) BindRef(s, 6, row.ref);
  return s.Run();
}

absl::Status UpdateSpecRow(SqliteDb& db, const SpecTable& t, const SpecRow& row) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat(
                          "UPDATE ", t.table, " SET spec = ?, revision = ?, update_time = ?",
                          t.ref_column != nullptr ? absl::StrCat(", ", t.ref_column, " = ?") : "",
                          " WHERE name = ?")));
  s.Bind(1, row.spec_json).Bind(2, row.revision).Bind(3, Micros(row.update_time));
  int next = 4;
  if (t.ref_column != nullptr) BindRef(s, next++, row.ref);
  s.Bind(next, row.name);
  TP_RETURN_IF_ERROR(s.Run());
  if (db.changes() != 1) return absl::NotFoundError(absl::StrCat(row.name, " does not exist"));
  return absl::OkStatus();
}

absl::Status DeleteSpecRow(SqliteDb& db, const SpecTable& t, const std::string& name) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("DELETE FROM ", t.table, " WHERE name = ?")));
  s.Bind(1, name);
  return s.Run();
}

absl::Status ReplaceRouteTargets(SqliteDb& db, const std::string& route,
                                 const std::vector<RouteTargetRow>& targets) {
  TP_ASSIGN_OR_RETURN(SqliteStatement del, db.Prepare("DELETE FROM route_targets WHERE route = ?"));
  del.Bind(1, route);
  TP_RETURN_IF_ERROR(del.Run());
  for (size_t i = 0; i < targets.size(); ++i) {
    TP_ASSIGN_OR_RETURN(
        SqliteStatement ins,
        db.Prepare(
            "INSERT INTO route_targets (route, position, provider, model) VALUES (?, ?, ?, ?)"));
    ins.Bind(1, route).Bind(2, static_cast<int64_t>(i)).Bind(3, targets[i].provider);
    ins.Bind(4, targets[i].model);
    TP_RETURN_IF_ERROR(ins.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> RoutesUsingProvider(SqliteDb& db,
                                                             const std::string& provider) {
  return Names(db, "SELECT DISTINCT route FROM route_targets WHERE provider = ? ORDER BY route",
               provider);
}

absl::StatusOr<std::vector<std::string>> PricesOfProvider(SqliteDb& db,
                                                          const std::string& provider) {
  return Names(db, "SELECT name FROM prices WHERE provider = ? ORDER BY name", provider);
}

absl::StatusOr<std::vector<std::string>> ProvidersUsingCredential(SqliteDb& db,
                                                                  const std::string& credential) {
  return Names(db, "SELECT name FROM providers WHERE credential = ? ORDER BY name", credential);
}

absl::StatusOr<ConfigVersion> ReadConfigVersion(SqliteDb& db) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("SELECT version, update_time FROM config_state WHERE id = 1"));
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::DataLossError("config_state row is missing");
  return ConfigVersion{s.ColumnInt(0), FromMicros(s.ColumnInt(1))};
}

absl::StatusOr<int64_t> BumpConfigVersion(SqliteDb& db, absl::Time now) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("UPDATE config_state SET version = version + 1, update_time = ? WHERE id = 1 "
                 "RETURNING version"));
  s.Bind(1, Micros(now));
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::DataLossError("config_state row is missing");
  int64_t v = s.ColumnInt(0);
  TP_ASSIGN_OR_RETURN(bool more, s.Step());
  (void)more;
  return v;
}

absl::Status AppendAudit(SqliteDb& db, const AuditRecord& r) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("INSERT INTO admin_audit (time, actor, action, resource_type, resource_name, "
                 "before_json, after_json, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, Micros(r.time)).Bind(2, r.actor).Bind(3, r.action).Bind(4, r.resource_type);
  s.Bind(5, r.resource_name);
  if (r.before_json.empty())
    s.BindNull(6);
  else
    s.Bind(6, r.before_json);
  if (r.after_json.empty())
    s.BindNull(7);
  else
    s.Bind(7, r.after_json);
  s.Bind(8, r.config_version);
  TP_RETURN_IF_ERROR(s.Run());
  // The same change joins the hash-chained trail, in the same transaction (docs/audit.md).
  TP_ASSIGN_OR_RETURN(int64_t seq, db.QueryInt("SELECT last_insert_rowid()"));
  audit::v1::AdminChange change;
  change.set_seq(seq);
  *change.mutable_time() = ToTimestamp(r.time);
  change.set_actor(r.actor);
  change.set_action(r.action);
  change.set_resource_type(r.resource_type);
  change.set_resource_name(r.resource_name);
  change.set_before_json(r.before_json);
  change.set_after_json(r.after_json);
  change.set_config_version(r.config_version);
  return AppendAdminChangeEntry(db, change, r.time);
}

absl::StatusOr<std::vector<AuditRecord>> ListAudit(SqliteDb& db, int64_t before_sequence,
                                                   int limit) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("SELECT seq, time, actor, action, resource_type, resource_name, before_json, "
                 "after_json, config_version FROM admin_audit WHERE seq < ? ORDER BY seq DESC "
                 "LIMIT ?"));
  s.Bind(1, before_sequence > 0 ? before_sequence : INT64_MAX);
  s.Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<AuditRecord> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    AuditRecord r;
    r.sequence = s.ColumnInt(0);
    r.time = FromMicros(s.ColumnInt(1));
    r.actor = s.ColumnText(2);
    r.action = s.ColumnText(3);
    r.resource_type = s.ColumnText(4);
    r.resource_name = s.ColumnText(5);
    r.before_json = s.ColumnText(6);
    r.after_json = s.ColumnText(7);
    r.config_version = s.ColumnInt(8);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> GetMeta(SqliteDb& db, const std::string& key) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("SELECT value FROM meta WHERE key = ?"));
  s.Bind(1, key);
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.ColumnText(0));
}

absl::Status PutMeta(SqliteDb& db, const std::string& key, const std::string& value) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                                 "DO UPDATE SET value = excluded.value"));
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

absl::Status DeleteMeta(SqliteDb& db, const std::string& key) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM meta WHERE key = ?"));
  s.Bind(1, key);
  return s.Run();
}

namespace {
constexpr char kCredentialColumns[] =
    "name, description, active_version, revision, create_time, update_time";
CredentialRow ReadCredentialRow(const SqliteStatement& s) {
  CredentialRow r;
  r.name = s.ColumnText(0);
  r.description = s.ColumnText(1);
  r.active_version = s.ColumnInt(2);
  r.revision = s.ColumnInt(3);
  r.create_time = FromMicros(s.ColumnInt(4));
  r.update_time = FromMicros(s.ColumnInt(5));
  return r;
}
}  // namespace

absl::StatusOr<std::optional<CredentialRow>> GetCredentialRow(SqliteDb& db,
                                                              const std::string& name) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("SELECT ", kCredentialColumns, " FROM credentials WHERE name = ?")));
  s.Bind(1, name);
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<CredentialRow>();
  return std::optional<CredentialRow>(ReadCredentialRow(s));
}

absl::StatusOr<std::vector<CredentialRow>> ListCredentialRows(SqliteDb& db,
                                                              const std::string& after, int limit) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("SELECT ", kCredentialColumns,
                                              " FROM credentials WHERE name > ? ORDER BY name "
                                              "LIMIT ?")));
  s.Bind(1, after).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<CredentialRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadCredentialRow(s));
  }
  return out;
}

absl::Status InsertCredentialRow(SqliteDb& db, const CredentialRow& r) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("INSERT INTO credentials (", kCredentialColumns,
                                              ") VALUES (?, ?, ?, ?, ?, ?)")));
  s.Bind(1, r.name).Bind(2, r.description).Bind(3, r.active_version).Bind(4, r.revision);
  s.Bind(5, Micros(r.create_time)).Bind(6, Micros(r.update_time));
  return s.Run();
}

absl::Status UpdateCredentialRow(SqliteDb& db, const CredentialRow& r) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("UPDATE credentials SET description = ?, active_version = ?, revision = ?, "
                 "update_time = ? WHERE name = ?"));
  s.Bind(1, r.description).Bind(2, r.active_version).Bind(3, r.revision);
  s.Bind(4, Micros(r.update_time)).Bind(5, r.name);
  return s.Run();
}

absl::Status DeleteCredentialRow(SqliteDb& db, const std::string& name) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM credentials WHERE name = ?"));
  s.Bind(1, name);
  return s.Run();
}

absl::StatusOr<std::vector<CredentialVersionRow>> ListCredentialVersions(SqliteDb& db,
                                                                         const std::string& name) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("SELECT version, state, sealed, fingerprint, create_time, retire_time FROM "
                 "credential_versions WHERE credential = ? ORDER BY version DESC"));
  s.Bind(1, name);
  std::vector<CredentialVersionRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    CredentialVersionRow r;
    r.version = s.ColumnInt(0);
    r.state = static_cast<VersionState>(s.ColumnInt(1));
    if (!s.ColumnIsNull(2)) r.sealed = s.ColumnText(2);
    r.fingerprint = s.ColumnText(3);
    r.create_time = FromMicros(s.ColumnInt(4));
    r.retire_time = OptionalTime(s, 5);
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status InsertCredentialVersion(SqliteDb& db, const std::string& name,
                                     const CredentialVersionRow& r) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("INSERT INTO credential_versions (credential, version, state, sealed, "
                 "fingerprint, create_time, retire_time) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, name).Bind(2, r.version).Bind(3, static_cast<int64_t>(r.state));
  if (r.sealed.has_value())
    s.BindBlob(4, *r.sealed);
  else
    s.BindNull(4);
  s.Bind(5, r.fingerprint).Bind(6, Micros(r.create_time)).Bind(7, Micros(r.retire_time));
  return s.Run();
}

absl::Status SetCredentialVersionState(SqliteDb& db, const std::string& name, int64_t version,
                                       VersionState state, std::optional<absl::Time> retire_time) {
  const char* sql =
      state == VersionState::kRetired
          ? "UPDATE credential_versions SET state = ?, retire_time = ?, sealed = NULL WHERE "
            "credential = ? AND version = ?"
          : "UPDATE credential_versions SET state = ?, retire_time = ? WHERE credential = ? AND "
            "version = ?";
  TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare(sql));
  s.Bind(1, static_cast<int64_t>(state)).Bind(2, Micros(retire_time)).Bind(3, name);
  s.Bind(4, version);
  TP_RETURN_IF_ERROR(s.Run());
  if (db.changes() != 1) {
    return absl::NotFoundError(absl::StrCat("credential ", name, " has no version ", version));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SealedVersion>> ListSealedVersions(SqliteDb& db,
                                                              const std::string& not_under_key_id,
                                                              int limit) {
  // Bytes 5..12 of the sealed format are the master key id (controlplane/secret_box.h).
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(not_under_key_id.empty()
                     ? "SELECT credential, version, sealed FROM credential_versions WHERE sealed "
                       "IS NOT NULL ORDER BY credential, version LIMIT ?"
                     : "SELECT credential, version, sealed FROM credential_versions WHERE sealed "
                       "IS NOT NULL AND substr(sealed, 5, 8) != ? ORDER BY credential, version "
                       "LIMIT ?"));
  if (not_under_key_id.empty()) {
    s.Bind(1, int64_t{limit > 0 ? limit : -1});
  } else {
    s.BindBlob(1, not_under_key_id).Bind(2, int64_t{limit > 0 ? limit : -1});
  }
  std::vector<SealedVersion> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.ColumnText(0), s.ColumnInt(1), s.ColumnText(2)});
  }
  return out;
}

absl::Status ResealCredentialVersion(SqliteDb& db, const std::string& credential, int64_t version,
                                     const std::string& sealed, const std::string& fingerprint) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("UPDATE credential_versions SET sealed = ?, fingerprint = ? "
                                 "WHERE credential = ? AND version = ? AND sealed IS NOT NULL"));
  s.BindBlob(1, sealed).Bind(2, fingerprint).Bind(3, credential).Bind(4, version);
  return s.Run();
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> VersionsDueForRetirement(
    SqliteDb& db, absl::Time now) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("SELECT credential, version FROM credential_versions WHERE state = 2 AND "
                 "retire_time IS NOT NULL AND retire_time <= ? ORDER BY credential, version"));
  s.Bind(1, Micros(now));
  std::vector<std::pair<std::string, int64_t>> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.ColumnText(0), s.ColumnInt(1));
  }
  return out;
}

absl::StatusOr<std::vector<CallerKeyRow>> ListCallerKeys(SqliteDb& db, const std::string& caller) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("SELECT key_id, caller, sha256, prefix, create_time, revoke_time, expire_time, "
                 "last_used_time FROM caller_keys WHERE caller = ? ORDER BY create_time DESC, "
                 "key_id"));
  s.Bind(1, caller);
  std::vector<CallerKeyRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    CallerKeyRow r;
    r.key_id = s.ColumnText(0);
    r.caller = s.ColumnText(1);
    r.sha256 = s.ColumnText(2);
    r.prefix = s.ColumnText(3);
    r.create_time = FromMicros(s.ColumnInt(4));
    r.revoke_time = OptionalTime(s, 5);
    r.expire_time = OptionalTime(s, 6);
    r.last_used_time = OptionalTime(s, 7);
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status InsertCallerKey(SqliteDb& db, const CallerKeyRow& r) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare("INSERT INTO caller_keys (key_id, caller, sha256, prefix, create_time, "
                 "revoke_time, expire_time, last_used_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  s.Bind(1, r.key_id).Bind(2, r.caller).Bind(3, r.sha256).Bind(4, r.prefix);
  s.Bind(5, Micros(r.create_time)).Bind(6, Micros(r.revoke_time));
  s.Bind(7, Micros(r.expire_time)).Bind(8, Micros(r.last_used_time));
  return s.Run();
}

absl::Status RevokeCallerKeyRow(SqliteDb& db, const std::string& key_id, absl::Time now) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("UPDATE caller_keys SET revoke_time = ? WHERE key_id = ? AND "
                                 "revoke_time IS NULL"));
  s.Bind(1, Micros(now)).Bind(2, key_id);
  return s.Run();
}

absl::StatusOr<bool> AdvanceCallerKeyLastUsed(SqliteDb& db, const std::string& key_id,
                                              absl::Time minute) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("UPDATE caller_keys SET last_used_time = ? WHERE key_id = ? AND "
                                 "(last_used_time IS NULL OR last_used_time < ?)"));
  s.Bind(1, Micros(minute)).Bind(2, key_id).Bind(3, Micros(minute));
  TP_RETURN_IF_ERROR(s.Run());
  return db.changes() > 0;
}

}  // namespace turnpike::controlplane
