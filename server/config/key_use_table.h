// KeyUseTable remembers, per caller key id, the last minute this gateway saw the key used, so the
// health reporter can tell the control plane and admins can find stale keys (docs/admin.md).
// Like Resilience's upstream state, a key's slot is created when a snapshot naming the key is
// built and never destroyed, so it survives config swaps; the request path only touches the slot
// it found through the snapshot: one relaxed load per request, and a store only when the minute
// changes (no lock, no shared counter written per request). Thread-safe.
#ifndef TURNPIKE_SERVER_CONFIG_KEY_USE_TABLE_H_
#define TURNPIKE_SERVER_CONFIG_KEY_USE_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace turnpike {

class KeyUseTable {
 public:
  // Unix seconds of the start of the minute of the last use; 0 while never used.
  using Slot = std::atomic<int64_t>;

  // The slot of `key_id`, created on first call; the same id always gives the same slot. Called
  // when a snapshot is built, not per request.
  Slot& SlotFor(std::string_view key_id) ABSL_LOCKS_EXCLUDED(mu_);

  // On the request path: the key of `slot` was used at `now`.
  static void Record(Slot& slot, absl::Time now) {
    const int64_t minute = absl::ToUnixSeconds(now) / 60 * 60;
    int64_t seen = slot.load(std::memory_order_relaxed);
    // Written once a minute per key; never moved back by a request that read the clock earlier.
    while (seen < minute && !slot.compare_exchange_weak(seen, minute, std::memory_order_relaxed)) {
    }
  }

  // Every key used since start: (key id, Unix seconds of the minute of its last use), by id.
  std::vector<std::pair<std::string, int64_t>> Uses() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_KEY_USE_TABLE_H_
