// Quota is a gateway's local view of one global counter: a budget in its window, or one key of a
// rate limit in the current UTC minute (docs/limits.md). Requests reserve from the gateway's
// lease of it and settle when they end; the lease manager's thread keeps the lease topped up,
// renewed, rolled over to each new window and released, through a LeaseSource.
//
// Reporting ahead (docs/budgets.md, "A gateway that dies"): every report to the source covers
// all the gateway can admit until its next report, so a lease that lapses with its gateway dead
// is charged at least what that gateway spent. A budget's lease keeps most of its grant parked:
// the hot path admits only from a hot part of at most HotCap(), and moving parked into hot takes
// a report first; what stays parked returns to the budget if the gateway dies. Rate limits park
// nothing (their window is a minute): a dead gateway's lease is charged in full.
//
// Threading: TryReserve() and Settle() are the hot path; any thread may call them, and they take
// no lock (a compare-and-swap on the current lease's headroom). AddWaiter() takes the quota's
// mutex (only requests the lease cannot cover take it). Maintain() runs only on the lease
// manager's thread. A lease lives in one of a fixed set of slots that are never freed, so a
// reservation can always find its lease; a slot is reused for a new window only once every
// request that reserved from it has settled, and a generation number in the same atomic word as
// the headroom makes a stale compare-and-swap fail.
//
// quota.cc has the hot path, the waiters and the manager's pass; quota_lease.cc the round trips
// with the source.
#ifndef TURNPIKE_SERVER_ADMISSION_QUOTA_H_
#define TURNPIKE_SERVER_ADMISSION_QUOTA_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/admission/lease_source.h"
#include "turnpike/budget/v1/budget.pb.h"

namespace turnpike {

class Quota {
 public:
  enum class Kind { kRequests, kTokens, kUsdMicros };

  // A hold on a lease; `slot` is -1 for an admission that holds nothing (failing open).
  struct Reservation {
    int slot = -1;
    uint32_t generation = 0;
    int64_t amount = 0;
  };

  // Config-derived settings, replaced when a snapshot changes them.
  struct Settings {
    int64_t limit = 0;  // per window, in the quota's unit
    bool fail_open = false;
  };

  // A request the current lease cannot cover. `done` runs once, on the lease manager's thread,
  // without any quota lock held: with a reservation, or with the refusal.
  struct Waiter {
    int64_t need = 0;
    absl::Time give_up;  // monotonic: the caller's deadline or the queue's max wait
    bool queue = false;  // wait for capacity (queue) or only for the lease round trip (reject)
    std::function<void(absl::StatusOr<Reservation>)> done;
  };

  // `id` names the counter at the lease source; `label` is how errors name it ("rate limit
  // \"claims-rpm\" (requests per minute)"); `kick` wakes the lease manager (cheap, any thread).
  Quota(budget::v1::Quota id, Kind kind, std::string label, std::function<void()> kick);

  const budget::v1::Quota& id() const { return id_; }
  Kind kind() const { return kind_; }
  const std::string& label() const { return label_; }
  void set_settings(Settings settings);

  // Hot path: reserves `amount` from the current lease if it covers it and is usable at
  // `now` (monotonic).
  bool TryReserve(int64_t amount, absl::Time now, Reservation* out);
  // Ends a reservation: `actual` was used (0 to release it whole). Exactly once per reservation.
  void Settle(const Reservation& reservation, int64_t actual);

  // What is left as far as this gateway knows: its lease's headroom plus what the source said was
  // left to grant at the last round trip. For response metadata; approximate by nature.
  int64_t RemainingHint() const;
  // When capacity returns: the end of the window the source last answered for.
  absl::Time WindowEndHint() const;

  // Queues `waiter`; refuses it at once (returns false, leaving `done` uncalled) when
  // `max_length` waiters are already queued.
  bool AddWaiter(Waiter waiter, int max_length);

  // Lease manager thread: renews, tops up, rolls over and releases the lease, then serves or
  // refuses waiters. Callbacks to run (without locks) are appended to `callbacks`.
  void Maintain(LeaseSource& source, Clock& clock, std::vector<std::function<void()>>* callbacks);
  // Lease manager thread, at shutdown: refuses waiters and releases every open lease. Returns
  // false when the source did not answer; with `source_answers` false, asks it nothing (the
  // leases lapse at their expiry), so a gateway whose control plane is down stops promptly.
  bool ReleaseAll(LeaseSource& source, bool source_answers);
  // True when nothing is held or waited for (a per-key quota may then be forgotten).
  bool Idle() const;

  // Counters for metrics (monotonic totals).
  int64_t lease_round_trips() const { return round_trips_.load(std::memory_order_relaxed); }
  int64_t fail_open_admissions() const { return fail_open_.load(std::memory_order_relaxed); }
  int64_t fail_closed_refusals() const { return fail_closed_.load(std::memory_order_relaxed); }

 private:
  static constexpr int kSlots = 8;
  static constexpr uint64_t kHeadroomBits = 47;
  static constexpr uint64_t kHeadroomMask = (uint64_t{1} << kHeadroomBits) - 1;

  struct Slot {
    // generation << kHeadroomBits | headroom: the one word the hot path swaps.
    std::atomic<uint64_t> word{0};
    // Monotonic nanoseconds after which the lease admits nothing (window end or local expiry);
    // 0 while the slot holds no lease.
    std::atomic<int64_t> usable_until{0};
    std::atomic<int32_t> inflight{0};
    std::atomic<int64_t> reserved{0};
    std::atomic<int64_t> spent{0};
    // Granted but not yet admissible (budgets): written by the manager, read by RemainingHint.
    std::atomic<int64_t> parked{0};
    // Lease manager thread only.
    bool open = false;
    // A grant was parked since the last report: the source counts it as spent until told.
    bool report_due = false;
    std::string lease_id;
    int64_t granted = 0;
    absl::Time window_end;      // wall
    absl::Time last_heartbeat;  // monotonic
  };

  // Monotonic or wall time as Unix nanoseconds, saturating (a total budget's window ends in 9999).
  static int64_t ToNanos(absl::Time t);
  uint64_t Headroom(const Slot& slot) const;
  int64_t SliceSize(int64_t need) const;
  // The most a budget's lease keeps admissible between two reports: a quarter of a slice, or
  // what the waiting request needs. Rate limits: unbounded (nothing is parked).
  int64_t HotCap(int64_t need) const;
  // Moves `amount` of the headroom atomically (negative takes it away, never below zero).
  void AddHeadroom(Slot& slot, int64_t amount);
  // Parks what settled requests gave back to the hot part beyond twice HotCap(0); returns how
  // much was parked.
  int64_t TrimHot(Slot& slot);
  // What TryReserve's caller treats as low: below it, the manager is woken to report or top up.
  void SetLowMark(const Slot& slot);
  // Opens a lease for the current window in a free slot; false if none was granted.
  bool Open(LeaseSource& source, Clock& clock, int64_t need);
  // Report, heartbeat and top-up of the current lease (`want` more, at least `minimum`), and the
  // move of parked into hot enough for a request of `hot_need`; false if the lease is no longer
  // usable.
  bool Renew(LeaseSource& source, Clock& clock, Slot& slot, int64_t want, int64_t minimum,
             int64_t hot_need);
  // Sends `request`, timing it; records what the answer says about the quota as a whole.
  absl::StatusOr<budget::v1::AcquireLeaseResponse> Ask(LeaseSource& source, Clock& clock,
                                                       budget::v1::AcquireLeaseRequest request,
                                                       absl::Time* sent_wall, absl::Time* sent_mono,
                                                       absl::Time* answered_mono);
  // The monotonic time until which a lease answered in `response` may admit requests.
  static absl::Time UsableUntil(const budget::v1::AcquireLeaseResponse& response,
                                absl::Time sent_wall, absl::Time sent_mono,
                                absl::Time answered_mono);
  // False when the source did not answer (the slot stays open, to try again).
  bool ReleaseSlot(LeaseSource& source, Slot& slot, int64_t spent);
  absl::Status Refusal(absl::Time wall) const;
  absl::Duration heartbeat_ = absl::Seconds(10);  // lease manager thread only
  absl::Status Unavailable(const absl::Status& cause) const;

  // Constant after construction.
  const budget::v1::Quota id_;
  const Kind kind_;
  const std::string label_;
  const std::function<void()> kick_;
  const bool park_;  // a budget: keep most of each grant parked

  std::array<Slot, kSlots> slots_;
  std::atomic<int> current_{-1};
  std::atomic<int64_t> limit_{0};
  std::atomic<bool> fail_open_setting_{false};
  std::atomic<int64_t> remote_remaining_{0};
  std::atomic<int64_t> window_end_hint_{0};  // Unix nanos
  std::atomic<bool> has_waiters_{false};
  // The limit changed: the current lease was carved under the old one and admits nothing more;
  // the manager releases it and the next request gets a lease under the new limit.
  std::atomic<bool> limit_changed_{false};
  std::atomic<bool> low_{false};
  std::atomic<int64_t> low_mark_{0};
  std::atomic<int64_t> round_trips_{0};
  std::atomic<int64_t> fail_open_{0};
  std::atomic<int64_t> fail_closed_{0};

  // Requests waiting; request threads add, the manager serves. Never held across a round trip.
  mutable absl::Mutex waiters_mu_;
  std::deque<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);

  // Lease manager thread only.
  // The last round trip with the source failed (the control plane is unreachable).
  absl::Status source_error_;
  // The last round trip granted less than a waiting request needs, for want of capacity.
  bool exhausted_ = false;
  // Monotonic time of the last refused grant, to pace retries for queued waiters.
  absl::Time last_refused_ = absl::InfinitePast();
  uint32_t next_generation_ = 1;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_QUOTA_H_
