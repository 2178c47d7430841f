#include "server/resilience/response_cache.h"

namespace turnpike {

size_t ResponseCache::Cost(const std::string& key, const Entry& entry) {
  constexpr size_t kOverhead = 160;  // list node, map slot, Entry's fixed fields
  return kOverhead + 2 * key.size() + entry.text.size() + entry.provider_finish_reason.size() +
         entry.provider.size() + entry.model.size();
}

void ResponseCache::Put(const std::string& key, Entry entry) {
  const size_t cost = Cost(key, entry);
  absl::MutexLock lock(&mu_);
  if (auto it = index_.find(key); it != index_.end()) EraseLocked(it->second);
  if (cost > max_bytes_) return;
  lru_.push_front(Node{key, std::move(entry), cost});
  index_[key] = lru_.begin();
  bytes_ += cost;
  EvictLocked();
}

std::optional<ResponseCache::Hit> ResponseCache::Get(const std::string& key, absl::Time now,
                                                     absl::Duration max_age,
                                                     absl::Duration drop_after) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const absl::Duration age = now - it->second->entry.stored;
  if (age >= drop_after) {
    EraseLocked(it->second);
    return std::nullopt;
  }
  if (age >= max_age) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return Hit{lru_.front().entry, age};
}

void ResponseCache::SetMaxBytes(size_t max_bytes) {
  absl::MutexLock lock(&mu_);
  max_bytes_ = max_bytes;
  EvictLocked();
}

size_t ResponseCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

size_t ResponseCache::entries() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

void ResponseCache::EvictLocked() {
  while (bytes_ > max_bytes_ && !lru_.empty()) EraseLocked(std::prev(lru_.end()));
}

void ResponseCache::EraseLocked(std::list<Node>::iterator it) {
  bytes_ -= it->cost;
  index_.erase(it->key);
  lru_.erase(it);
}

}  // namespace turnpike
