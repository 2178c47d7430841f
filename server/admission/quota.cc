#include "server/admission/quota.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"

namespace turnpike {
namespace {

// While the source grants nothing, queued requests ask again at most this often.
constexpr absl::Duration kExhaustedRetry = absl::Milliseconds(250);

}  // namespace

// Saturating: times beyond int64 nanoseconds (a total budget's window end) clamp.
int64_t Quota::ToNanos(absl::Time t) {
  if (t >= absl::FromUnixNanos(INT64_MAX)) return INT64_MAX;
  if (t <= absl::FromUnixNanos(INT64_MIN)) return INT64_MIN;
  return absl::ToUnixNanos(t);
}

Quota::Quota(budget::v1::Quota id, Kind kind, std::string label, std::function<void()> kick)
    : id_(std::move(id)),
      kind_(kind),
      label_(std::move(label)),
      kick_(std::move(kick)),
      park_(kind == Kind::kUsdMicros) {}

void Quota::set_settings(Settings settings) {
  const int64_t previous = limit_.exchange(settings.limit);
  if (previous != settings.limit) {
    // A new limit applies to new requests at once: what the source said was left no longer
    // holds, and the current lease was carved under the old limit.
    remote_remaining_.store(settings.limit);
    if (previous != 0) {
      limit_changed_.store(true);
      kick_();
    }
  }
  fail_open_setting_.store(settings.fail_open);
}

uint64_t Quota::Headroom(const Slot& slot) const { return slot.word.load() & kHeadroomMask; }

bool Quota::TryReserve(int64_t amount, absl::Time now, Reservation* out) {
  const int index = current_.load();
  if (index < 0 || limit_changed_.load(std::memory_order_relaxed)) return false;
  Slot& slot = slots_[index];
  // Counted in flight before the lease is read, so the manager never recycles a slot under us.
  slot.inflight.fetch_add(1);
  if (ToNanos(now) >= slot.usable_until.load()) {
    slot.inflight.fetch_sub(1);
    return false;
  }
  uint64_t word = slot.word.load();
  uint64_t headroom;
  do {
    headroom = word & kHeadroomMask;
    if (amount < 0 || headroom < static_cast<uint64_t>(amount)) {
      slot.inflight.fetch_sub(1);
      return false;
    }
  } while (!slot.word.compare_exchange_weak(word, word - static_cast<uint64_t>(amount)));
  slot.reserved.fetch_add(amount);
  out->slot = index;
  out->generation = static_cast<uint32_t>(word >> kHeadroomBits);
  out->amount = amount;
  // Running low: ask the manager to report and unpark, or top the lease up, before it runs dry.
  if (static_cast<int64_t>(headroom) - amount < low_mark_.load(std::memory_order_relaxed) &&
      !low_.exchange(true)) {
    kick_();
  }
  return true;
}

void Quota::Settle(const Reservation& r, int64_t actual) {
  if (r.slot < 0) return;  // admitted while failing open: nothing was held
  Slot& slot = slots_[r.slot];
  slot.spent.fetch_add(actual);
  slot.reserved.fetch_sub(r.amount);
  const int64_t back = r.amount - actual;
  if (back != 0) {
    uint64_t word = slot.word.load();
    uint64_t next;
    do {
      if (static_cast<uint32_t>(word >> kHeadroomBits) != r.generation) break;
      const int64_t headroom = static_cast<int64_t>(word & kHeadroomMask);
      // An overrun (the provider billed more than the bound) takes from the headroom, never
      // below zero; the full actual is in `spent` and reaches the source at release.
      const int64_t updated =
          std::clamp<int64_t>(headroom + back, 0, static_cast<int64_t>(kHeadroomMask));
      next = (word & ~kHeadroomMask) | static_cast<uint64_t>(updated);
    } while (!slot.word.compare_exchange_weak(word, next));
  }
  slot.inflight.fetch_sub(1);
  if (back > 0 && has_waiters_.load()) kick_();
}

int64_t Quota::RemainingHint() const {
  int64_t local = 0;
  const int index = current_.load();
  if (index >= 0) {
    local = static_cast<int64_t>(Headroom(slots_[index])) + slots_[index].parked.load();
  }
  return local + remote_remaining_.load();
}

absl::Time Quota::WindowEndHint() const {
  const int64_t nanos = window_end_hint_.load();
  return nanos == 0 ? absl::InfiniteFuture() : absl::FromUnixNanos(nanos);
}

int64_t Quota::SliceSize(int64_t need) const {
  // A sixteenth of the limit, shrinking to a quarter of what is left as the window runs out, so
  // slices held idle by other gateways stay small near exhaustion (docs/limits.md, "Slices").
  const int64_t limit = limit_.load(std::memory_order_relaxed);
  const int64_t left = remote_remaining_.load(std::memory_order_relaxed);
  const int64_t slice = std::min(std::max<int64_t>(1, limit / 16), std::max<int64_t>(1, left / 4));
  return std::max(need, slice);
}

int64_t Quota::HotCap(int64_t need) const {
  if (!park_) return static_cast<int64_t>(kHeadroomMask);
  return std::max({need, SliceSize(0) / 4, int64_t{1}});
}

void Quota::AddHeadroom(Slot& slot, int64_t amount) {
  uint64_t word = slot.word.load();
  uint64_t next;
  do {
    const int64_t headroom = static_cast<int64_t>(word & kHeadroomMask);
    const int64_t updated =
        std::clamp<int64_t>(headroom + amount, 0, static_cast<int64_t>(kHeadroomMask));
    next = (word & ~kHeadroomMask) | static_cast<uint64_t>(updated);
  } while (!slot.word.compare_exchange_weak(word, next));
}

int64_t Quota::TrimHot(Slot& slot) {
  if (!park_) return 0;
  const int64_t keep = HotCap(0);
  uint64_t word = slot.word.load();
  int64_t trimmed;
  do {
    const int64_t headroom = static_cast<int64_t>(word & kHeadroomMask);
    if (headroom <= 2 * keep) return 0;
    trimmed = headroom - keep;
  } while (!slot.word.compare_exchange_weak(word, word - static_cast<uint64_t>(trimmed)));
  slot.parked.fetch_add(trimmed);
  return trimmed;
}

void Quota::SetLowMark(const Slot& slot) {
  low_mark_.store(slot.parked.load() > 0 ? HotCap(0) / 2 : SliceSize(0) / 2);
  low_.store(false);
}

bool Quota::AddWaiter(Waiter waiter, int max_length) {
  {
    absl::MutexLock lock(&waiters_mu_);
    if (static_cast<int>(waiters_.size()) >= max_length) return false;
    waiters_.push_back(std::move(waiter));
    has_waiters_.store(true);
  }
  kick_();
  return true;
}

bool Quota::Idle() const {
  {
    absl::MutexLock lock(&waiters_mu_);
    if (!waiters_.empty()) return false;
  }
  for (const Slot& slot : slots_) {
    if (slot.open || slot.inflight.load() != 0) return false;
  }
  return true;
}

void Quota::Maintain(LeaseSource& source, Clock& clock,
                     std::vector<std::function<void()>>* callbacks) {
  const absl::Time mono = clock.MonotonicNow();
  const int64_t mono_nanos = ToNanos(mono);

  // A lease past its window or its expiry, or carved under a limit since changed, admits nothing
  // more.
  int current = current_.load();
  const bool limit_changed = limit_changed_.exchange(false);
  if (current >= 0 && (limit_changed || mono_nanos >= slots_[current].usable_until.load())) {
    slots_[current].usable_until.store(0);
    current_.store(-1);
    current = -1;
  }
  // Leases no longer current are released once their last request has settled.
  for (int i = 0; i < kSlots; ++i) {
    Slot& slot = slots_[i];
    if (i != current && slot.open && slot.inflight.load() == 0) {
      slot.usable_until.store(0);
      if (slot.inflight.load() == 0) ReleaseSlot(source, slot, slot.spent.load());
    }
  }

  int64_t need = 0;
  bool waiting = false;
  {
    absl::MutexLock lock(&waiters_mu_);
    waiting = !waiters_.empty();
    if (waiting) need = waiters_.front().need;
  }
  if (current >= 0) {
    Slot& slot = slots_[current];
    // Requests that settled below their hold gave money back to the hot part: park the excess
    // and report it, so that it would return if the gateway died.
    if (TrimHot(slot) > 0) slot.report_due = true;
    const int64_t headroom = static_cast<int64_t>(Headroom(slot));
    const int64_t available = headroom + slot.parked.load();
    const bool short_of_need = need > available;
    const bool low = available < SliceSize(0) / 2 || short_of_need;
    // Parked capacity the hot path needs: a report moves it.
    const bool hot_low = available > headroom && (headroom < HotCap(0) / 2 || need > headroom);
    const bool paced = exhausted_ && mono - last_refused_ < kExhaustedRetry;
    if ((low && !paced) || hot_low || slot.report_due || mono - slot.last_heartbeat >= heartbeat_) {
      const int64_t want = low && !paced ? SliceSize(need - available) : 0;
      // A minimum only comes with a request for more (never above it).
      const int64_t minimum = want > 0 && short_of_need ? need - available : 0;
      bool usable = Renew(source, clock, slot, want, minimum, need);
      // A parked top-up is reported at once, so that it would return if the gateway died.
      if (usable && slot.report_due) usable = Renew(source, clock, slot, 0, 0, need);
      if (!usable) {
        slot.usable_until.store(0);
        current_.store(-1);
        current = -1;
      }
    }
  }
  if (current < 0 && waiting && !(exhausted_ && mono - last_refused_ < kExhaustedRetry) &&
      Open(source, clock, need)) {
    Slot& slot = slots_[current_.load()];
    // A new lease with a parked part reports at once (the lease already admits meanwhile).
    if (slot.report_due && !Renew(source, clock, slot, 0, 0, need)) {
      slot.usable_until.store(0);
      current_.store(-1);
    }
  }

  // Serve waiters first come, first served: one that cannot be served holds back the rest,
  // which may still be refused (their time is up, or the source said no).
  const absl::Time wall = clock.Now();
  // Only a recent "no" refuses without asking again: a waiter that arrived after this pass read
  // the queue was not part of its round trips, and an old answer (a window ago) says nothing.
  const bool refused_recently = exhausted_ && mono - last_refused_ < kExhaustedRetry;
  absl::MutexLock lock(&waiters_mu_);
  bool blocked = false;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Reservation reservation;
    std::function<void(absl::StatusOr<Reservation>)> done;
    absl::StatusOr<Reservation> result;
    if (!blocked && TryReserve(it->need, mono, &reservation)) {
      result = reservation;
    } else if (!blocked && current_.load() < 0 && !source_error_.ok()) {
      // No usable lease and the source is unreachable: the limit's setting decides.
      if (fail_open_setting_.load()) {
        fail_open_.fetch_add(1, std::memory_order_relaxed);
        result = Reservation{};
      } else {
        fail_closed_.fetch_add(1, std::memory_order_relaxed);
        result = Unavailable(source_error_);
      }
    } else if (mono >= it->give_up || (!it->queue && refused_recently)) {
      // Time is up, or the source said no a moment ago (asked at most kExhaustedRetry ago) and
      // the request would rather be refused than wait.
      result = Refusal(wall);
    } else {
      blocked = true;
      ++it;
      continue;
    }
    done = std::move(it->done);
    it = waiters_.erase(it);
    callbacks->push_back([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
  has_waiters_.store(!waiters_.empty());
}

absl::Status Quota::Refusal(absl::Time wall) const {
  const bool budget = kind_ == Kind::kUsdMicros;
  absl::Status status = absl::ResourceExhaustedError(absl::StrCat(
      label_, " has no capacity left for this request (limit ",
      limit_.load(std::memory_order_relaxed), budget ? " micro-dollars" : "", " per window)"));
  google::rpc::ErrorInfo info;
  info.set_reason(budget ? "BUDGET_EXHAUSTED" : "RATE_LIMITED");
  info.set_domain(kErrorDomain);
  if (budget) {
    (*info.mutable_metadata())["budget"] = id_.budget();
  } else {
    (*info.mutable_metadata())["rate_limit"] = id_.rate_limit();
    if (!id_.key().empty()) (*info.mutable_metadata())["key"] = id_.key();
  }
  AttachDetail(status, info);
  const absl::Time end = WindowEndHint();
  // A day's or a month's window says when capacity returns; a total budget's never does.
  if (end > wall && end - wall <= absl::Hours(24 * 31)) {
    AttachRetryInfo(status,
                    absl::ToInt64Milliseconds(absl::Ceil(end - wall, absl::Milliseconds(1))));
  }
  return status;
}

absl::Status Quota::Unavailable(const absl::Status& cause) const {
  absl::Status status = absl::UnavailableError(
      absl::StrCat("cannot renew the gateway's lease of ", label_, " (", cause.message(),
                   "); refusing requests until it can (fail closed)"));
  google::rpc::ErrorInfo info;
  info.set_reason("QUOTA_UNAVAILABLE");
  info.set_domain(kErrorDomain);
  AttachDetail(status, info);
  return status;
}

}  // namespace turnpike
