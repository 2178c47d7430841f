// SnapshotCache holds the newest published config snapshot and fans it out to watchers (the
// open watch streams), in the go-control-plane style: the cache knows nothing of the protocol,
// the protocol server knows nothing of the database. Publish() never blocks on I/O; it ignores a
// snapshot that is not newer than the current one, so publishers need not be ordered.
// Thread-safe. Watcher callbacks run with the cache's lock held: they must not block and must not
// call back into the cache; after Unsubscribe() returns no callback is running or will run.
#ifndef TURNPIKE_CONTROLPLANE_SNAPSHOT_CACHE_H_
#define TURNPIKE_CONTROLPLANE_SNAPSHOT_CACHE_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

struct VersionedSnapshot {
  int64_t version = 0;  // the snapshot's version as a number (versions are decimal integers)
  std::shared_ptr<const config::v1::Snapshot> snapshot;
};

class SnapshotCache {
 public:
  class Watcher {
   public:
    virtual ~Watcher() = default;
    // A newer snapshot was published.
    virtual void OnSnapshot(const VersionedSnapshot& snapshot) = 0;
    // The cache is shutting down; finish the stream.
    virtual void OnShutdown() = 0;
  };

  // Publishes `snapshot` if its version is newer than the current one.
  void Publish(std::shared_ptr<const config::v1::Snapshot> snapshot);
  // The current snapshot; snapshot == nullptr before the first Publish().
  VersionedSnapshot Current() const;

  // Registers `watcher` and returns the current snapshot, atomically, so no publication is
  // missed. Returns nullopt (and does not register) after Shutdown().
  std::optional<VersionedSnapshot> Subscribe(Watcher* watcher);
  void Unsubscribe(Watcher* watcher);
  // Calls OnShutdown() on every watcher; later subscriptions are refused.
  void Shutdown();

  int64_t publish_count() const;

 private:
  mutable absl::Mutex mu_;
  VersionedSnapshot current_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t publish_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SNAPSHOT_CACHE_H_
