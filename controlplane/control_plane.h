// ControlPlane assembles the turnpike-control process from its parts: Store (SQLite), SecretBox,
// ConfigAdmin, SnapshotCache, DataPlaneRegistry, IdentityStore and the Authenticator that gates
// every call (controlplane/authenticator.h), the Admin and Watch services, health and
// reflection on one gRPC server, the usage ledger and its service, the lease ledger with the
// budget service and its watch hub (which also sweeps expired leases), the alert engine (rules
// evaluated once here, webhooks delivered) with its service, and a background sweep that
// retires credential versions whose grace period has ended and prunes usage records past their
// retention and closed leases (also once at start), and the audit trail
// (controlplane/audit_trail.h) with its service and a thread that signs checkpoints. main() and
// in-process tests build it the same way. Shutdown() first ends every watch and budget-watch stream
// (gateways reconnect elsewhere or later), then stops the server, letting in-flight admin calls
// finish within the grace period. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_CONTROL_PLANE_H_
#define TURNPIKE_CONTROLPLANE_CONTROL_PLANE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/listen_address.h"
#include "common/server_drain.h"
#include "controlplane/admin_service.h"
#include "controlplane/alerts/alert_engine.h"
#include "controlplane/alerts/alert_notifier.h"
#include "controlplane/alerts/alert_rules.h"
#include "controlplane/alerts/alert_service.h"
#include "controlplane/alerts/alert_signals.h"
#include "controlplane/audit_service.h"
#include "controlplane/audit_trail.h"
#include "controlplane/authenticator.h"
#include "controlplane/budget/budget_service.h"
#include "controlplane/budget/budget_watch_hub.h"
#include "controlplane/budget/lease_ledger.h"
#include "controlplane/config_admin.h"
#include "controlplane/data_plane_registry.h"
#include "controlplane/identity_store.h"
#include "controlplane/secret_box.h"
#include "controlplane/snapshot_cache.h"
#include "controlplane/store.h"
#include "controlplane/usage_ledger.h"
#include "controlplane/usage_service.h"
#include "controlplane/watch_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace turnpike::controlplane {

class ControlPlane {
 public:
  struct Options {
    std::string db_path;
    // host:port; port 0 picks a free port (see port()).
    std::string listen_address = "127.0.0.1:50052";
    // TLS credentials; when null, plaintext for local peers only (gRPC's local credentials:
    // loopback TCP or a unix socket). Never InsecureServerCredentials(): gRPC runs no
    // authentication on those, so the control plane refuses them.
    std::shared_ptr<grpc::ServerCredentials> server_credentials;
    // If set, a tpa_ token registered (once) as an admin-role token, so a new database has a
    // first admin (--bootstrap_admin_token_file).
    std::string bootstrap_admin_token;
    // How failed authentications are slowed down (controlplane/auth_throttle.h).
    AuthThrottle::Options auth_throttle;
    absl::Duration busy_timeout = absl::Seconds(5);
    absl::Duration retire_sweep_interval = absl::Minutes(1);
    ConfigAdmin::Options admin;
    UsageLedger::Options usage;
    LeaseLedger::Options leases;
    BudgetWatchHub::Options budget_watch;
    // Alert evaluation and delivery (controlplane/alerts/alert_engine.h).
    AlertEngine::Options alerts;
    // Where webhooks go; libcurl when null (tests may pass their own).
    HttpPoster* alert_poster = nullptr;
    // The audit trail's checkpoint signing key (PEM Ed25519 private key); empty: entries are
    // chained but no checkpoint is signed, and VerifyAudit/GetCheckpoint are refused.
    std::string audit_signing_key_file;
    // How often the head is signed when it moved (also once at shutdown).
    absl::Duration audit_checkpoint_interval = absl::Minutes(1);
    AuditTrail::Options audit;
  };

  // Opens the database, checks the master key, finishes a master-key rotation a previous run left
  // half done, publishes the current snapshot and starts serving. `previous_master_key` is the
  // key being rotated away from, if any (--previous_master_key_file). Errors name the cause
  // (database locked, corrupt, newer; wrong master key; port in use).
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(
      Options options, const MasterKey& master_key, Clock& clock,
      const MasterKey* previous_master_key = nullptr);
  ~ControlPlane();

  int port() const { return port_; }
  // Ends watch streams, then stops the server within `grace`. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Blocks until Shutdown() has completed.
  void Wait();

  ConfigAdmin& admin() { return *admin_; }
  SnapshotCache& cache() { return cache_; }
  DataPlaneRegistry& registry() { return registry_; }
  UsageLedger& ledger() { return *ledger_; }
  AuditTrail& audit() { return *audit_; }
  LeaseLedger& leases() { return *leases_; }
  BudgetWatchHub& budget_hub() { return *budget_hub_; }
  IdentityStore& identities() { return *identities_; }
  AlertEngine& alerts() { return *alert_engine_; }
  const Authenticator& authenticator() const { return *authenticator_; }
  Authenticator& authenticator() { return *authenticator_; }
  // The gRPC services' implementations, for the dashboard's HTTP endpoints, which call them
  // in-process (controlplane/dashboard/dashboard.h).
  AdminServiceImpl& admin_service() { return *admin_service_; }
  UsageServiceImpl& usage_service() { return *usage_service_; }
  BudgetServiceImpl& budget_service() { return *budget_service_; }
  AlertServiceImpl& alert_service() { return *alert_service_; }
  // Full names of the services the server serves, health and reflection included (the
  // access-policy test walks their methods).
  const std::vector<std::string>& service_names() const { return service_names_; }
  // gRPC calls in flight (admin calls and watch streams), for metrics.
  int active_calls() const { return active_calls_.active(); }

 private:
  explicit ControlPlane(Clock& clock) : registry_(clock) {}
  static void RegisterServices(ControlPlane& cp, grpc::ServerBuilder& builder);
  void SweepLoop(absl::Duration interval);
  void PruneUsage();
  void PruneLeases();
  void PruneAudit();
  void CheckpointLoop(absl::Duration interval);
  void SignCheckpoint();

  // Set up by Start(), constant afterwards.
  std::unique_ptr<Store> store_;
  std::unique_ptr<SecretBox> box_;
  SnapshotCache cache_;
  DataPlaneRegistry registry_;
  std::unique_ptr<ConfigAdmin> admin_;
  std::unique_ptr<IdentityStore> identities_;
  std::shared_ptr<Authenticator> authenticator_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<WatchService> watch_service_;
  std::unique_ptr<UsageLedger> ledger_;
  std::unique_ptr<UsageServiceImpl> usage_service_;
  std::unique_ptr<AuditTrail> audit_;
  std::unique_ptr<AuditServiceImpl> audit_service_;
  std::unique_ptr<LeaseLedger> leases_;
  std::unique_ptr<BudgetWatchHub> budget_hub_;
  std::unique_ptr<BudgetServiceImpl> budget_service_;
  // Alerting; the engine (its threads) before what it reads, so it is destroyed first.
  std::unique_ptr<AlertRules> alert_rules_;
  std::unique_ptr<AlertSignals> alert_signals_;
  std::unique_ptr<HttpPoster> alert_curl_;
  std::unique_ptr<AlertEngine> alert_engine_;
  std::unique_ptr<AlertServiceImpl> alert_service_;
  ActiveCallCounter active_calls_;  // declared before server_: it must outlive it
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::string> service_names_;
  std::thread sweeper_;
  std::thread checkpointer_;  // only with a signing key

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// True for addresses only reachable from this host (common/listen_address.h).
using ::turnpike::IsLoopbackAddress;

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_CONTROL_PLANE_H_
