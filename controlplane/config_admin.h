// ConfigAdmin is the control plane's configuration logic, independent of gRPC: validation,
// referential checks, optimistic concurrency, secrets sealing, and the rule that every change is
// one transaction which also bumps the config version, appends an admin-audit row (before/after
// JSON, secrets left out) and rebuilds the snapshot — checked for consistency before the commit,
// so an inconsistent configuration is never stored or published. After each commit the new
// snapshot goes to `publish` (the SnapshotCache), outside the database lock.
//
// Resources with a plain spec (Provider, Route, RateLimit, Budget, Price, Caller) share the
// generic Create/Get/List/Update/Delete templates, instantiated for those admin.v1 types.
// Errors are absl::Status with google.rpc details (see common/status.h). Thread-safe: writes are
// serialised by the Store, reads run concurrently with them.
#ifndef TURNPIKE_CONTROLPLANE_CONFIG_ADMIN_H_
#define TURNPIKE_CONTROLPLANE_CONFIG_ADMIN_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/config_tables.h"
#include "controlplane/secret_box.h"
#include "controlplane/store.h"
#include "google/protobuf/field_mask.pb.h"
#include "turnpike/admin/v1/admin.pb.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

class ConfigAdmin {
 public:
  struct Options {
    // How long a replaced credential version stays valid when RotateCredential names no period.
    absl::Duration default_grace_period = absl::Hours(24);
    // Valid keys a caller may hold at once.
    int max_keys_per_caller = 10;
    // Credential versions re-sealed per transaction by RotateMasterKey.
    int master_key_rotation_batch = 32;
    // Test hook: a wait between two batches of a rotation, so a test can kill the process in
    // the middle of one (--master_key_rotation_test_pause).
    absl::Duration master_key_rotation_pause = absl::ZeroDuration();
    // Told after each committed batch of a rotation (main logs it). Optional.
    std::function<void(int64_t resealed, int64_t remaining)> on_rotation_progress;
  };
  using PublishFn = std::function<void(std::shared_ptr<const config::v1::Snapshot>)>;

  // Checks that every stored credential version opens with the box's keys (the current master
  // key, and the previous one during a rotation), builds the current snapshot and publishes it.
  // FAILED_PRECONDITION naming the key ids if the master key is wrong or stored credentials cannot
  // be opened.
  static absl::StatusOr<std::unique_ptr<ConfigAdmin>> Create(Store& store, const SecretBox& box,
                                                             Clock& clock, PublishFn publish,
                                                             Options options);

  template <class R>
  struct Page {
    std::vector<R> items;
    std::string next_page_token;
  };

  // Generic resources. `key` is the name (for prices "<provider>/<model>").
  template <class R>
  absl::StatusOr<R> CreateResource(const R& resource, const std::string& actor);
  template <class R>
  absl::StatusOr<R> GetResource(const std::string& key);
  template <class R>
  absl::StatusOr<Page<R>> ListResources(int page_size, const std::string& page_token);
  template <class R>
  absl::StatusOr<R> UpdateResource(const R& resource, const google::protobuf::FieldMask& mask,
                                   const std::string& actor);
  template <class R>
  absl::Status DeleteResource(const std::string& key, int64_t revision, const std::string& actor);

  // Credentials (config_admin_credentials.cc).
  absl::StatusOr<admin::v1::Credential> CreateCredential(
      const admin::v1::CreateCredentialRequest& request, const std::string& actor);
  absl::StatusOr<admin::v1::Credential> GetCredential(const std::string& name);
  absl::StatusOr<Page<admin::v1::Credential>> ListCredentials(int page_size,
                                                              const std::string& page_token);
  absl::StatusOr<admin::v1::Credential> UpdateCredential(const admin::v1::Credential& credential,
                                                         const std::string& actor);
  absl::Status DeleteCredential(const std::string& name, int64_t revision,
                                const std::string& actor);
  absl::StatusOr<admin::v1::Credential> RotateCredential(
      const admin::v1::RotateCredentialRequest& request, const std::string& actor);
  absl::StatusOr<admin::v1::Credential> RetireCredentialVersion(
      const admin::v1::RetireCredentialVersionRequest& request, const std::string& actor);
  // Retires every PREVIOUS version whose grace period has ended (actor "system"). Returns how
  // many were retired. Called periodically by the control plane.
  absl::StatusOr<int> RetireExpiredCredentialVersions();

  // Caller keys (config_admin_credentials.cc).
  // An empty key_id picks a random id; the expiry (expire_time or ttl, optional) is kept to the
  // second and must be in the future (INVALID_ARGUMENT naming the field otherwise).
  absl::StatusOr<admin::v1::CreateCallerKeyResponse> CreateCallerKey(
      const admin::v1::CreateCallerKeyRequest& request, const std::string& actor);
  // The same without an expiry.
  absl::StatusOr<admin::v1::CreateCallerKeyResponse> CreateCallerKey(const std::string& caller,
                                                                     const std::string& key_id,
                                                                     const std::string& actor);
  absl::StatusOr<admin::v1::CallerKey> RevokeCallerKey(const std::string& caller,
                                                       const std::string& key_id,
                                                       const std::string& actor);

  // Gateways' reports of when keys were last used (key id -> any time in the minute of use):
  // each key's last_used_time moves forward to that minute, never back; a time ahead of this
  // control plane's clock counts as now; unknown ids are ignored. Not a config change: no
  // version bump, no audit, no push. Returns how many keys moved.
  absl::StatusOr<int> RecordCallerKeyUses(
      const std::vector<std::pair<std::string, absl::Time>>& uses);

  // Master key rotation (config_admin_master_key.cc; docs/security.md). Re-seals every credential
  // version sealed under another key (the previous one) under the box's current key, in batches
  // of options.master_key_rotation_batch, one transaction each: a crash between two batches
  // leaves every version sealed under one of the two keys, both of which the box opens. A marker
  // in the database says a rotation is under way until the last batch is done; then one audited
  // change records it. ABORTED if a rotation is already running in this process.
  absl::StatusOr<admin::v1::RotateMasterKeyResponse> RotateMasterKey(const std::string& actor);
  // Whether a rotation was started and not finished (the process died in the middle): the
  // control plane finishes it at start.
  absl::StatusOr<bool> MasterKeyRotationPending();

  absl::StatusOr<ConfigVersion> GetConfigVersion();
  absl::StatusOr<Page<admin::v1::AuditEntry>> ListAuditEntries(int page_size,
                                                               const std::string& page_token);

  // One audited change inside a commit.
  struct Change {
    std::string action;
    std::string resource_type;
    std::string resource_name;
    std::string before_json;
    std::string after_json;
  };

 private:
  ConfigAdmin(Store& store, const SecretBox& box, Clock& clock, PublishFn publish, Options options)
      : store_(store), box_(box), clock_(clock), publish_(std::move(publish)), options_(options) {}

  // Runs `fn` in a write transaction. If it records changes, bumps the config version, audits
  // each change, rebuilds and checks the snapshot, commits, then publishes. `now` is the
  // transaction's time.
  absl::Status Commit(
      const std::string& actor,
      absl::FunctionRef<absl::Status(SqliteDb&, absl::Time now, std::vector<Change>&)> fn);
  absl::StatusOr<admin::v1::Credential> LoadCredential(SqliteDb& db, const std::string& name);
  // Every sealed version opens with `box`: FAILED_PRECONDITION naming the unknown key ids, or
  // the version that does not open.
  static absl::Status CheckSealedSecrets(SqliteDb& db, const SecretBox& box,
                                         const std::string& path);

  // Constant after construction.
  Store& store_;
  const SecretBox& box_;
  Clock& clock_;
  const PublishFn publish_;
  const Options options_;

  // The last-used minute (Unix seconds) already stored per key id, so a gateway's report that
  // repeats what it said before costs no write transaction.
  // Set for the whole of a master-key rotation (one at a time).
  std::atomic<bool> rotating_{false};

  absl::Mutex key_uses_mu_;
  absl::flat_hash_map<std::string, int64_t> stored_key_use_ ABSL_GUARDED_BY(key_uses_mu_);
};

// The admin view of a caller key (id, prefix, times; never the digest).
admin::v1::CallerKey CallerKeyToProto(const CallerKeyRow& row);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CONFIG_ADMIN_H_
