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

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  };
  using PublishFn = std::function<void(std::shared_ptr<const config::v1::Snapshot>)>;

  // Checks the master key against the one the database was sealed with, builds the current
  // snapshot and publishes it. FAILED_PRECONDITION if the master key is wrong or stored
  // credentials cannot be opened.
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
  // `key_id` empty picks a random id.
  absl::StatusOr<admin::v1::CreateCallerKeyResponse> CreateCallerKey(const std::string& caller,
                                                                     const std::string& key_id,
                                                                     const std::string& actor);
  absl::StatusOr<admin::v1::CallerKey> RevokeCallerKey(const std::string& caller,
                                                       const std::string& key_id,
                                                       const std::string& actor);

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

  // Constant after construction.
  Store& store_;
  const SecretBox& box_;
  Clock& clock_;
  const PublishFn publish_;
  const Options options_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CONFIG_ADMIN_H_
