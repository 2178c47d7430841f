// An in-memory cache of completed replies for one route, keyed by a hash of the normalized
// request. Bounded in bytes with least-recently-used eviction; entries carry their store time so
// a reader asks for "fresh" (younger than the TTL) or "usable as a last resort" (younger than
// TTL + max stale). Only whole, successful replies are ever put in (the exchange never stores an
// error or a partial stream). Thread-safe; one mutex, held for a map lookup or insert.
#ifndef TURNPIKE_SERVER_RESILIENCE_RESPONSE_CACHE_H_
#define TURNPIKE_SERVER_RESILIENCE_RESPONSE_CACHE_H_

#include <cstddef>
#include <list>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

class ResponseCache {
 public:
  struct Entry {
    std::string text;
    v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
    std::string provider_finish_reason;
    std::string provider;  // who produced it
    std::string model;
    absl::Time stored;
  };
  struct Hit {
    Entry entry;
    absl::Duration age;
  };

  explicit ResponseCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Stores (or replaces) `key`, evicting least-recently-used entries to stay under the bound.
  // An entry larger than the whole bound is not stored.
  void Put(const std::string& key, Entry entry) ABSL_LOCKS_EXCLUDED(mu_);
  // The entry for `key` if it is younger than `max_age` at `now`; refreshes its LRU position.
  // Entries past `drop_after` are removed when seen.
  std::optional<Hit> Get(const std::string& key, absl::Time now, absl::Duration max_age,
                         absl::Duration drop_after) ABSL_LOCKS_EXCLUDED(mu_);
  // Changes the bound (a new config may resize the route's cache); evicts if needed.
  void SetMaxBytes(size_t max_bytes) ABSL_LOCKS_EXCLUDED(mu_);

  size_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t entries() const ABSL_LOCKS_EXCLUDED(mu_);

  // Bytes charged for one entry (its strings plus a fixed overhead for the bookkeeping).
  static size_t Cost(const std::string& key, const Entry& entry);

 private:
  struct Node {
    std::string key;
    Entry entry;
    size_t cost;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(std::list<Node>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  size_t max_bytes_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<Node> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  absl::flat_hash_map<std::string, std::list<Node>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_RESPONSE_CACHE_H_
