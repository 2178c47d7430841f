#include "controlplane/budget/budget_watch_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace turnpike::controlplane {
namespace {

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

std::unique_ptr<BudgetWatchHub> BudgetWatchHub::Start(LeaseLedger& ledger, SnapshotCache& cache,
                                                      Clock& clock, Options options) {
  std::unique_ptr<BudgetWatchHub> hub(new BudgetWatchHub(ledger, cache, clock, options));
  BudgetWatchHub* raw = hub.get();
  ledger.SetChangeListener([raw](const std::string& budget) { raw->MarkChanged(budget); });
  std::optional<VersionedSnapshot> current = cache.Subscribe(raw);
  if (current.has_value() && current->snapshot != nullptr) {
    raw->OnSnapshot(*current);
    absl::MutexLock lock(&raw->mu_);
    raw->dirty_.clear();  // the budgets that exist at start are not changes
  }
  hub->thread_ = std::thread([raw] { raw->Run(); });
  return hub;
}

BudgetWatchHub::~BudgetWatchHub() { Shutdown(); }

bool BudgetWatchHub::Subscribe(Subscriber* subscriber, std::vector<std::string> names) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  Subscription s;
  s.names.insert(names.begin(), names.end());
  s.id = next_id_++;
  subscribers_[subscriber] = std::move(s);
  return true;
}

void BudgetWatchHub::Unsubscribe(Subscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(subscriber);
}

void BudgetWatchHub::MarkChanged(const std::string& budget) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) dirty_.insert(budget);
}

void BudgetWatchHub::OnSnapshot(const VersionedSnapshot& snapshot) {
  absl::flat_hash_map<std::string, std::string> specs;
  for (const config::v1::Budget& b : snapshot.snapshot->budgets()) {
    specs[b.name()] = b.SerializeAsString();
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [name, spec] : specs) {
    auto it = specs_.find(name);
    if (it == specs_.end() || it->second != spec) dirty_.insert(name);
  }
  for (const auto& [name, spec] : specs_) {
    if (!specs.contains(name)) dirty_.insert(name);
  }
  specs_ = std::move(specs);
}

void BudgetWatchHub::Shutdown() {
  cache_.Unsubscribe(this);
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      for (auto& [subscriber, s] : subscribers_) subscriber->OnShutdown();
    }
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

int64_t BudgetWatchHub::deliveries() const {
  absl::MutexLock lock(&mu_);
  return deliveries_;
}

int BudgetWatchHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(subscribers_.size());
}

bool BudgetWatchHub::HasWorkLocked() const {
  return stopping_ || !dirty_.empty() || HasFreshLocked();
}

bool BudgetWatchHub::HasFreshLocked() const {
  if (stopping_) return true;
  for (const auto& [subscriber, s] : subscribers_) {
    if (!s.initial_sent) return true;
  }
  return false;
}

void BudgetWatchHub::Run() {
  absl::MutexLock lock(&mu_);
  absl::Time next_sweep = clock_.MonotonicNow() + options_.sweep_interval;
  absl::Time last_delivery = absl::InfinitePast();
  while (!stopping_) {
    clock_.AwaitWithDeadline(mu_, absl::Condition(this, &BudgetWatchHub::HasWorkLocked),
                             next_sweep);
    if (stopping_) break;
    // Changes wait out the coalescing interval; a new subscriber's first delivery does not.
    if (!dirty_.empty() && !HasFreshLocked() &&
        clock_.MonotonicNow() < last_delivery + options_.coalesce) {
      clock_.AwaitWithDeadline(mu_, absl::Condition(this, &BudgetWatchHub::HasFreshLocked),
                               last_delivery + options_.coalesce);
      if (stopping_) break;
    }
    const absl::Time mono = clock_.MonotonicNow();
    if (mono >= next_sweep) {
      next_sweep = mono + options_.sweep_interval;
      const absl::Time wall = clock_.Now();
      for (const auto& [name, end] : window_ends_) {
        if (wall >= end) dirty_.insert(name);
      }
      mu_.Unlock();
      // The ledger reports what expired through MarkChanged.
      absl::StatusOr<int> expired = ledger_.ExpireDue();
      if (!expired.ok()) {
        spdlog::warn("budget: lease expiry sweep failed: {}", expired.status().ToString());
      }
      mu_.Lock();
      if (stopping_) break;
    }
    if (!HasWorkLocked()) continue;

    // Which budgets to read: the changed ones (once the interval has passed), and what new
    // subscribers watch.
    const bool take_dirty = mono >= last_delivery + options_.coalesce;
    absl::flat_hash_set<std::string> dirty;
    if (take_dirty) {
      dirty = std::move(dirty_);
      dirty_.clear();
    }
    absl::flat_hash_set<std::string> wanted(dirty.begin(), dirty.end());
    absl::flat_hash_set<uint64_t> fresh;
    bool want_all = false;
    for (const auto& [subscriber, s] : subscribers_) {
      if (s.initial_sent) continue;
      fresh.insert(s.id);
      if (s.names.empty()) want_all = true;
      wanted.insert(s.names.begin(), s.names.end());
    }
    if (!take_dirty && fresh.empty()) continue;
    mu_.Unlock();
    absl::StatusOr<std::vector<budget::v1::BudgetStatus>> states;
    if (want_all) {
      states = ledger_.Budgets({});
    } else if (!wanted.empty()) {
      std::vector<std::string> names(wanted.begin(), wanted.end());
      std::sort(names.begin(), names.end());
      states = ledger_.Budgets(names);
    } else {
      states = std::vector<budget::v1::BudgetStatus>();
    }
    mu_.Lock();
    if (!states.ok()) {
      spdlog::warn("budget: reading budget states for watchers failed: {}",
                   states.status().ToString());
      dirty_.insert(dirty.begin(), dirty.end());
      if (take_dirty) last_delivery = mono;  // retry after the coalescing interval
      continue;
    }
    absl::flat_hash_map<std::string, const budget::v1::BudgetStatus*> by_name;
    for (const budget::v1::BudgetStatus& s : *states) {
      by_name[s.name()] = &s;
      window_ends_[s.name()] = FromTimestamp(s.window_end());
    }
    std::vector<std::string> removed;
    for (const std::string& name : dirty) {
      if (!by_name.contains(name)) {
        removed.push_back(name);
        window_ends_.erase(name);
      }
    }
    std::sort(removed.begin(), removed.end());
    for (auto& [subscriber, s] : subscribers_) {
      std::vector<budget::v1::BudgetStatus> out;
      std::vector<std::string> gone;
      if (!s.initial_sent) {
        if (!fresh.contains(s.id)) continue;  // subscribed during the read: next round
        for (const budget::v1::BudgetStatus& state : *states) {
          if (s.Watches(state.name())) out.push_back(state);
        }
        s.initial_sent = true;
        subscriber->OnBudgets(std::move(out), {});
        continue;
      }
      for (const budget::v1::BudgetStatus& state : *states) {
        if (dirty.contains(state.name()) && s.Watches(state.name())) out.push_back(state);
      }
      for (const std::string& name : removed) {
        if (s.Watches(name)) gone.push_back(name);
      }
      if (!out.empty() || !gone.empty()) subscriber->OnBudgets(std::move(out), std::move(gone));
    }
    ++deliveries_;
    if (take_dirty) last_delivery = mono;
  }
}

}  // namespace turnpike::controlplane
