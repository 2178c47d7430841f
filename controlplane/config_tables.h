// Typed access to the control plane's tables (schema in migrations/). Every function runs on a
// connection the caller has already put in a transaction (Store::Write or Store::Read), so a
// sequence of calls is atomic; none of them begins or ends a transaction. Specs are stored as
// proto3 JSON; times as Unix microseconds. Stateless functions; the connection is not
// thread-safe, so callers hold it exclusively (Store guarantees that).
#ifndef TURNPIKE_CONTROLPLANE_CONFIG_TABLES_H_
#define TURNPIKE_CONTROLPLANE_CONFIG_TABLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/sqlite.h"

namespace turnpike::controlplane {

// A table of resources keyed by name with a JSON spec: providers, routes, callers, prices,
// rate_limits, budgets. `ref_column` is an extra column that other tables' foreign keys or this
// table's own foreign key use (providers.credential, prices.provider), or nullptr.
struct SpecTable {
  const char* table;
  const char* ref_column;
};
inline constexpr SpecTable kProvidersTable{"providers", "credential"};
inline constexpr SpecTable kRoutesTable{"routes", nullptr};
inline constexpr SpecTable kCallersTable{"callers", nullptr};
inline constexpr SpecTable kPricesTable{"prices", "provider"};
inline constexpr SpecTable kRateLimitsTable{"rate_limits", nullptr};
inline constexpr SpecTable kBudgetsTable{"budgets", nullptr};

struct SpecRow {
  std::string name;
  std::string spec_json;
  int64_t revision = 0;
  absl::Time create_time;
  absl::Time update_time;
  // Value of the table's ref_column; nullopt stores NULL.
  std::optional<std::string> ref;
};

absl::StatusOr<std::optional<SpecRow>> GetSpecRow(SqliteDb& db, const SpecTable& t,
                                                  const std::string& name);
// Rows with name > `after`, by name, at most `limit` (all if limit <= 0).
absl::StatusOr<std::vector<SpecRow>> ListSpecRows(SqliteDb& db, const SpecTable& t,
                                                  const std::string& after, int limit);
absl::Status InsertSpecRow(SqliteDb& db, const SpecTable& t, const SpecRow& row);
// Updates spec, ref, revision and update_time of the row named row.name.
absl::Status UpdateSpecRow(SqliteDb& db, const SpecTable& t, const SpecRow& row);
absl::Status DeleteSpecRow(SqliteDb& db, const SpecTable& t, const std::string& name);

// Route targets mirror a route's spec so SQLite enforces that they name existing providers.
struct RouteTargetRow {
  std::string provider;
  std::string model;
};
absl::Status ReplaceRouteTargets(SqliteDb& db, const std::string& route,
                                 const std::vector<RouteTargetRow>& targets);

// Names of rows that reference a provider / credential (for FAILED_PRECONDITION messages).
absl::StatusOr<std::vector<std::string>> RoutesUsingProvider(SqliteDb& db,
                                                             const std::string& provider);
absl::StatusOr<std::vector<std::string>> PricesOfProvider(SqliteDb& db,
                                                          const std::string& provider);
absl::StatusOr<std::vector<std::string>> ProvidersUsingCredential(SqliteDb& db,
                                                                  const std::string& credential);

// The config version, bumped by every committed change.
struct ConfigVersion {
  int64_t version = 0;
  absl::Time update_time;
};
absl::StatusOr<ConfigVersion> ReadConfigVersion(SqliteDb& db);
absl::StatusOr<int64_t> BumpConfigVersion(SqliteDb& db, absl::Time now);

struct AuditRecord {
  int64_t sequence = 0;  // assigned on append
  absl::Time time;
  std::string actor;
  std::string action;
  std::string resource_type;
  std::string resource_name;
  std::string before_json;  // empty = none
  std::string after_json;   // empty = none
  int64_t config_version = 0;
};
absl::Status AppendAudit(SqliteDb& db, const AuditRecord& record);
// Records with sequence < before_sequence (all if 0), newest first, at most `limit`.
absl::StatusOr<std::vector<AuditRecord>> ListAudit(SqliteDb& db, int64_t before_sequence,
                                                   int limit);

absl::StatusOr<std::optional<std::string>> GetMeta(SqliteDb& db, const std::string& key);
absl::Status PutMeta(SqliteDb& db, const std::string& key, const std::string& value);
absl::Status DeleteMeta(SqliteDb& db, const std::string& key);

// Credentials.
struct CredentialRow {
  std::string name;
  std::string description;
  int64_t active_version = 0;
  int64_t revision = 0;
  absl::Time create_time;
  absl::Time update_time;
};
enum class VersionState : int64_t { kActive = 1, kPrevious = 2, kRetired = 3 };
struct CredentialVersionRow {
  int64_t version = 0;
  VersionState state = VersionState::kActive;
  std::optional<std::string> sealed;  // nullopt once retired
  std::string fingerprint;
  absl::Time create_time;
  std::optional<absl::Time> retire_time;
};
absl::StatusOr<std::optional<CredentialRow>> GetCredentialRow(SqliteDb& db,
                                                              const std::string& name);
absl::StatusOr<std::vector<CredentialRow>> ListCredentialRows(SqliteDb& db,
                                                              const std::string& after, int limit);
absl::Status InsertCredentialRow(SqliteDb& db, const CredentialRow& row);
absl::Status UpdateCredentialRow(SqliteDb& db, const CredentialRow& row);
absl::Status DeleteCredentialRow(SqliteDb& db, const std::string& name);
// Newest first.
absl::StatusOr<std::vector<CredentialVersionRow>> ListCredentialVersions(SqliteDb& db,
                                                                         const std::string& name);
absl::Status InsertCredentialVersion(SqliteDb& db, const std::string& name,
                                     const CredentialVersionRow& row);
// Sets state and retire_time; retiring also destroys the sealed secret.
absl::Status SetCredentialVersionState(SqliteDb& db, const std::string& name, int64_t version,
                                       VersionState state, std::optional<absl::Time> retire_time);
// A sealed secret of one credential version (master-key checks and rotation).
struct SealedVersion {
  std::string credential;
  int64_t version = 0;
  std::string sealed;
};
// Versions that hold a sealed secret, by credential and version, at most `limit` (all if <= 0);
// with `not_under_key_id` (8 raw bytes) non-empty, only those sealed under another key.
absl::StatusOr<std::vector<SealedVersion>> ListSealedVersions(SqliteDb& db,
                                                              const std::string& not_under_key_id,
                                                              int limit);
// Replaces the sealed secret and fingerprint of one version (a master-key rotation).
absl::Status ResealCredentialVersion(SqliteDb& db, const std::string& credential, int64_t version,
                                     const std::string& sealed, const std::string& fingerprint);
// PREVIOUS versions whose retire_time is at or before `now`: (credential, version).
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> VersionsDueForRetirement(
    SqliteDb& db, absl::Time now);

// Caller keys.
struct CallerKeyRow {
  std::string key_id;
  std::string caller;
  std::string sha256;
  std::string prefix;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
  std::optional<absl::Time> expire_time;     // nullopt: never expires
  std::optional<absl::Time> last_used_time;  // a whole minute; nullopt: never reported used
};
// Newest first; valid and revoked.
absl::StatusOr<std::vector<CallerKeyRow>> ListCallerKeys(SqliteDb& db, const std::string& caller);
absl::Status InsertCallerKey(SqliteDb& db, const CallerKeyRow& row);
absl::Status RevokeCallerKeyRow(SqliteDb& db, const std::string& key_id, absl::Time now);
// Moves the key's last_used_time forward to `minute` (never back). Returns whether it moved; an
// unknown key id changes nothing.
absl::StatusOr<bool> AdvanceCallerKeyLastUsed(SqliteDb& db, const std::string& key_id,
                                              absl::Time minute);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CONFIG_TABLES_H_
