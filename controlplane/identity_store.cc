#include "controlplane/identity_store.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/admin_audit.h"
#include "controlplane/caller_keys.h"
#include "controlplane/config_tables.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::admin::v1;

absl::Status CheckName(std::string_view field, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 128;
  for (unsigned char ch : name) ok = ok && ch > 0x20 && ch < 0x7f;
  if (!ok) return InvalidFieldError(field, "must be 1-128 printable ASCII characters, no spaces");
  return absl::OkStatus();
}

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status NotFound(std::string_view what, std::string_view name) {
  return ErrorWithReason(absl::StatusCode::kNotFound,
                         absl::StrCat(AV(what), " \"", AV(name), "\" does not exist"), "NOT_FOUND");
}

absl::Status Exists(std::string_view what, std::string_view name) {
  return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                         absl::StrCat(AV(what), " \"", AV(name), "\" already exists"),
                         "ALREADY_EXISTS");
}

// Columns: name, role|node_id, display_prefix, created_by, create_time, revoke_time.
template <class T>
void FillCommon(const SqliteStatement& st, T* out) {
  out->set_name(st.ColumnText(0));
  out->set_display_prefix(st.ColumnText(2));
  out->set_created_by(st.ColumnText(3));
  *out->mutable_create_time() = ToTimestamp(absl::FromUnixMicros(st.ColumnInt(4)));
  if (!st.ColumnIsNull(5)) {
    *out->mutable_revoke_time() = ToTimestamp(absl::FromUnixMicros(st.ColumnInt(5)));
  }
}

a::AdminToken AdminRow(const SqliteStatement& st) {
  a::AdminToken t;
  FillCommon(st, &t);
  t.set_role(AdminRoleFromName(st.ColumnText(1)));
  return t;
}

a::NodeToken NodeRow(const SqliteStatement& st) {
  a::NodeToken t;
  FillCommon(st, &t);
  t.set_node_id(st.ColumnText(1));
  for (std::string& c : SplitCapabilities(st.ColumnText(6))) t.add_capabilities(std::move(c));
  return t;
}

constexpr char kAdminColumns[] =
    "SELECT name, role, display_prefix, created_by, create_time, revoke_time FROM admin_tokens";
constexpr char kNodeColumns[] =
    "SELECT name, node_id, display_prefix, created_by, create_time, revoke_time, capabilities "
    "FROM node_tokens";

// Revokes the token `name` of `table` (its role or node id column `bound`, rows read by
// `read_row`) inside the caller's write transaction at `now`, and audits it: NOT_FOUND if there is
// none; a token revoked already is left as it was (it was audited when it was revoked). `out`
// gets the token's listing, `digest` its hash.
template <class T>
absl::Status RevokeRow(SqliteDb& db, std::string_view table, std::string_view bound,
                       std::string_view extra_column, std::string_view what,
                       const std::string& name, const std::string& actor, absl::Time now,
                       const char* action, const char* resource_type,
                       T (*read_row)(const SqliteStatement&), T* out, std::string* digest) {
  const auto read = [&]() -> absl::StatusOr<bool> {
    TP_ASSIGN_OR_RETURN(
        SqliteStatement st,
        db.Prepare(absl::StrCat("SELECT name, ", AV(bound),
                                ", display_prefix, created_by, create_time, revoke_time, ",
                                extra_column.empty() ? "" : absl::StrCat(AV(extra_column), ", "),
                                "sha256_hex FROM ", AV(table), " WHERE name = ?")));
    st.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return false;
    *out = read_row(st);
    *digest = st.ColumnText(extra_column.empty() ? 6 : 7);
    return true;
  };
  TP_ASSIGN_OR_RETURN(bool found, read());
  if (!found) return NotFound(what, name);
  if (out->has_revoke_time()) return absl::OkStatus();
  const T before = *out;
  TP_ASSIGN_OR_RETURN(
      SqliteStatement up,
      db.Prepare(absl::StrCat("UPDATE ", AV(table), " SET revoke_time = ? WHERE name = ?")));
  up.Bind(1, absl::ToUnixMicros(now)).Bind(2, name);
  TP_RETURN_IF_ERROR(up.Run());
  TP_ASSIGN_OR_RETURN(found, read());
  if (!found) return NotFound(what, name);
  return AuditAdminChange(db, now, actor, action, resource_type, name, &before, out);
}

}  // namespace

std::vector<std::string> SplitCapabilities(const std::string& joined) {
  if (joined.empty()) return {};
  return absl::StrSplit(joined, ',');
}

constexpr int kMaxNodeCapabilities = 64;

absl::StatusOr<std::vector<std::string>> CheckNodeCapabilities(SqliteDb& db,
                                                               std::vector<std::string> caps,
                                                               const std::string& field) {
  Violations v;
  if (caps.size() > kMaxNodeCapabilities) {
    v.Add(field, absl::StrCat("has more than ", kMaxNodeCapabilities, " entries"));
  }
  for (size_t i = 0; i < caps.size(); ++i) {
    ValidateName(caps[i], absl::StrCat(field, "[", i, "]"), v);
  }
  TP_RETURN_IF_ERROR(v.ToStatus());
  std::sort(caps.begin(), caps.end());
  if (std::adjacent_find(caps.begin(), caps.end()) != caps.end()) {
    return InvalidFieldError(field, "names a capability twice");
  }
  for (const std::string& c : caps) {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> route, GetSpecRow(db, kRoutesTable, c));
    if (!route.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          field, ": \"", c, "\" names no route; create the route first (CreateRoute)"));
    }
  }
  return caps;
}

std::string_view AdminRoleName(a::AdminRole role) {
  switch (role) {
    case a::ADMIN_ROLE_VIEWER:
      return "viewer";
    case a::ADMIN_ROLE_OPERATOR:
      return "operator";
    case a::ADMIN_ROLE_ADMIN:
      return "admin";
    case a::ADMIN_ROLE_AUDITOR:
      return "auditor";
    default:
      return "";
  }
}

a::AdminRole AdminRoleFromName(std::string_view name) {
  for (a::AdminRole r :
       {a::ADMIN_ROLE_VIEWER, a::ADMIN_ROLE_OPERATOR, a::ADMIN_ROLE_ADMIN, a::ADMIN_ROLE_AUDITOR}) {
    if (AdminRoleName(r) == name) return r;
  }
  return a::ADMIN_ROLE_UNSPECIFIED;
}

Principal Identity::principal() const {
  if (kind == Kind::kNode) return Principal::kNode;
  switch (role) {
    case a::ADMIN_ROLE_OPERATOR:
      return Principal::kOperator;
    case a::ADMIN_ROLE_ADMIN:
      return Principal::kAdmin;
    case a::ADMIN_ROLE_AUDITOR:
      return Principal::kAuditor;
    default:
      return Principal::kViewer;
  }
}

std::string Identity::Describe() const {
  if (!certificate_san.empty() && !display_prefix.empty()) {  // a token and its certificate
    return absl::StrCat(kind == Kind::kNode ? "node token " : "admin token ", name, " (",
                        display_prefix, "…) with certificate ", certificate_san);
  }
  if (!certificate_san.empty()) {
    return absl::StrCat(kind == Kind::kNode ? "node certificate " : "admin certificate ", name,
                        " (", certificate_san, ")");
  }
  return absl::StrCat(kind == Kind::kNode ? "node token " : "admin token ", name, " (",
                      display_prefix, "…)");
}

Identity IdentityOf(const a::CertificateBinding& binding) {
  Identity id;
  id.kind = binding.node_id().empty() ? Identity::Kind::kAdmin : Identity::Kind::kNode;
  id.name = binding.name();
  id.role = binding.role();
  id.node_id = binding.node_id();
  id.capabilities = {binding.capabilities().begin(), binding.capabilities().end()};
  id.certificate_san = binding.san();
  return id;
}

absl::StatusOr<std::unique_ptr<IdentityStore>> IdentityStore::Open(Store& store, Clock& clock) {
  std::unique_ptr<IdentityStore> s(new IdentityStore(store, clock));
  TP_RETURN_IF_ERROR(s->Load());
  TP_ASSIGN_OR_RETURN(s->certificates_, CertificateBindings::Open(store, clock));
  return s;
}

absl::Status IdentityStore::Load() {
  absl::flat_hash_map<std::string, Identity> valid;
  bool any_admin = false;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare("SELECT name, role, sha256_hex, display_prefix, revoke_time "
                                   "FROM admin_tokens"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      any_admin = true;
      if (!st.ColumnIsNull(4)) continue;
      Identity id;
      id.kind = Identity::Kind::kAdmin;
      id.name = st.ColumnText(0);
      id.role = AdminRoleFromName(st.ColumnText(1));
      id.display_prefix = st.ColumnText(3);
      valid[st.ColumnText(2)] = std::move(id);
    }
    TP_ASSIGN_OR_RETURN(SqliteStatement nt,
                        db.Prepare("SELECT name, node_id, sha256_hex, display_prefix, capabilities "
                                   "FROM node_tokens WHERE revoke_time IS NULL"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, nt.Step());
      if (!row) break;
      Identity id;
      id.kind = Identity::Kind::kNode;
      id.name = nt.ColumnText(0);
      id.node_id = nt.ColumnText(1);
      id.display_prefix = nt.ColumnText(3);
      id.capabilities = SplitCapabilities(nt.ColumnText(4));
      valid[nt.ColumnText(2)] = std::move(id);
    }
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&mu_);
  valid_ = std::move(valid);
  any_admin_token_ = any_admin;
  return absl::OkStatus();
}

absl::StatusOr<Identity> IdentityStore::Authenticate(std::string_view token) const {
  const bool admin = IsWellFormedKeyWithPrefix(token, kAdminTokenPrefix);
  if (!admin && !IsWellFormedKeyWithPrefix(token, kNodeTokenPrefix)) {
    return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                           "malformed bearer token: expected a tpa_ (admin) or tpn_ (node) token",
                           "MALFORMED_TOKEN");
  }
  const std::string digest = Sha256Hex(token);
  absl::MutexLock lock(&mu_);
  auto it = valid_.find(digest);
  // The index is keyed by the digest, so a hit already matched; the constant-time comparison
  // makes the hit and miss paths do the same work (a miss compares against itself).
  const std::string& stored = it == valid_.end() ? digest : it->first;
  const bool equal = CRYPTO_memcmp(stored.data(), digest.data(), digest.size()) == 0;
  if (it == valid_.end() || !equal) {
    return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                           absl::StrCat("unknown or revoked ", admin ? "admin" : "node", " token"),
                           "INVALID_TOKEN");
  }
  return it->second;
}

bool IdentityStore::HasAdminTokens() const {
  absl::MutexLock lock(&mu_);
  return any_admin_token_;
}

absl::Status IdentityStore::InsertAdmin(const std::string& name, a::AdminRole role,
                                        const std::string& sha256_hex,
                                        const std::string& display_prefix, const std::string& actor,
                                        absl::Time now, bool audit) {
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement exists,
                        db.Prepare("SELECT 1 FROM admin_tokens WHERE name = ?"));
    exists.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool found, exists.Step());
    if (found) return Exists("admin token", name);
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare("INSERT INTO admin_tokens (name, role, sha256_hex, "
                                   "display_prefix, created_by, create_time) "
                                   "VALUES (?, ?, ?, ?, ?, ?)"));
    st.Bind(1, name)
        .Bind(2, AdminRoleName(role))
        .Bind(3, sha256_hex)
        .Bind(4, display_prefix)
        .Bind(5, actor)
        .Bind(6, absl::ToUnixMicros(now));
    TP_RETURN_IF_ERROR(st.Run());
    if (!audit) return absl::OkStatus();
    a::AdminToken after;
    after.set_name(name);
    after.set_role(role);
    after.set_display_prefix(display_prefix);
    after.set_created_by(actor);
    *after.mutable_create_time() = ToTimestamp(now);
    return AuditAdminChange(db, now, actor, "CreateAdminToken", "admin_token", name, nullptr,
                            &after);
  }));
  absl::MutexLock lock(&mu_);
  any_admin_token_ = true;
  Identity id;
  id.kind = Identity::Kind::kAdmin;
  id.name = name;
  id.role = role;
  id.display_prefix = display_prefix;
  valid_[sha256_hex] = std::move(id);
  return absl::OkStatus();
}

absl::Status IdentityStore::AddBootstrapAdminToken(std::string_view token) {
  if (!IsWellFormedKeyWithPrefix(token, kAdminTokenPrefix)) {
    return absl::InvalidArgumentError(
        "the bootstrap admin token is not a well-formed tpa_ token (53 characters; make one by "
        "deleting the file and letting turnpike-control write it)");
  }
  const std::string digest = Sha256Hex(token);
  bool stored = false;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare("SELECT 1 FROM admin_tokens WHERE sha256_hex = ?"));
    st.Bind(1, digest);
    TP_ASSIGN_OR_RETURN(stored, st.Step());
    return absl::OkStatus();
  }));
  if (stored) return absl::OkStatus();
  const std::string prefix(token.substr(0, 12));
  // Not an audit entry: it comes from the operator's file at start, before any RPC.
  return InsertAdmin(absl::StrCat("bootstrap-", prefix.substr(kAdminTokenPrefix.size())),
                     a::ADMIN_ROLE_ADMIN, digest, prefix, "system", clock_.Now(),
                     /*audit=*/false);
}

absl::StatusOr<a::CreateAdminTokenResponse> IdentityStore::CreateAdminToken(
    const std::string& name, a::AdminRole role, const std::string& actor) {
  TP_RETURN_IF_ERROR(CheckName("name", name));
  if (AdminRoleName(role).empty()) {
    return InvalidFieldError("role", "must be ADMIN_ROLE_VIEWER, _OPERATOR, _ADMIN or _AUDITOR");
  }
  TP_ASSIGN_OR_RETURN(GeneratedCallerKey key, GenerateKeyWithPrefix(kAdminTokenPrefix));
  const absl::Time now = clock_.Now();
  TP_RETURN_IF_ERROR(
      InsertAdmin(name, role, key.sha256_hex, key.display_prefix, actor, now, /*audit=*/true));
  a::CreateAdminTokenResponse out;
  a::AdminToken* t = out.mutable_admin_token();
  t->set_name(name);
  t->set_role(role);
  t->set_display_prefix(key.display_prefix);
  t->set_created_by(actor);
  *t->mutable_create_time() = ToTimestamp(now);
  out.set_token(std::move(key.key));
  return out;
}

absl::StatusOr<a::CreateNodeTokenResponse> IdentityStore::CreateNodeToken(
    const std::string& name, const std::string& node_id,
    const std::vector<std::string>& capabilities, const std::string& actor) {
  TP_RETURN_IF_ERROR(CheckName("name", name));
  if (node_id.empty() || node_id.size() > 256) {
    return InvalidFieldError("node_id", "must be 1-256 characters");
  }
  TP_ASSIGN_OR_RETURN(GeneratedCallerKey key, GenerateKeyWithPrefix(kNodeTokenPrefix));
  const absl::Time now = clock_.Now();
  std::vector<std::string> caps;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement exists,
                        db.Prepare("SELECT 1 FROM node_tokens WHERE name = ?"));
    exists.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool found, exists.Step());
    if (found) return Exists("node token", name);
    TP_ASSIGN_OR_RETURN(caps, CheckNodeCapabilities(db, capabilities, "capabilities"));
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare("INSERT INTO node_tokens (name, node_id, sha256_hex, "
                                   "display_prefix, created_by, create_time, capabilities) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    st.Bind(1, name)
        .Bind(2, node_id)
        .Bind(3, key.sha256_hex)
        .Bind(4, key.display_prefix)
        .Bind(5, actor)
        .Bind(6, absl::ToUnixMicros(now))
        .Bind(7, absl::StrJoin(caps, ","));
    TP_RETURN_IF_ERROR(st.Run());
    a::NodeToken after;
    after.set_name(name);
    after.set_node_id(node_id);
    for (const std::string& c : caps) after.add_capabilities(c);
    after.set_display_prefix(key.display_prefix);
    after.set_created_by(actor);
    *after.mutable_create_time() = ToTimestamp(now);
    return AuditAdminChange(db, now, actor, "CreateNodeToken", "node_token", name, nullptr, &after);
  }));
  {
    absl::MutexLock lock(&mu_);
    Identity id;
    id.kind = Identity::Kind::kNode;
    id.name = name;
    id.node_id = node_id;
    id.display_prefix = key.display_prefix;
    id.capabilities = caps;
    valid_[key.sha256_hex] = std::move(id);
  }
  a::CreateNodeTokenResponse out;
  a::NodeToken* t = out.mutable_node_token();
  t->set_name(name);
  t->set_node_id(node_id);
  for (const std::string& c : caps) t->add_capabilities(c);
  t->set_display_prefix(key.display_prefix);
  t->set_created_by(actor);
  *t->mutable_create_time() = ToTimestamp(now);
  out.set_token(std::move(key.key));
  return out;
}

absl::StatusOr<std::vector<a::AdminToken>> IdentityStore::ListAdminTokens() const {
  std::vector<a::AdminToken> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare(absl::StrCat(kAdminColumns, " ORDER BY name")));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(AdminRow(st));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<a::NodeToken>> IdentityStore::ListNodeTokens() const {
  std::vector<a::NodeToken> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare(absl::StrCat(kNodeColumns, " ORDER BY name")));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(NodeRow(st));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<a::AdminToken> IdentityStore::RevokeAdminToken(const std::string& name,
                                                              const std::string& actor) {
  {
    // Revoking the last valid admin-role token would lock everyone out of token management.
    absl::MutexLock lock(&mu_);
    int admins = 0;
    bool target_is_admin = false;
    for (const auto& [digest, id] : valid_) {
      if (id.kind != Identity::Kind::kAdmin || id.role != a::ADMIN_ROLE_ADMIN) continue;
      ++admins;
      target_is_admin = target_is_admin || id.name == name;
    }
    if (target_is_admin && admins == 1) {
      return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                             absl::StrCat("admin token \"", name,
                                          "\" is the last valid token with role admin; create "
                                          "another admin token first"),
                             "LAST_ADMIN_TOKEN");
    }
  }
  a::AdminToken out;
  std::string digest;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    return RevokeRow(db, "admin_tokens", "role", "", "admin token", name, actor, clock_.Now(),
                     "RevokeAdminToken", "admin_token", AdminRow, &out, &digest);
  }));
  absl::MutexLock lock(&mu_);
  valid_.erase(digest);
  return out;
}

absl::StatusOr<a::NodeToken> IdentityStore::RevokeNodeToken(const std::string& name,
                                                            const std::string& actor) {
  a::NodeToken out;
  std::string digest;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    return RevokeRow(db, "node_tokens", "node_id", "capabilities", "node token", name, actor,
                     clock_.Now(), "RevokeNodeToken", "node_token", NodeRow, &out, &digest);
  }));
  absl::MutexLock lock(&mu_);
  valid_.erase(digest);
  return out;
}

}  // namespace turnpike::controlplane
