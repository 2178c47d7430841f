#include "controlplane/control_plane.h"

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace turnpike::controlplane {

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(Options options,
                                                                  const MasterKey& master_key,
                                                                  Clock& clock) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane(clock));
  Store::Options store_options;
  store_options.path = options.db_path;
  store_options.busy_timeout = options.busy_timeout;
  TP_ASSIGN_OR_RETURN(cp->store_, Store::Open(store_options, EmbeddedMigrations()));
  TP_ASSIGN_OR_RETURN(cp->box_, SecretBox::Create(master_key));
  SnapshotCache* cache = &cp->cache_;
  TP_ASSIGN_OR_RETURN(cp->admin_, ConfigAdmin::Create(
                                      *cp->store_, *cp->box_, clock,
                                      [cache](std::shared_ptr<const config::v1::Snapshot> s) {
                                        cache->Publish(std::move(s));
                                      },
                                      options.admin));
  cp->admin_service_ = std::make_unique<AdminServiceImpl>(*cp->admin_, cp->registry_);
  cp->watch_service_ = std::make_unique<WatchService>(cp->cache_, cp->registry_);
  cp->ledger_ = std::make_unique<UsageLedger>(*cp->store_, clock, options.usage);
  cp->usage_service_ = std::make_unique<UsageServiceImpl>(*cp->ledger_);
  cp->PruneUsage();
  TP_ASSIGN_OR_RETURN(cp->leases_, LeaseLedger::Create(*cp->store_, clock, options.leases));
  cp->PruneLeases();
  cp->budget_hub_ = BudgetWatchHub::Start(*cp->leases_, cp->cache_, clock, options.budget_watch);
  cp->budget_service_ = std::make_unique<BudgetServiceImpl>(*cp->leases_, *cp->budget_hub_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  auto creds = options.server_credentials != nullptr ? options.server_credentials
                                                     : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options.listen_address, creds, &cp->port_);
  builder.RegisterService(cp->admin_service_.get());
  builder.RegisterService(cp->watch_service_.get());
  // Like the admin service, not yet authenticated (every control-plane RPC gets it at once).
  builder.RegisterService(cp->usage_service_.get());
  builder.RegisterService(cp->budget_service_.get());
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
  return cp;
}

ControlPlane::~ControlPlane() {
  Shutdown(absl::ZeroDuration());
  if (sweeper_.joinable()) sweeper_.join();
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
  cache_.Shutdown();
  // Watch streams are ending; admin calls in flight get `grace`; idle connections (an admin's
  // grpcurl, a gateway between streams) do not hold the shutdown.
  if (server_ != nullptr) {
    ShutdownPromptly(*server_, grace, [this] { return active_calls_.active(); });
  }
  if (sweeper_.joinable() && sweeper_.get_id() != std::this_thread::get_id()) sweeper_.join();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void ControlPlane::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

}  // namespace turnpike::controlplane
