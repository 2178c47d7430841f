// grpc.health.v1.Health (Check and Watch) served on the gateway's completion queues.
//
// gRPC's default health service uses the callback API, which in gRPC 1.51 on Linux runs on
// helper threads (`nexting_thread`) that also poll the server's sockets: a request they happen to
// read is handed to its queue's thread, several wake-ups per call (docs/performance.md). Served as
// asynchronous calls on the same queues as every other method, health adds no thread.
//
// HealthService owns the serving state of the server ("") and of each named service; SetServing()
// changes them all and sends the new status on every open Watch stream. Check answers NOT_FOUND
// for a service it does not know; Watch answers SERVICE_UNKNOWN for one, and keeps the stream
// open, as the health protocol says. Thread-safe; the call objects run on their queue's thread.
#ifndef TURNPIKE_SERVER_GRPC_HEALTH_SERVICE_H_
#define TURNPIKE_SERVER_GRPC_HEALTH_SERVICE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace turnpike {

struct CallEnv;

// A Watch stream, told of every change of the status it watches.
class HealthWatcher {
 public:
  virtual ~HealthWatcher() = default;
  virtual void OnStatus(grpc::health::v1::HealthCheckResponse::ServingStatus status) = 0;
};

class HealthService : public grpc::health::v1::Health::AsyncService {
 public:
  // `services`: the fully qualified names besides "" that Check and Watch know.
  explicit HealthService(std::vector<std::string> services);

  void SetServing(bool serving);
  // The status of `service`, or nullopt for one this server does not serve.
  std::optional<grpc::health::v1::HealthCheckResponse::ServingStatus> Status(
      const std::string& service) const;

  // Registers `watcher` for `service` and tells it the current status at once (SERVICE_UNKNOWN
  // for an unknown service). After RemoveWatcher() returns, the watcher is never called again.
  void AddWatcher(const std::string& service, HealthWatcher* watcher);
  void RemoveWatcher(HealthWatcher* watcher);

 private:
  const std::vector<std::string> services_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  // Watchers of a known service (every known service has the server's one status).
  absl::flat_hash_set<HealthWatcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

// Puts one Check and one Watch call up for acceptance on `env`'s queue (each accepted call puts
// up its successor).
void SpawnHealthCheckCall(CallEnv* env);
void SpawnHealthWatchCall(CallEnv* env);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_HEALTH_SERVICE_H_
