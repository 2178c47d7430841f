#include "controlplane/config_admin.h"

#include <set>

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/proto_util.h"
#include "controlplane/snapshot_builder.h"
#include "controlplane/validation.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace turnpike::controlplane {
namespace {

using google::protobuf::util::FieldMaskUtil;

absl::Status NotFound(const char* type, const std::string& key) {
  return ErrorWithReason(absl::StatusCode::kNotFound,
                         absl::StrCat(type, " \"", key, "\" does not exist"), "NOT_FOUND");
}

absl::Status RevisionMismatch(const char* type, const std::string& key, int64_t stored,
                              int64_t given) {
  return ErrorWithReason(
      absl::StatusCode::kAborted,
      absl::StrCat(type, " \"", key, "\" is at revision ", stored, ", the request says ", given,
                   "; read it again and reapply the change"),
      "REVISION_MISMATCH");
}

absl::Status MissingReference(const std::string& field, const std::string& what) {
  Violations v;
  v.Add(field, absl::StrCat(what, " does not exist; create it first"));
  absl::Status s = v.ToStatus(absl::StatusCode::kFailedPrecondition);
  AttachReason(s, "REFERENCE_NOT_FOUND");
  return s;
}

absl::Status InUse(const char* type, const std::string& key, const std::string& users) {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                         absl::StrCat(type, " \"", key, "\" is still used by ", users,
                                      "; change or delete those first"),
                         "RESOURCE_IN_USE");
}

// A certificate SAN names at most one caller: INVALID_ARGUMENT naming the field and the other
// caller (callers are few; reading them all in the write transaction is cheap).
absl::Status CheckCertSansFree(SqliteDb& db, const config::v1::Caller& caller) {
  if (caller.cert_sans_size() == 0) return absl::OkStatus();
  TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows,
                      ListSpecRows(db, kCallersTable, "", std::numeric_limits<int>::max()));
  Violations v;
  for (const SpecRow& row : rows) {
    if (row.name == caller.name()) continue;
    config::v1::Caller other;
    TP_RETURN_IF_ERROR(FromJson(row.spec_json, &other));
    for (int i = 0; i < caller.cert_sans_size(); ++i) {
      for (const std::string& san : other.cert_sans()) {
        if (san == caller.cert_sans(i)) {
          v.Add(absl::StrCat("caller.spec.cert_sans[", i, "]"),
                absl::StrCat("already identifies caller \"", other.name(), "\""));
        }
      }
    }
  }
  return v.ToStatus();
}

template <class R>
struct Traits;

template <>
struct Traits<admin::v1::Provider> {
  using Spec = config::v1::Provider;
  static constexpr const SpecTable& kTable = kProvidersTable;
  static constexpr char kType[] = "provider";
  static constexpr char kField[] = "provider";
  static constexpr char kKeyField[] = "spec.name";
  static std::string Key(const Spec& s) { return s.name(); }
  static void Normalize(Spec&) {}
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidateProvider(s, path, SpecMode::kAdmin, v);
  }
  static std::optional<std::string> Ref(const Spec& s) {
    if (s.credential().empty()) return std::nullopt;
    return s.credential();
  }
  static absl::Status CheckRefs(SqliteDb& db, const Spec& s) {
    if (s.credential().empty()) return absl::OkStatus();
    TP_ASSIGN_OR_RETURN(auto cred, GetCredentialRow(db, s.credential()));
    if (!cred.has_value()) {
      return MissingReference("provider.spec.credential",
                              absl::StrCat("credential \"", s.credential(), "\""));
    }
    return absl::OkStatus();
  }
  static absl::Status AfterWrite(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status CheckDeletable(SqliteDb& db, const std::string& key) {
    TP_ASSIGN_OR_RETURN(std::vector<std::string> routes, RoutesUsingProvider(db, key));
    TP_ASSIGN_OR_RETURN(std::vector<std::string> prices, PricesOfProvider(db, key));
    std::vector<std::string> users;
    if (!routes.empty()) users.push_back(absl::StrCat("routes ", absl::StrJoin(routes, ", ")));
    if (!prices.empty()) users.push_back(absl::StrCat("prices ", absl::StrJoin(prices, ", ")));
    if (!users.empty()) return InUse(kType, key, absl::StrJoin(users, " and "));
    return absl::OkStatus();
  }
  static absl::Status Decorate(SqliteDb&, admin::v1::Provider&) { return absl::OkStatus(); }
};

template <>
struct Traits<admin::v1::Route> {
  using Spec = config::v1::Route;
  static constexpr const SpecTable& kTable = kRoutesTable;
  static constexpr char kType[] = "route";
  static constexpr char kField[] = "route";
  static constexpr char kKeyField[] = "spec.capability";
  static std::string Key(const Spec& s) { return s.capability(); }
  static void Normalize(Spec&) {}
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidateRoute(s, path, SpecMode::kAdmin, v);
  }
  static std::optional<std::string> Ref(const Spec&) { return std::nullopt; }
  // Every target of every chain (the route's own, its tier chains and variants) names a provider,
  // and every tier chain a tier some caller has (docs/routing.md).
  static absl::Status CheckRefs(SqliteDb& db, const Spec& s) {
    for (const auto& [field, target] : AllRouteTargets(s, "route.spec")) {
      TP_ASSIGN_OR_RETURN(auto p, GetSpecRow(db, kProvidersTable, target->provider()));
      if (!p.has_value()) {
        return MissingReference(absl::StrCat(field, ".provider"),
                                absl::StrCat("provider \"", target->provider(), "\""));
      }
    }
    if (s.tier_chains_size() > 0) {
      TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows, ListSpecRows(db, kCallersTable, "", 0));
      std::set<std::string> tiers;
      for (const SpecRow& row : rows) {
        config::v1::Caller c;
        TP_RETURN_IF_ERROR(FromJson(row.spec_json, &c));
        tiers.insert(c.tier());
      }
      for (int i = 0; i < s.tier_chains_size(); ++i) {
        if (tiers.count(s.tier_chains(i).tier()) == 0) {
          return MissingReference(
              absl::StrCat("route.spec.tier_chains[", i, "].tier"),
              absl::StrCat("a caller of tier \"", s.tier_chains(i).tier(), "\""));
        }
      }
    }
    return absl::OkStatus();
  }
  static absl::Status AfterWrite(SqliteDb& db, const Spec& s) {
    std::vector<RouteTargetRow> targets;
    for (const auto& [field, t] : AllRouteTargets(s, "route.spec")) {
      targets.push_back({t->provider(), t->model()});
    }
    return ReplaceRouteTargets(db, s.capability(), targets);
  }
  // A budget that degrades to this route keeps it.
  static absl::Status CheckDeletable(SqliteDb& db, const std::string& key) {
    TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows, ListSpecRows(db, kBudgetsTable, "", 0));
    std::vector<std::string> users;
    for (const SpecRow& row : rows) {
      config::v1::Budget b;
      TP_RETURN_IF_ERROR(FromJson(row.spec_json, &b));
      if (b.degrade_to() == key) users.push_back(row.name);
    }
    if (!users.empty()) {
      return InUse(kType, key,
                   absl::StrCat("budgets ", absl::StrJoin(users, ", "), " (degrade_to)"));
    }
    return absl::OkStatus();
  }
  static absl::Status Decorate(SqliteDb&, admin::v1::Route&) { return absl::OkStatus(); }
};

template <>
struct Traits<admin::v1::Caller> {
  using Spec = config::v1::Caller;
  static constexpr const SpecTable& kTable = kCallersTable;
  static constexpr char kType[] = "caller";
  static constexpr char kField[] = "caller";
  static constexpr char kKeyField[] = "spec.name";
  static std::string Key(const Spec& s) { return s.name(); }
  static void Normalize(Spec& s) {
    if (s.tier().empty()) s.set_tier("standard");
  }
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidateCaller(s, path, SpecMode::kAdmin, v);
  }
  static std::optional<std::string> Ref(const Spec&) { return std::nullopt; }
  static absl::Status CheckRefs(SqliteDb& db, const Spec& s) { return CheckCertSansFree(db, s); }
  static absl::Status AfterWrite(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status CheckDeletable(SqliteDb&, const std::string&) { return absl::OkStatus(); }
  static absl::Status Decorate(SqliteDb& db, admin::v1::Caller& c) {
    TP_ASSIGN_OR_RETURN(std::vector<CallerKeyRow> keys, ListCallerKeys(db, c.spec().name()));
    c.clear_keys();
    for (const auto& k : keys) *c.add_keys() = CallerKeyToProto(k);
    return absl::OkStatus();
  }
};

template <>
struct Traits<admin::v1::Price> {
  using Spec = config::v1::Price;
  static constexpr const SpecTable& kTable = kPricesTable;
  static constexpr char kType[] = "price";
  static constexpr char kField[] = "price";
  static constexpr char kKeyField[] = "spec.provider";
  static std::string Key(const Spec& s) { return absl::StrCat(s.provider(), "/", s.model()); }
  static void Normalize(Spec&) {}
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidatePrice(s, path, v);
  }
  static std::optional<std::string> Ref(const Spec& s) { return s.provider(); }
  static absl::Status CheckRefs(SqliteDb& db, const Spec& s) {
    TP_ASSIGN_OR_RETURN(auto p, GetSpecRow(db, kProvidersTable, s.provider()));
    if (!p.has_value()) {
      return MissingReference("price.spec.provider",
                              absl::StrCat("provider \"", s.provider(), "\""));
    }
    return absl::OkStatus();
  }
  static absl::Status AfterWrite(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status CheckDeletable(SqliteDb&, const std::string&) { return absl::OkStatus(); }
  static absl::Status Decorate(SqliteDb&, admin::v1::Price&) { return absl::OkStatus(); }
};

template <>
struct Traits<admin::v1::RateLimit> {
  using Spec = config::v1::RateLimit;
  static constexpr const SpecTable& kTable = kRateLimitsTable;
  static constexpr char kType[] = "rate_limit";
  static constexpr char kField[] = "rate_limit";
  static constexpr char kKeyField[] = "spec.name";
  static std::string Key(const Spec& s) { return s.name(); }
  static void Normalize(Spec&) {}
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidateRateLimit(s, path, SpecMode::kAdmin, v);
  }
  static std::optional<std::string> Ref(const Spec&) { return std::nullopt; }
  static absl::Status CheckRefs(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status AfterWrite(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status CheckDeletable(SqliteDb&, const std::string&) { return absl::OkStatus(); }
  static absl::Status Decorate(SqliteDb&, admin::v1::RateLimit&) { return absl::OkStatus(); }
};

template <>
struct Traits<admin::v1::Budget> {
  using Spec = config::v1::Budget;
  static constexpr const SpecTable& kTable = kBudgetsTable;
  static constexpr char kType[] = "budget";
  static constexpr char kField[] = "budget";
  static constexpr char kKeyField[] = "spec.name";
  static std::string Key(const Spec& s) { return s.name(); }
  static void Normalize(Spec&) {}
  static void Validate(const Spec& s, const std::string& path, Violations& v) {
    ValidateBudget(s, path, SpecMode::kAdmin, v);
  }
  static std::optional<std::string> Ref(const Spec&) { return std::nullopt; }
  static absl::Status CheckRefs(SqliteDb& db, const Spec& s) {
    if (s.degrade_to().empty()) return absl::OkStatus();
    TP_ASSIGN_OR_RETURN(auto route, GetSpecRow(db, kRoutesTable, s.degrade_to()));
    if (!route.has_value()) {
      return MissingReference("budget.spec.degrade_to",
                              absl::StrCat("route \"", s.degrade_to(), "\""));
    }
    return absl::OkStatus();
  }
  static absl::Status AfterWrite(SqliteDb&, const Spec&) { return absl::OkStatus(); }
  static absl::Status CheckDeletable(SqliteDb&, const std::string&) { return absl::OkStatus(); }
  static absl::Status Decorate(SqliteDb&, admin::v1::Budget&) { return absl::OkStatus(); }
};

template <class R>
absl::StatusOr<R> FromRow(SqliteDb& db, const SpecRow& row) {
  R r;
  TP_RETURN_IF_ERROR(FromJson(row.spec_json, r.mutable_spec()));
  r.set_revision(row.revision);
  *r.mutable_create_time() = ToTimestamp(row.create_time);
  *r.mutable_update_time() = ToTimestamp(row.update_time);
  TP_RETURN_IF_ERROR(Traits<R>::Decorate(db, r));
  return r;
}

template <class R>
absl::Status ValidateSpec(typename Traits<R>::Spec& spec) {
  using T = Traits<R>;
  T::Normalize(spec);
  Violations v;
  T::Validate(spec, absl::StrCat(T::kField, ".spec"), v);
  return v.ToStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConfigAdmin>> ConfigAdmin::Create(Store& store, const SecretBox& box,
                                                                 Clock& clock, PublishFn publish,
                                                                 Options options) {
  std::unique_ptr<ConfigAdmin> admin(
      new ConfigAdmin(store, box, clock, std::move(publish), options));
  std::shared_ptr<config::v1::Snapshot> snapshot;
  TP_RETURN_IF_ERROR(store.Write([&](SqliteDb& db) -> absl::Status {
    TP_RETURN_IF_ERROR(CheckSealedSecrets(db, box, store.path()));
    TP_ASSIGN_OR_RETURN(config::v1::Snapshot s, BuildSnapshot(db, box));
    snapshot = std::make_shared<config::v1::Snapshot>(std::move(s));
    return absl::OkStatus();
  }));
  if (admin->publish_) admin->publish_(std::move(snapshot));
  return admin;
}

absl::Status ConfigAdmin::Commit(
    const std::string& actor,
    absl::FunctionRef<absl::Status(SqliteDb&, absl::Time, std::vector<Change>&)> fn) {
  std::shared_ptr<config::v1::Snapshot> snapshot;
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    absl::Time now = clock_.Now();
    std::vector<Change> changes;
    TP_RETURN_IF_ERROR(fn(db, now, changes));
    if (changes.empty()) return absl::OkStatus();
    TP_ASSIGN_OR_RETURN(int64_t version, BumpConfigVersion(db, now));
    for (Change& c : changes) {
      AuditRecord rec;
      rec.time = now;
      rec.actor = actor;
      rec.action = std::move(c.action);
      rec.resource_type = std::move(c.resource_type);
      rec.resource_name = std::move(c.resource_name);
      rec.before_json = std::move(c.before_json);
      rec.after_json = std::move(c.after_json);
      rec.config_version = version;
      TP_RETURN_IF_ERROR(AppendAudit(db, rec));
    }
    TP_ASSIGN_OR_RETURN(config::v1::Snapshot s, BuildSnapshot(db, box_));
    snapshot = std::make_shared<config::v1::Snapshot>(std::move(s));
    return absl::OkStatus();
  }));
  if (snapshot != nullptr && publish_) publish_(std::move(snapshot));
  return absl::OkStatus();
}

template <class R>
absl::StatusOr<R> ConfigAdmin::CreateResource(const R& resource, const std::string& actor) {
  using T = Traits<R>;
  typename T::Spec spec = resource.spec();
  TP_RETURN_IF_ERROR(ValidateSpec<R>(spec));
  const std::string key = T::Key(spec);
  R out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<SpecRow> existing, GetSpecRow(db, T::kTable, key));
        if (existing.has_value()) {
          return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                                 absl::StrCat(T::kType, " \"", key, "\" already exists"),
                                 "ALREADY_EXISTS");
        }
        TP_RETURN_IF_ERROR(T::CheckRefs(db, spec));
        SpecRow row{key, ToJson(spec), 1, now, now, T::Ref(spec)};
        TP_RETURN_IF_ERROR(InsertSpecRow(db, T::kTable, row));
        TP_RETURN_IF_ERROR(T::AfterWrite(db, spec));
        TP_ASSIGN_OR_RETURN(out, FromRow<R>(db, row));
        changes.push_back(
            {absl::StrCat("Create", R::descriptor()->name()), T::kType, key, "", ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

template <class R>
absl::StatusOr<R> ConfigAdmin::GetResource(const std::string& key) {
  using T = Traits<R>;
  R out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, T::kTable, key));
    if (!row.has_value()) return NotFound(T::kType, key);
    TP_ASSIGN_OR_RETURN(out, FromRow<R>(db, *row));
    return absl::OkStatus();
  }));
  return out;
}

template <class R>
absl::StatusOr<ConfigAdmin::Page<R>> ConfigAdmin::ListResources(int page_size,
                                                                const std::string& page_token) {
  using T = Traits<R>;
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  Page<R> page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows, ListSpecRows(db, T::kTable, after, limit + 1));
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
      TP_ASSIGN_OR_RETURN(R r, FromRow<R>(db, rows[i]));
      page.items.push_back(std::move(r));
    }
    if (rows.size() > static_cast<size_t>(limit)) {
      page.next_page_token = EncodePageToken(rows[limit - 1].name);
    }
    return absl::OkStatus();
  }));
  return page;
}

template <class R>
absl::StatusOr<R> ConfigAdmin::UpdateResource(const R& resource,
                                              const google::protobuf::FieldMask& mask,
                                              const std::string& actor) {
  using T = Traits<R>;
  const std::string key = T::Key(resource.spec());
  {
    Violations v;
    if (key.empty() || key == "/") {
      v.Add(absl::StrCat(T::kField, ".", T::kKeyField), "is required to identify the resource");
    }
    for (const std::string& path : mask.paths()) {
      if ((path != "spec" && !absl::StartsWith(path, "spec.")) ||
          !FieldMaskUtil::GetFieldDescriptors(R::descriptor(), path, nullptr)) {
        v.Add("update_mask", absl::StrCat("\"", path, "\" is not a field under spec"));
      }
    }
    TP_RETURN_IF_ERROR(v.ToStatus());
  }
  R out;
  TP_RETURN_IF_ERROR(Commit(
      actor, [&](SqliteDb& db, absl::Time now, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, T::kTable, key));
        if (!row.has_value()) return NotFound(T::kType, key);
        if (resource.revision() != 0 && resource.revision() != row->revision) {
          return RevisionMismatch(T::kType, key, row->revision, resource.revision());
        }
        TP_ASSIGN_OR_RETURN(R before, FromRow<R>(db, *row));
        typename T::Spec spec;
        if (mask.paths().empty()) {
          spec = resource.spec();
        } else {
          R merged = before;
          FieldMaskUtil::MergeOptions opts;
          opts.set_replace_message_fields(true);
          opts.set_replace_repeated_fields(true);
          FieldMaskUtil::MergeMessageTo(resource, mask, opts, &merged);
          spec = merged.spec();
        }
        if (T::Key(spec) != key) {
          Violations v;
          v.Add(absl::StrCat(T::kField, ".", T::kKeyField),
                "cannot be changed; create a new resource and delete this one");
          return v.ToStatus();
        }
        TP_RETURN_IF_ERROR(ValidateSpec<R>(spec));
        TP_RETURN_IF_ERROR(T::CheckRefs(db, spec));
        SpecRow updated{key, ToJson(spec), row->revision + 1, row->create_time, now, T::Ref(spec)};
        TP_RETURN_IF_ERROR(UpdateSpecRow(db, T::kTable, updated));
        TP_RETURN_IF_ERROR(T::AfterWrite(db, spec));
        TP_ASSIGN_OR_RETURN(out, FromRow<R>(db, updated));
        changes.push_back({absl::StrCat("Update", R::descriptor()->name()), T::kType, key,
                           ToJson(before), ToJson(out)});
        return absl::OkStatus();
      }));
  return out;
}

template <class R>
absl::Status ConfigAdmin::DeleteResource(const std::string& key, int64_t revision,
                                         const std::string& actor) {
  using T = Traits<R>;
  return Commit(actor, [&](SqliteDb& db, absl::Time, std::vector<Change>& changes) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<SpecRow> row, GetSpecRow(db, T::kTable, key));
    if (!row.has_value()) return NotFound(T::kType, key);
    if (revision != 0 && revision != row->revision) {
      return RevisionMismatch(T::kType, key, row->revision, revision);
    }
    TP_RETURN_IF_ERROR(T::CheckDeletable(db, key));
    TP_ASSIGN_OR_RETURN(R before, FromRow<R>(db, *row));
    TP_RETURN_IF_ERROR(DeleteSpecRow(db, T::kTable, key));
    changes.push_back(
        {absl::StrCat("Delete", R::descriptor()->name()), T::kType, key, ToJson(before), ""});
    return absl::OkStatus();
  });
}

absl::StatusOr<ConfigVersion> ConfigAdmin::GetConfigVersion() {
  ConfigVersion out;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(out, ReadConfigVersion(db));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ConfigAdmin::Page<admin::v1::AuditEntry>> ConfigAdmin::ListAuditEntries(
    int page_size, const std::string& page_token) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  int64_t before_seq = 0;
  if (!after.empty() && !absl::SimpleAtoi(after, &before_seq)) {
    Violations v;
    v.Add("page_token", "is not a token returned by ListAuditEntries");
    return v.ToStatus();
  }
  Page<admin::v1::AuditEntry> page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::vector<AuditRecord> rows, ListAudit(db, before_seq, limit + 1));
    for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
      const AuditRecord& r = rows[i];
      admin::v1::AuditEntry e;
      e.set_sequence(r.sequence);
      *e.mutable_time() = ToTimestamp(r.time);
      e.set_actor(r.actor);
      e.set_action(r.action);
      e.set_resource_type(r.resource_type);
      e.set_resource_name(r.resource_name);
      e.set_before_json(r.before_json);
      e.set_after_json(r.after_json);
      e.set_config_version(absl::StrCat(r.config_version));
      page.items.push_back(std::move(e));
    }
    if (rows.size() > static_cast<size_t>(limit)) {
      page.next_page_token = EncodePageToken(absl::StrCat(rows[limit - 1].sequence));
    }
    return absl::OkStatus();
  }));
  return page;
}

#define TP_INSTANTIATE_RESOURCE(R)                                                                 \
  template absl::StatusOr<R> ConfigAdmin::CreateResource<R>(const R&, const std::string&);         \
  template absl::StatusOr<R> ConfigAdmin::GetResource<R>(const std::string&);                      \
  template absl::StatusOr<ConfigAdmin::Page<R>> ConfigAdmin::ListResources<R>(int,                 \
                                                                              const std::string&); \
  template absl::StatusOr<R> ConfigAdmin::UpdateResource<R>(                                       \
      const R&, const google::protobuf::FieldMask&, const std::string&);                           \
  template absl::Status ConfigAdmin::DeleteResource<R>(const std::string&, int64_t,                \
                                                       const std::string&);

TP_INSTANTIATE_RESOURCE(admin::v1::Provider)
TP_INSTANTIATE_RESOURCE(admin::v1::Route)
TP_INSTANTIATE_RESOURCE(admin::v1::Caller)
TP_INSTANTIATE_RESOURCE(admin::v1::Price)
TP_INSTANTIATE_RESOURCE(admin::v1::RateLimit)
TP_INSTANTIATE_RESOURCE(admin::v1::Budget)
#undef TP_INSTANTIATE_RESOURCE

}  // namespace turnpike::controlplane
