// The config distribution server: turnpike.config.v1.ConfigDiscoveryService/Watch, state of the
// world in the xDS style. One callback reactor per stream (no thread per stream, never blocks):
//   * the gateway's first request names its node and the version it runs; the reactor answers
//     with the full current snapshot, a version and a nonce unique to the stream;
//   * the next snapshot is sent only once the previous one is ACKed or NACKed (a request echoing
//     its nonce; requests with stale nonces are ignored), so bursts of changes coalesce into one
//     push of the newest version;
//   * after a NACK the node is held: nothing is resent until a newer version is published;
//   * every ACK/NACK is recorded in the DataPlaneRegistry for ListDataPlanes.
// ReportHealth (unary) stores a gateway's latest upstream health report in the registry, and hands
// the caller-key uses it carries (key id -> last minute used) to `record_key_uses`, which writes
// them to SQLite; it is a synchronous method (gRPC's sync thread pool), so that write blocks no
// callback thread. It serves on the same port, so with the same TLS and client-certificate
// checks, as Watch.
// Both are node RPCs: the gate (controlplane/authenticator.h) admits only node tokens, and the
// node id a stream or report names must be the one its token is bound to, so one gateway cannot
// watch or report as another. Each push re-checks the token: a revoked one ends the stream with
// UNAUTHENTICATED instead of receiving the next snapshot. Snapshots (which carry decrypted provider
// keys) therefore reach authenticated gateways only. Snapshots come from the SnapshotCache; the
// database is never touched here. A node token restricted to capabilities gets only its view of
// each snapshot (controlplane/snapshot_filter.h). Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_WATCH_SERVICE_H_
#define TURNPIKE_CONTROLPLANE_WATCH_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "controlplane/authenticator.h"
#include "controlplane/data_plane_registry.h"
#include "controlplane/snapshot_cache.h"
#include "controlplane/snapshot_filter.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"

namespace turnpike::controlplane {

class WatchService final : public config::v1::ConfigDiscoveryService::WithCallbackMethod_Watch<
                               config::v1::ConfigDiscoveryService::Service> {
 public:
  // Key id -> a time in the minute the key was last used (ConfigAdmin::RecordCallerKeyUses).
  using KeyUseSink =
      std::function<absl::Status(const std::vector<std::pair<std::string, absl::Time>>&)>;

  WatchService(SnapshotCache& cache, DataPlaneRegistry& registry,
               const Authenticator& authenticator, KeyUseSink record_key_uses = nullptr)
      : cache_(cache),
        registry_(registry),
        authenticator_(authenticator),
        record_key_uses_(std::move(record_key_uses)) {}

  grpc::ServerBidiReactor<config::v1::WatchRequest, config::v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;
  grpc::Status ReportHealth(grpc::ServerContext* context,
                            const config::v1::ReportHealthRequest* request,
                            config::v1::ReportHealthResponse* response) override;

 private:
  SnapshotCache& cache_;
  DataPlaneRegistry& registry_;
  const Authenticator& authenticator_;
  const KeyUseSink record_key_uses_;
  FilteredSnapshots views_;  // for nodes restricted to capabilities
  std::atomic<uint64_t> next_stream_id_{1};
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_WATCH_SERVICE_H_
