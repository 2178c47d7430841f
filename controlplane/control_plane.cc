#include "controlplane/control_plane.h"

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/impl/server_initializer.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace turnpike::controlplane {
namespace {

// Records the names of the services the server ended up with (ours, health, reflection), as
// gRPC lists them, so a test can check each method against the access policy.
class ServiceListPlugin final : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(std::vector<std::string>* out) : out_(out) {}
  std::string name() override { return "turnpike_service_list"; }
  void InitServer(grpc::ServerInitializer* si) override { *out_ = *si->GetServiceList(); }
  void Finish(grpc::ServerInitializer* si) override { *out_ = *si->GetServiceList(); }
  void ChangeArguments(const std::string&, void*) override {}

 private:
  std::vector<std::string>* out_;
};

class ServiceListOption final : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOption(std::vector<std::string>* out) : out_(out) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(out_));
  }

 private:
  std::vector<std::string>* out_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(
    Options options, const MasterKey& master_key, Clock& clock,
    const MasterKey* previous_master_key) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane(clock));
  Store::Options store_options;
  store_options.path = options.db_path;
  store_options.busy_timeout = options.busy_timeout;
  TP_ASSIGN_OR_RETURN(cp->store_, Store::Open(store_options, EmbeddedMigrations()));
  TP_ASSIGN_OR_RETURN(cp->box_, SecretBox::Create(master_key, previous_master_key));
  SnapshotCache* cache = &cp->cache_;
  TP_ASSIGN_OR_RETURN(cp->admin_, ConfigAdmin::Create(
                                      *cp->store_, *cp->box_, clock,
                                      [cache](std::shared_ptr<const config::v1::Snapshot> s) {
                                        cache->Publish(std::move(s));
                                      },
                                      options.admin));
  // A rotation the previous run did not finish (killed between two batches) is finished now,
  // before anyone is served: every version is sealed under one of the two keys the box holds.
  TP_ASSIGN_OR_RETURN(bool rotation_pending, cp->admin_->MasterKeyRotationPending());
  if (rotation_pending) {
    spdlog::info(
        "a master key rotation was under way when the control plane stopped; finishing it");
    TP_ASSIGN_OR_RETURN(admin::v1::RotateMasterKeyResponse rotated,
                        cp->admin_->RotateMasterKey("system (rotation resumed at start)"));
    spdlog::info(
        "master key rotation finished: {} credential version(s) re-sealed at start, all "
        "under master key id {}",
        rotated.resealed(), rotated.key_id());
  }
  TP_ASSIGN_OR_RETURN(cp->identities_, IdentityStore::Open(*cp->store_, clock));
  if (!options.bootstrap_admin_token.empty()) {
    TP_RETURN_IF_ERROR(cp->identities_->AddBootstrapAdminToken(options.bootstrap_admin_token));
  }
  cp->authenticator_ =
      std::make_shared<Authenticator>(*cp->identities_, clock, options.auth_throttle);
  cp->admin_service_ = std::make_unique<AdminServiceImpl>(*cp->admin_, cp->registry_,
                                                          *cp->identities_, *cp->authenticator_);
  ConfigAdmin* config_admin = cp->admin_.get();
  cp->watch_service_ = std::make_unique<WatchService>(
      cp->cache_, cp->registry_, *cp->authenticator_,
      [config_admin](const std::vector<std::pair<std::string, absl::Time>>& uses) {
        return config_admin->RecordCallerKeyUses(uses).status();
      });
  cp->ledger_ = std::make_unique<UsageLedger>(*cp->store_, clock, options.usage);
  cp->usage_service_ = std::make_unique<UsageServiceImpl>(*cp->ledger_, *cp->authenticator_);
  cp->PruneUsage();
  std::unique_ptr<AuditSigner> signer;
  if (!options.audit_signing_key_file.empty()) {
    TP_ASSIGN_OR_RETURN(signer, AuditSigner::FromPemFile(options.audit_signing_key_file));
  }
  cp->audit_ = std::make_unique<AuditTrail>(*cp->store_, clock, std::move(signer), options.audit);
  cp->audit_service_ = std::make_unique<AuditServiceImpl>(*cp->audit_);
  cp->PruneAudit();
  TP_ASSIGN_OR_RETURN(cp->leases_, LeaseLedger::Create(*cp->store_, clock, options.leases));
  cp->PruneLeases();
  cp->budget_hub_ = BudgetWatchHub::Start(*cp->leases_, cp->cache_, clock, options.budget_watch);
  cp->budget_service_ =
      std::make_unique<BudgetServiceImpl>(*cp->leases_, *cp->budget_hub_, *cp->authenticator_);
  cp->alert_rules_ = std::make_unique<AlertRules>(*cp->store_, *cp->box_, clock);
  cp->alert_signals_ =
      std::make_unique<LiveAlertSignals>(*cp->store_, *cp->leases_, cp->registry_, cp->cache_);
  HttpPoster* poster = options.alert_poster;
  if (poster == nullptr) {
    cp->alert_curl_ = NewCurlPoster();
    poster = cp->alert_curl_.get();
  }
  TP_ASSIGN_OR_RETURN(cp->alert_engine_,
                      AlertEngine::Start(*cp->store_, *cp->alert_rules_, *cp->alert_signals_,
                                         *poster, clock, options.alerts));
  cp->alert_service_ = std::make_unique<AlertServiceImpl>(*cp->alert_rules_, *cp->alert_engine_,
                                                          *cp->authenticator_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = options.server_credentials;
  if (creds == nullptr) {
    if (!IsLoopbackAddress(options.listen_address)) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to listen on ", options.listen_address,
                       " without TLS: tokens and provider keys would cross the network in clear"));
    }
    const bool unix_socket = absl::StartsWith(options.listen_address, "unix");
    creds = grpc::experimental::LocalServerCredentials(unix_socket ? UDS : LOCAL_TCP);
  }
  // Every call on every service passes the gate first (controlplane/authenticator.h).
  creds->SetAuthMetadataProcessor(cp->authenticator_);
  builder.AddListeningPort(options.listen_address, creds, &cp->port_);
  RegisterServices(*cp, builder);
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(cp->active_calls_.Factory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  // Gateways ping idle watch streams every 30 s; allow it, and find dead gateways ourselves.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  cp->server_ = builder.BuildAndStart();
  if (cp->server_ == nullptr || cp->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use, not local, or TLS files unreadable)"));
  }
  cp->server_->GetHealthCheckService()->SetServingStatus(true);
  cp->sweeper_ = std::thread(
      [raw = cp.get(), interval = options.retire_sweep_interval] { raw->SweepLoop(interval); });
  if (cp->audit_->signing()) {
    cp->checkpointer_ = std::thread([raw = cp.get(), interval = options.audit_checkpoint_interval] {
      raw->CheckpointLoop(interval);
    });
  }
  return cp;
}

void ControlPlane::RegisterServices(ControlPlane& cp, grpc::ServerBuilder& builder) {
  builder.RegisterService(cp.admin_service_.get());
  builder.RegisterService(cp.watch_service_.get());
  builder.RegisterService(cp.usage_service_.get());
  builder.RegisterService(cp.budget_service_.get());
  builder.RegisterService(cp.alert_service_.get());
  builder.RegisterService(cp.audit_service_.get());
  builder.SetOption(std::make_unique<ServiceListOption>(&cp.service_names_));
}

ControlPlane::~ControlPlane() {
  Shutdown(absl::ZeroDuration());
  if (sweeper_.joinable()) sweeper_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void ControlPlane::CheckpointLoop(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) break;
    mu_.Unlock();
    SignCheckpoint();
    mu_.Lock();
  }
}

void ControlPlane::SignCheckpoint() {
  absl::StatusOr<bool> signed_one = audit_->Checkpoint();
  if (!signed_one.ok()) {
    spdlog::warn("audit checkpoint failed: {}", signed_one.status().ToString());
  }
}

void ControlPlane::PruneAudit() {
  absl::StatusOr<int64_t> pruned = audit_->PruneExpired();
  if (!pruned.ok()) {
    spdlog::warn("audit retention sweep failed: {}", pruned.status().ToString());
  } else if (*pruned > 0) {
    spdlog::info("pruned {} audit entries covered by a checkpoint past the retention", *pruned);
  }
}

void ControlPlane::SweepLoop(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) break;
    mu_.Unlock();
    absl::StatusOr<int> retired = admin_->RetireExpiredCredentialVersions();
    if (!retired.ok()) {
      spdlog::warn("credential retirement sweep failed: {}", retired.status().ToString());
    } else if (*retired > 0) {
      spdlog::info("retired {} credential version(s) whose grace period ended", *retired);
    }
    PruneUsage();
    PruneLeases();
    PruneAudit();
    mu_.Lock();
  }
}

void ControlPlane::PruneUsage() {
  absl::StatusOr<int64_t> pruned = ledger_->PruneExpired();
  if (!pruned.ok()) {
    spdlog::warn("usage retention sweep failed: {}", pruned.status().ToString());
  } else if (*pruned > 0) {
    spdlog::info("pruned {} usage record(s) past their retention (hourly rollups kept)", *pruned);
  }
}

void ControlPlane::PruneLeases() {
  absl::StatusOr<int64_t> pruned = leases_->PruneClosed();
  if (!pruned.ok()) {
    spdlog::warn("closed lease prune failed: {}", pruned.status().ToString());
  } else if (*pruned > 0) {
    spdlog::info("pruned {} closed lease and rate-limit window row(s)", *pruned);
  }
}

void ControlPlane::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    stopping_ = true;
  }
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(false);
  if (budget_hub_ != nullptr) budget_hub_->Shutdown();
  if (alert_engine_ != nullptr) alert_engine_->Shutdown();
  cache_.Shutdown();
  // Watch streams are ending; admin calls in flight get `grace`; idle connections (an admin's
  // grpcurl, a gateway between streams) do not hold the shutdown.
  if (server_ != nullptr) {
    ShutdownPromptly(*server_, grace, [this] { return active_calls_.active(); });
  }
  if (sweeper_.joinable() && sweeper_.get_id() != std::this_thread::get_id()) sweeper_.join();
  if (checkpointer_.joinable() && checkpointer_.get_id() != std::this_thread::get_id()) {
    checkpointer_.join();
  }
  // The last entries get a checkpoint too, so a clean stop leaves nothing unsigned.
  if (audit_ != nullptr && audit_->signing()) SignCheckpoint();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void ControlPlane::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

}  // namespace turnpike::controlplane
