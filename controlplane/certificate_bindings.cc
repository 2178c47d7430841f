#include "controlplane/certificate_bindings.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/cert_san.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/admin_audit.h"
#include "controlplane/identity_store.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::admin::v1;

constexpr char kColumns[] =
    "SELECT san, name, role, node_id, created_by, create_time, capabilities FROM cert_bindings";

a::CertificateBinding Row(const SqliteStatement& st) {
  a::CertificateBinding b;
  b.set_san(st.ColumnText(0));
  b.set_name(st.ColumnText(1));
  if (!st.ColumnIsNull(2)) b.set_role(AdminRoleFromName(st.ColumnText(2)));
  if (!st.ColumnIsNull(3)) b.set_node_id(st.ColumnText(3));
  b.set_created_by(st.ColumnText(4));
  *b.mutable_create_time() = ToTimestamp(absl::FromUnixMicros(st.ColumnInt(5)));
  for (std::string& c : SplitCapabilities(st.ColumnText(6))) b.add_capabilities(std::move(c));
  return b;
}

absl::Status Check(const a::CertificateBinding& b) {
  if (!IsValidCertSan(b.san())) return InvalidFieldError("binding.san", kCertSanForm);
  bool name_ok = !b.name().empty() && b.name().size() <= 128;
  for (unsigned char ch : b.name()) name_ok = name_ok && ch > 0x20 && ch < 0x7f;
  if (!name_ok) {
    return InvalidFieldError("binding.name", "must be 1-128 printable ASCII characters, no spaces");
  }
  const bool admin = b.role() != a::ADMIN_ROLE_UNSPECIFIED;
  if (admin == !b.node_id().empty()) {
    return InvalidFieldError("binding",
                             "set exactly one of role (an admin identity) and node_id (a gateway)");
  }
  if (admin && b.capabilities_size() > 0) {
    return InvalidFieldError("binding.capabilities",
                             "restricts a gateway only; leave it empty for an admin identity");
  }
  if (admin && AdminRoleName(b.role()).empty()) {
    return InvalidFieldError("binding.role",
                             "must be ADMIN_ROLE_VIEWER, _OPERATOR, _ADMIN or _AUDITOR");
  }
  if (b.node_id().size() > 256)
    return InvalidFieldError("binding.node_id", "must be 1-256 characters");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateBindings>> CertificateBindings::Open(Store& store,
                                                                               Clock& clock) {
  std::unique_ptr<CertificateBindings> c(new CertificateBindings(store, clock));
  TP_RETURN_IF_ERROR(c->Load());
  return c;
}

absl::Status CertificateBindings::Load() {
  TP_ASSIGN_OR_RETURN(std::vector<a::CertificateBinding> all, List());
  absl::MutexLock lock(&mu_);
  by_san_.clear();
  for (a::CertificateBinding& b : all) {
    std::string san = b.san();
    by_san_.emplace(std::move(san), std::move(b));
  }
  return absl::OkStatus();
}

std::optional<a::CertificateBinding> CertificateBindings::Lookup(std::string_view san) const {
  absl::MutexLock lock(&mu_);
  auto it = by_san_.find(absl::string_view(san.data(), san.size()));
  if (it == by_san_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<a::CertificateBinding> CertificateBindings::Bind(const a::CertificateBinding& in,
                                                                const std::string& actor) {
  TP_RETURN_IF_ERROR(Check(in));
  a::CertificateBinding b;
  b.set_san(in.san());
  b.set_name(in.name());
  b.set_role(in.role());
  b.set_node_id(in.node_id());
  b.set_created_by(actor);
  const absl::Time now = clock_.Now();
  *b.mutable_create_time() = ToTimestamp(now);
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement exists,
                        db.Prepare("SELECT 1 FROM cert_bindings WHERE san = ?"));
    exists.Bind(1, b.san());
    TP_ASSIGN_OR_RETURN(bool found, exists.Step());
    if (found) {
      return ErrorWithReason(
          absl::StatusCode::kAlreadyExists,
          absl::StrCat("certificate SAN \"", b.san(), "\" is bound already; unbind it first"),
          "ALREADY_EXISTS");
    }
    TP_ASSIGN_OR_RETURN(
        std::vector<std::string> caps,
        CheckNodeCapabilities(db, {in.capabilities().begin(), in.capabilities().end()},
                              "binding.capabilities"));
    b.clear_capabilities();
    for (const std::string& c : caps) b.add_capabilities(c);
    TP_ASSIGN_OR_RETURN(SqliteStatement st,
                        db.Prepare("INSERT INTO cert_bindings (san, name, role, node_id, "
                                   "created_by, create_time, capabilities) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    st.Bind(1, b.san()).Bind(2, b.name());
    if (b.node_id().empty()) {
      st.Bind(3, AdminRoleName(b.role())).BindNull(4);
    } else {
      st.BindNull(3).Bind(4, b.node_id());
    }
    st.Bind(5, actor).Bind(6, absl::ToUnixMicros(now)).Bind(7, absl::StrJoin(caps, ","));
    TP_RETURN_IF_ERROR(st.Run());
    return AuditAdminChange(db, now, actor, "BindCertificate", "certificate_binding", b.san(),
                            nullptr, &b);
  }));
  absl::MutexLock lock(&mu_);
  by_san_[b.san()] = b;
  return b;
}

absl::StatusOr<std::vector<a::CertificateBinding>> CertificateBindings::List() const {
  std::vector<a::CertificateBinding> out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st, db.Prepare(absl::StrCat(kColumns, " ORDER BY san")));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(Row(st));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<a::CertificateBinding> CertificateBindings::Unbind(const std::string& san,
                                                                  const std::string& actor) {
  a::CertificateBinding before;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement st, db.Prepare(absl::StrCat(kColumns, " WHERE san = ?")));
    st.Bind(1, san);
    TP_ASSIGN_OR_RETURN(bool found, st.Step());
    if (!found) {
      return ErrorWithReason(absl::StatusCode::kNotFound,
                             absl::StrCat("certificate SAN \"", san, "\" is not bound"),
                             "NOT_FOUND");
    }
    before = Row(st);
    TP_ASSIGN_OR_RETURN(SqliteStatement del, db.Prepare("DELETE FROM cert_bindings WHERE san = ?"));
    del.Bind(1, san);
    TP_RETURN_IF_ERROR(del.Run());
    return AuditAdminChange(db, clock_.Now(), actor, "UnbindCertificate", "certificate_binding",
                            san, &before, nullptr);
  }));
  absl::MutexLock lock(&mu_);
  by_san_.erase(san);
  return before;
}

}  // namespace turnpike::controlplane
