#include "controlplane/snapshot_cache.h"

#include "absl/strings/numbers.h"

namespace turnpike::controlplane {

void SnapshotCache::Publish(std::shared_ptr<const config::v1::Snapshot> snapshot) {
  if (snapshot == nullptr) return;
  int64_t version = 0;
  if (!absl::SimpleAtoi(snapshot->version(), &version)) return;
  absl::MutexLock lock(&mu_);
  if (shut_down_ || (current_.snapshot != nullptr && version <= current_.version)) return;
  current_ = VersionedSnapshot{version, std::move(snapshot)};
  ++publish_count_;
  for (Watcher* w : watchers_) w->OnSnapshot(current_);
}

VersionedSnapshot SnapshotCache::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::optional<VersionedSnapshot> SnapshotCache::Subscribe(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return std::nullopt;
  watchers_.insert(watcher);
  return current_;
}

void SnapshotCache::Unsubscribe(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

void SnapshotCache::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (Watcher* w : watchers_) w->OnShutdown();
}

int64_t SnapshotCache::publish_count() const {
  absl::MutexLock lock(&mu_);
  return publish_count_;
}

}  // namespace turnpike::controlplane
