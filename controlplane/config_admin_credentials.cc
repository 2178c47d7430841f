// ConfigAdmin: credentials (sealed, versioned, write-only secrets) and caller keys.
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/caller_keys.h"
#include "controlplane/config_admin.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

constexpr char kCredential[] = "credential";
constexpr absl::Duration kMaxGracePeriod = absl::Hours(24 * 365);
constexpr absl::Duration kMaxCallerKeyLifetime = absl::Hours(24 * 3653);

admin::v1::CredentialVersionState ToProto(VersionState s) {
  switch (s) {
    case VersionState::kActive:
      return admin::v1::CREDENTIAL_VERSION_STATE_ACTIVE;
    case VersionState::kPrevious:
      return admin::v1::CREDENTIAL_VERSION_STATE_PREVIOUS;
    case VersionState::kRetired:
      return admin::v1::CREDENTIAL_VERSION_STATE_RETIRED;
  }
  return admin::v1::CREDENTIAL_VERSION_STATE_UNSPECIFIED;
}

absl::Status CredentialNotFound(const std::string& name) {
  return ErrorWithReason(absl::StatusCode::kNotFound,
                         absl::StrCat("credential \"", name, "\" does not exist"), "NOT_FOUND");
}

absl::Status CheckRevision(const CredentialRow& row, int64_t given) {
  if (given != 0 && given != row.revision) {
    return ErrorWithReason(
        absl::StatusCode::kAborted,
        absl::StrCat("credential \"", row.name, "\" is at revision ", row.revision,
                     ", the request says ", given, "; read it again and reapply the change"),
        "REVISION_MISMATCH");
  }
  return absl::OkStatus();
}

void ValidateDescription(const std::string& d, Violations& v) {
  if (d.size() > 1024) v.Add("credential.description", "must be at most 1024 characters");
}

// The caller row's JSON for audit, with its keys (ids and prefixes only).
absl::StatusOr<std::string> CallerAuditJson(SqliteDb& db, const SpecRow& row) {
  admin::v1::Caller c;
  TP_RETURN_IF_ERROR(FromJson(row.spec_json, c.mutable_spec()));
  c.set_revision(row.revision);
  TP_ASSIGN_OR_RETURN(std::vector<CallerKeyRow> keys, ListCallerKeys(db, row.name));
  for (const auto& k : keys) *c.add_keys() = CallerKeyToProto(k);
  return ToJson(c);
}

}  // namespace

admin::v1::CallerKey CallerKeyToProto(const CallerKeyRow& k) {
  admin::v1::CallerKey out;
  out.set_key_id(k.key_id);
  out.set_prefix(k.prefix);
  *out.mutable_create_time() = ToTimestamp(k.create_time);
  if (k.revoke_time.has_value()) *out.mutable_revoke_time() = ToTimestamp(*k.revoke_time);
  if (k.expire_time.has_value()) *out.mutable_expire_time() = ToTimestamp(*k.expire_time);
  if (k.last_used_time.has_value()) {
    *out.mutable_last_used_time() = ToTimestamp(*k.last_used_time);
  }
  return out;
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::LoadCredential(SqliteDb& db,
                                                                  const std::string& name) {
  TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
  if (!row.has_value()) return CredentialNotFound(name);
  admin::v1::Credential c;
  c.set_name(row->name);
  c.set_description(row->description);
  c.set_active_version(row->active_version);
  c.set_revision(row->revision);
  *c.mutable_create_time() = ToTimestamp(row->create_time);
  *c.mutable_update_time() = ToTimestamp(row->update_time);
  TP_ASSIGN_OR_RETURN(std::vector<CredentialVersionRow> versions, ListCredentialVersions(db, name));
  for (const auto& v : versions) {
    auto* out = c.add_versions();
    out->set_version(v.version);
    out->set_state(ToProto(v.state));
    out->set_fingerprint(v.fingerprint);
    *out->mutable_create_time() = ToTimestamp(v.create_time);
    if (v.retire_time.has_value()) *out->mutable_retire_time() = ToTimestamp(*v.retire_time);
  }
  return c;
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::CreateCredential(
    const admin::v1::CreateCredentialRequest& request, const std::string& actor) {
  const std::string& name = request.credential().name();
  {
    Violations v;
    ValidateName(name, "credential.name", v);
    ValidateDescription(request.credential().description(), v);
    ValidateSecret(request.secret(), "secret", v);
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::Credential out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> existing, GetCredentialRow(db, name));
        if (existing.has_value()) {
          return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                                 absl::StrCat("credential \"", name, "\" already exists"),
                                 "ALREADY_EXISTS");
        }
        TP_ASSIGN_OR_RETURN(std::string sealed, box_.Seal(request.secret(), name, 1));
        TP_RETURN_IF_ERROR(InsertCredentialRow(
            db, CredentialRow{name, request.credential().description(), 1, 1, now, now}));
        CredentialVersionRow version;
        version.version = 1;
        version.state = VersionState::kActive;
        version.sealed = std::move(sealed);
        version.fingerprint = box_.Fingerprint(request.secret());
        version.create_time = now;
        TP_RETURN_IF_ERROR(InsertCredentialVersion(db, name, version));
        TP_ASSIGN_OR_RETURN(out, LoadCredential(db, name));
        changes.push_back({"CreateCredential", kCredential, name, "", ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::GetCredential(const std::string& name) {
  admin::v1::Credential out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(out, LoadCredential(db, name));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ConfigAdmin::Page<admin::v1::Credential>> ConfigAdmin::ListCredentials(
    int page_size, const std::string& page_token) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  Page<admin::v1::Credential> page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<CredentialRow> rows, ListCredentialRows(db, after, limit + 1));
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
      TP_ASSIGN_OR_RETURN(admin::v1::Credential c, LoadCredential(db, rows[i].name));
      page.items.push_back(std::move(c));
    }
    if (rows.size() > static_cast<size_t>(limit)) {
      page.next_page_token = EncodePageToken(rows[limit - 1].name);
    }
    return absl::OkStatus();
  }));
  return page;
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::UpdateCredential(
    const admin::v1::Credential& credential, const std::string& actor) {
  const std::string& name = credential.name();
  {
    Violations v;
    if (name.empty()) v.Add("credential.name", "is required to identify the credential");
    ValidateDescription(credential.description(), v);
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::Credential out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
        if (!row.has_value()) return CredentialNotFound(name);
        TP_RETURN_IF_ERROR(CheckRevision(*row, credential.revision()));
        TP_ASSIGN_OR_RETURN(admin::v1::Credential before, LoadCredential(db, name));
        row->description = credential.description();
        row->revision += 1;
        row->update_time = now;
        TP_RETURN_IF_ERROR(UpdateCredentialRow(db, *row));
        TP_ASSIGN_OR_RETURN(out, LoadCredential(db, name));
        changes.push_back({"UpdateCredential", kCredential, name, ToJson(before), ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

absl::Status ConfigAdmin::DeleteCredential(const std::string& name, int64_t revision,
                                           const std::string& actor) {
  return Commit(actor, [&](SqliteDb& db, absl::Time, std::vector<Change>& changes) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
    if (!row.has_value()) return CredentialNotFound(name);
    TP_RETURN_IF_ERROR(CheckRevision(*row, revision));
    TP_ASSIGN_OR_RETURN(std::vector<std::string> users, ProvidersUsingCredential(db, name));
    if (!users.empty()) {
      return ErrorWithReason(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat("credential \"", name, "\" is still used by providers ",
                       absl::StrJoin(users, ", "), "; change or delete those first"),
          "RESOURCE_IN_USE");
    }
    TP_ASSIGN_OR_RETURN(admin::v1::Credential before, LoadCredential(db, name));
    TP_RETURN_IF_ERROR(DeleteCredentialRow(db, name));
    changes.push_back({"DeleteCredential", kCredential, name, ToJson(before), ""});
    return absl::OkStatus();
  });
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::RotateCredential(
    const admin::v1::RotateCredentialRequest& request, const std::string& actor) {
  const std::string& name = request.name();
  absl::Duration grace = options_.default_grace_period;
  {
    Violations v;
    if (name.empty()) v.Add("name", "is required");
    ValidateSecret(request.secret(), "secret", v);
    if (request.has_grace_period()) {
      grace = absl::Seconds(request.grace_period().seconds()) +
              absl::Nanoseconds(request.grace_period().nanos());
      if (grace <= absl::ZeroDuration() || grace > kMaxGracePeriod) {
        v.Add("grace_period", "must be positive and at most 365 days");
      }
    }
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::Credential out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
        if (!row.has_value()) return CredentialNotFound(name);
        TP_RETURN_IF_ERROR(CheckRevision(*row, request.revision()));
        TP_ASSIGN_OR_RETURN(admin::v1::Credential before, LoadCredential(db, name));
        TP_ASSIGN_OR_RETURN(std::vector<CredentialVersionRow> versions,
                            ListCredentialVersions(db, name));
        int64_t next = versions.empty() ? 1 : versions.front().version + 1;
        TP_RETURN_IF_ERROR(SetCredentialVersionState(db, name, row->active_version,
                                                     VersionState::kPrevious, now + grace));
        TP_ASSIGN_OR_RETURN(std::string sealed, box_.Seal(request.secret(), name, next));
        CredentialVersionRow version;
        version.version = next;
        version.state = VersionState::kActive;
        version.sealed = std::move(sealed);
        version.fingerprint = box_.Fingerprint(request.secret());
        version.create_time = now;
        TP_RETURN_IF_ERROR(InsertCredentialVersion(db, name, version));
        row->active_version = next;
        row->revision += 1;
        row->update_time = now;
        TP_RETURN_IF_ERROR(UpdateCredentialRow(db, *row));
        TP_ASSIGN_OR_RETURN(out, LoadCredential(db, name));
        changes.push_back({"RotateCredential", kCredential, name, ToJson(before), ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<admin::v1::Credential> ConfigAdmin::RetireCredentialVersion(
    const admin::v1::RetireCredentialVersionRequest& request, const std::string& actor) {
  const std::string& name = request.name();
  {
    Violations v;
    if (name.empty()) v.Add("name", "is required");
    if (request.version() <= 0) v.Add("version", "must be a positive version number");
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::Credential out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
        if (!row.has_value()) return CredentialNotFound(name);
        TP_RETURN_IF_ERROR(CheckRevision(*row, request.revision()));
        TP_ASSIGN_OR_RETURN(admin::v1::Credential before, LoadCredential(db, name));
        TP_ASSIGN_OR_RETURN(std::vector<CredentialVersionRow> versions,
                            ListCredentialVersions(db, name));
        const CredentialVersionRow* target = nullptr;
        for (const auto& v : versions) {
          if (v.version == request.version()) target = &v;
        }
        if (target == nullptr) {
          return ErrorWithReason(
              absl::StatusCode::kNotFound,
              absl::StrCat("credential \"", name, "\" has no version ", request.version()),
              "NOT_FOUND");
        }
        if (target->state == VersionState::kActive) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 absl::StrCat("version ", request.version(), " of credential \"",
                                              name, "\" is active; rotate to a new secret first"),
                                 "CREDENTIAL_VERSION_ACTIVE");
        }
        if (target->state == VersionState::kRetired) {
          out = before;  // already retired: nothing to change
          return absl::OkStatus();
        }
        TP_RETURN_IF_ERROR(
            SetCredentialVersionState(db, name, request.version(), VersionState::kRetired, now));
        row->revision += 1;
        row->update_time = now;
        TP_RETURN_IF_ERROR(UpdateCredentialRow(db, *row));
        TP_ASSIGN_OR_RETURN(out, LoadCredential(db, name));
        changes.push_back(
            {"RetireCredentialVersion", kCredential, name, ToJson(before), ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<int> ConfigAdmin::RetireExpiredCredentialVersions() {
  int retired = 0;
  TP_RETURN_IF_ERROR(Commit(
      "system", [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(auto due, VersionsDueForRetirement(db, now));
        for (const auto& [name, version] : due) {
          TP_ASSIGN_OR_RETURN(admin::v1::Credential before, LoadCredential(db, name));
          TP_RETURN_IF_ERROR(
              SetCredentialVersionState(db, name, version, VersionState::kRetired, now));
          TP_ASSIGN_OR_RETURN(std::optional<CredentialRow> row, GetCredentialRow(db, name));
          if (!row.has_value()) return CredentialNotFound(name);
          CredentialRow updated = *row;
          updated.revision += 1;
          updated.update_time = now;
          TP_RETURN_IF_ERROR(UpdateCredentialRow(db, updated));
          TP_ASSIGN_OR_RETURN(admin::v1::Credential after, LoadCredential(db, name));
          changes.push_back(
              {"RetireExpiredCredentialVersion", kCredential, name, ToJson(before), ToJson(after)});
          ++retired;
        }
        return absl::OkStatus();
      }));
  return retired;
}

absl::StatusOr<admin::v1::CreateCallerKeyResponse> ConfigAdmin::CreateCallerKey(
    const std::string& caller, const std::string& key_id, const std::string& actor) {
  admin::v1::CreateCallerKeyRequest request;
  request.set_caller(caller);
  request.set_key_id(key_id);
  return CreateCallerKey(request, actor);
}

absl::StatusOr<admin::v1::CreateCallerKeyResponse> ConfigAdmin::CreateCallerKey(
    const admin::v1::CreateCallerKeyRequest& request, const std::string& actor) {
  const std::string& caller = request.caller();
  const std::string& key_id = request.key_id();
  std::optional<absl::Time> expire_time;
  {
    Violations v;
    if (caller.empty()) v.Add("caller", "is required");
    if (!key_id.empty()) ValidateName(key_id, "key_id", v);
    // Kept to the second: what the admin API shows is what gateways enforce.
    const absl::Time now = clock_.Now();
    if (request.has_expire_time()) {
      const auto& t = request.expire_time();
      if (t.nanos() < 0 || t.nanos() > 999999999) {
        v.Add("expire_time", "is not a valid timestamp");
      } else {
        expire_time = absl::FromUnixSeconds(t.seconds());
        if (*expire_time <= now) {
          v.Add("expire_time", "is in the past; give a time after now, or a ttl");
        } else if (*expire_time > now + kMaxCallerKeyLifetime) {
          v.Add("expire_time", "is more than 10 years ahead");
        }
      }
    } else if (request.has_ttl()) {
      const absl::Duration ttl =
          absl::Seconds(request.ttl().seconds()) + absl::Nanoseconds(request.ttl().nanos());
      if (ttl < absl::Seconds(1) || ttl > kMaxCallerKeyLifetime) {
        v.Add("ttl", "must be between 1 second and 10 years");
      } else {
        expire_time = absl::FromUnixSeconds(absl::ToUnixSeconds(now + ttl));
      }
    }
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::CreateCallerKeyResponse out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kCallersTable, caller));
        if (!row.has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 absl::StrCat("caller \"", caller, "\" does not exist"),
                                 "NOT_FOUND");
        }
        TP_ASSIGN_OR_RETURN(std::vector<CallerKeyRow> keys, ListCallerKeys(db, caller));
        int valid = 0;
        for (const auto& k : keys) {
          const bool expired = k.expire_time.has_value() && *k.expire_time <= now;
          valid += k.revoke_time.has_value() || expired ? 0 : 1;
        }
        if (valid >= options_.max_keys_per_caller) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 absl::StrCat("caller \"", caller, "\" already has ", valid,
                                              " valid keys; revoke one first"),
                                 "TOO_MANY_KEYS");
        }
        TP_ASSIGN_OR_RETURN(std::string before, CallerAuditJson(db, *row));
        TP_ASSIGN_OR_RETURN(GeneratedCallerKey key, GenerateCallerKey());
        std::string id = key_id;
        if (id.empty()) {
          std::string id_bytes(8, '\0');
          if (RAND_bytes(reinterpret_cast<unsigned char*>(id_bytes.data()), 8) != 1) {
            return absl::InternalError("RAND_bytes failed");
          }
          id = absl::BytesToHexString(id_bytes);
        }
        CallerKeyRow k;
        k.key_id = id;
        k.caller = caller;
        k.sha256 = key.sha256_hex;
        k.prefix = key.display_prefix;
        k.create_time = now;
        k.expire_time = expire_time;
        absl::Status inserted = InsertCallerKey(db, k);
        if (inserted.code() == absl::StatusCode::kAlreadyExists) {
          return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                                 absl::StrCat("a caller key with id \"", id, "\" already exists"),
                                 "ALREADY_EXISTS");
        }
        TP_RETURN_IF_ERROR(inserted);
        row->revision += 1;
        row->update_time = now;
        TP_RETURN_IF_ERROR(UpdateSpecRow(db, kCallersTable, *row));
        TP_ASSIGN_OR_RETURN(std::string after, CallerAuditJson(db, *row));
        out.set_key(std::move(key.key));
        *out.mutable_caller_key() = CallerKeyToProto(k);
        changes.push_back(
            {"CreateCallerKey", "caller", caller, std::move(before), std::move(after)});
        return absl::OkStatus();
      }));
  // A key id can come back after its caller was deleted: its uses start from nothing.
  absl::MutexLock lock(&key_uses_mu_);
  stored_key_use_.erase(out.caller_key().key_id());
  return out;
}

absl::StatusOr<admin::v1::CallerKey> ConfigAdmin::RevokeCallerKey(const std::string& caller,
                                                                  const std::string& key_id,
                                                                  const std::string& actor) {
  {
    Violations v;
    if (caller.empty()) v.Add("caller", "is required");
    if (key_id.empty()) v.Add("key_id", "is required");
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  admin::v1::CallerKey out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, kCallersTable, caller));
        TP_ASSIGN_OR_RETURN(std::vector<CallerKeyRow> keys, ListCallerKeys(db, caller));
        const CallerKeyRow* key = nullptr;
        for (const auto& k : keys) {
          if (k.key_id == key_id) key = &k;
        }
        if (!row.has_value() || key == nullptr) {
          return ErrorWithReason(
              absl::StatusCode::kNotFound,
              absl::StrCat("caller \"", caller, "\" has no key \"", key_id, "\""), "NOT_FOUND");
        }
        if (key->revoke_time.has_value()) {  // already revoked: nothing to change
          out = CallerKeyToProto(*key);
          return absl::OkStatus();
        }
        TP_ASSIGN_OR_RETURN(std::string before, CallerAuditJson(db, *row));
        TP_RETURN_IF_ERROR(RevokeCallerKeyRow(db, key_id, now));
        row->revision += 1;
        row->update_time = now;
        TP_RETURN_IF_ERROR(UpdateSpecRow(db, kCallersTable, *row));
        TP_ASSIGN_OR_RETURN(std::string after, CallerAuditJson(db, *row));
        CallerKeyRow revoked = *key;
        revoked.revoke_time = now;
        out = CallerKeyToProto(revoked);
        changes.push_back(
            {"RevokeCallerKey", "caller", caller, std::move(before), std::move(after)});
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<int> ConfigAdmin::RecordCallerKeyUses(
    const std::vector<std::pair<std::string, absl::Time>>& uses) {
  const int64_t now_minute = absl::ToUnixSeconds(clock_.Now()) / 60 * 60;
  // To the minute: the start of the minute of use, never ahead of this clock's minute.
  std::vector<std::pair<const std::string*, int64_t>> fresh;
  {
    absl::MutexLock lock(&key_uses_mu_);
    for (const auto& [key_id, time] : uses) {
      const int64_t minute = std::min(absl::ToUnixSeconds(time) / 60 * 60, now_minute);
      auto it = stored_key_use_.find(key_id);
      if (it == stored_key_use_.end() || it->second < minute) fresh.emplace_back(&key_id, minute);
    }
  }
  if (fresh.empty()) return 0;
  int moved = 0;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    for (const auto& [key_id, minute] : fresh) {
      TP_ASSIGN_OR_RETURN(bool advanced,
                          AdvanceCallerKeyLastUsed(db, *key_id, absl::FromUnixSeconds(minute)));
      moved += advanced ? 1 : 0;
    }
    return absl::OkStatus();
  }));
  // Committed: remember, so the same report costs nothing next time. (An unknown id is
  // remembered too; it stays harmless and bounded by what authenticated gateways report.)
  absl::MutexLock lock(&key_uses_mu_);
  for (const auto& [key_id, minute] : fresh) {
    int64_t& stored = stored_key_use_[*key_id];
    stored = std::max(stored, minute);
  }
  return moved;
}

}  // namespace turnpike::controlplane
