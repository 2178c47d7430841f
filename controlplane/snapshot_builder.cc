#include "controlplane/snapshot_builder.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/config_tables.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

template <class Spec, class AddFn>
absl::Status ReadAll(SqliteDb& db, const SpecTable& table, AddFn add) {
  TP_ASSIGN_OR_RETURN(std::vector<SpecRow> rows, ListSpecRows(db, table, "", 0));
  for (const SpecRow& row : rows) {
    Spec spec;
    TP_RETURN_IF_ERROR(FromJson(row.spec_json, &spec));
    TP_RETURN_IF_ERROR(add(std::move(spec)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<config::v1::Snapshot> BuildSnapshot(SqliteDb& db, const SecretBox& box) {
  config::v1::Snapshot snap;
  TP_ASSIGN_OR_RETURN(ConfigVersion version, ReadConfigVersion(db));
  snap.set_version(absl::StrCat(version.version));

  TP_RETURN_IF_ERROR(ReadAll<config::v1::Provider>(
      db, kProvidersTable, [&](config::v1::Provider p) -> absl::Status {
        if (!p.credential().empty()) {
          TP_ASSIGN_OR_RETURN(std::vector<CredentialVersionRow> versions,
                              ListCredentialVersions(db, p.credential()));
          const CredentialVersionRow* active = nullptr;
          for (const auto& v : versions) {
            if (v.state == VersionState::kActive) active = &v;
          }
          if (active == nullptr || !active->sealed.has_value()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "provider ", p.name(), ": credential ", p.credential(), " has no active version"));
          }
          TP_ASSIGN_OR_RETURN(std::string key,
                              box.Open(*active->sealed, p.credential(), active->version));
          p.set_api_key(std::move(key));
          p.set_credential_version(active->version);
        }
        *snap.add_providers() = std::move(p);
        return absl::OkStatus();
      }));
  TP_RETURN_IF_ERROR(ReadAll<config::v1::Route>(db, kRoutesTable, [&](config::v1::Route r) {
    *snap.add_routes() = std::move(r);
    return absl::OkStatus();
  }));
  TP_RETURN_IF_ERROR(
      ReadAll<config::v1::Caller>(db, kCallersTable, [&](config::v1::Caller c) -> absl::Status {
        c.clear_key_sha256();
        c.clear_keys();
        TP_ASSIGN_OR_RETURN(std::vector<CallerKeyRow> keys, ListCallerKeys(db, c.name()));
        for (const auto& k : keys) {
          if (k.revoke_time.has_value()) continue;
          // Expired keys stay in the snapshot, so the gateway can say "expired" rather than
          // "invalid"; it refuses them from their expire_time on, to the second.
          c.add_key_sha256(k.sha256);
          config::v1::CallerKey* key = c.add_keys();
          key->set_key_sha256(k.sha256);
          key->set_key_id(k.key_id);
          if (k.expire_time.has_value()) {
            key->set_expire_unix_seconds(absl::ToUnixSeconds(*k.expire_time));
          }
        }
        *snap.add_callers() = std::move(c);
        return absl::OkStatus();
      }));
  TP_RETURN_IF_ERROR(ReadAll<config::v1::Price>(db, kPricesTable, [&](config::v1::Price p) {
    *snap.add_prices() = std::move(p);
    return absl::OkStatus();
  }));
  TP_RETURN_IF_ERROR(
      ReadAll<config::v1::RateLimit>(db, kRateLimitsTable, [&](config::v1::RateLimit r) {
        *snap.add_rate_limits() = std::move(r);
        return absl::OkStatus();
      }));
  TP_RETURN_IF_ERROR(ReadAll<config::v1::Budget>(db, kBudgetsTable, [&](config::v1::Budget b) {
    *snap.add_budgets() = std::move(b);
    return absl::OkStatus();
  }));
  TP_RETURN_IF_ERROR(CheckSnapshotConsistency(snap));
  return snap;
}

}  // namespace turnpike::controlplane
