// BudgetWatchHub feeds WatchBudgets streams (docs/budgets.md). It learns which budgets changed
// from the lease ledger (grants, reports, releases, expiries) and from published config snapshots
// (a budget created, changed or deleted), notices window rollovers, and on its own thread reads
// the changed budgets' states once and hands them to every subscriber watching them. Changes are
// coalesced: the hub delivers at most once per `coalesce` interval, so a burst of changes reaches a
// stream as one message per budget per interval. The same thread runs the lease-expiry sweep
// (LeaseLedger::ExpireDue) every `sweep_interval`. Waiting goes through the injected Clock.
// Thread-safe. Subscriber callbacks run with the hub's lock held: they must not block and must not
// call the hub; after Unsubscribe() returns no callback is running or will run. Lock order: the
// SnapshotCache's lock, then the hub's, then a subscriber's.
#ifndef TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_WATCH_HUB_H_
#define TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_WATCH_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/budget/lease_ledger.h"
#include "controlplane/snapshot_cache.h"
#include "turnpike/budget/v1/budget.pb.h"

namespace turnpike::controlplane {

class BudgetWatchHub final : public SnapshotCache::Watcher {
 public:
  struct Options {
    // Shortest time between two deliveries.
    absl::Duration coalesce = absl::Milliseconds(100);
    // How often expired leases are swept and window ends checked.
    absl::Duration sweep_interval = absl::Seconds(1);
  };

  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // The first call carries every watched budget that exists; later calls the watched budgets
    // whose state changed, and the names of watched budgets deleted.
    virtual void OnBudgets(std::vector<budget::v1::BudgetStatus> budgets,
                           std::vector<std::string> removed) = 0;
    // The hub is shutting down; finish the stream.
    virtual void OnShutdown() = 0;
  };

  // Subscribes to `cache` and starts the hub's thread. Becomes the ledger's change listener.
  static std::unique_ptr<BudgetWatchHub> Start(LeaseLedger& ledger, SnapshotCache& cache,
                                               Clock& clock, Options options);
  ~BudgetWatchHub() override;

  // Registers `subscriber` for `names` (every budget, including later ones, when empty); its
  // first delivery follows on the hub's thread. False (not registered) after Shutdown().
  bool Subscribe(Subscriber* subscriber, std::vector<std::string> names);
  void Unsubscribe(Subscriber* subscriber);
  // Notes that a budget's state changed (the ledger's change listener).
  void MarkChanged(const std::string& budget);
  // Calls OnShutdown() on every subscriber, refuses new ones and stops the thread. Idempotent.
  void Shutdown();

  // SnapshotCache::Watcher.
  void OnSnapshot(const VersionedSnapshot& snapshot) override;
  void OnShutdown() override {}

  // Delivery rounds so far, and streams subscribed now (tests, metrics).
  int64_t deliveries() const;
  int subscribers() const;

 private:
  struct Subscription {
    absl::flat_hash_set<std::string> names;  // empty: all
    uint64_t id = 0;
    bool initial_sent = false;
    bool Watches(const std::string& name) const { return names.empty() || names.contains(name); }
  };
  BudgetWatchHub(LeaseLedger& ledger, SnapshotCache& cache, Clock& clock, Options options)
      : ledger_(ledger), cache_(cache), clock_(clock), options_(options) {}
  void Run();
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stopping, or a subscriber is waiting for its first delivery.
  bool HasFreshLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  LeaseLedger& ledger_;
  SnapshotCache& cache_;
  Clock& clock_;
  const Options options_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<Subscriber*, Subscription> subscribers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  // Each budget's spec as last published, to tell which ones an admin change touched.
  absl::flat_hash_map<std::string, std::string> specs_ ABSL_GUARDED_BY(mu_);
  // The end of each budget's window as last delivered, to notice rollovers.
  absl::flat_hash_map<std::string, absl::Time> window_ends_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t deliveries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_BUDGET_BUDGET_WATCH_HUB_H_
