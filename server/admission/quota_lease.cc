// The lease manager's round trips with the lease source for one Quota: asking for a lease or a
// top-up with a report, timing the answer, and releasing (quota.h has the contract; these run
// only on the lease manager's thread, docs/budgets.md and docs/limits.md say what they report).
#include "server/admission/quota.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "common/status.h"
#include "google/rpc/error_details.pb.h"

namespace turnpike {
namespace {

using budget::v1::AcquireLeaseRequest;
using budget::v1::AcquireLeaseResponse;

// A lease is trusted to admit until this long before the source's stated expiry, so that a
// slightly slow local clock never spends a lease the source already counts as lapsed.
constexpr absl::Duration kExpiryMargin = absl::Seconds(1);

// Seconds and nanos separately: a total budget's window ends in 9999, past what int64
// nanoseconds can hold.
absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

bool HasReason(const absl::Status& status, std::string_view reason) {
  std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(status);
  return info.has_value() && info->reason() == reason;
}

}  // namespace

absl::StatusOr<AcquireLeaseResponse> Quota::Ask(LeaseSource& source, Clock& clock,
                                                AcquireLeaseRequest request, absl::Time* sent_wall,
                                                absl::Time* sent_mono, absl::Time* answered_mono) {
  *request.mutable_quota() = id_;
  if (kind_ == Kind::kUsdMicros) {
    request.set_budget(id_.budget());
    request.set_requested_usd_micros(request.requested());
  }
  *sent_wall = clock.Now();
  *sent_mono = clock.MonotonicNow();
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<AcquireLeaseResponse> response = source.Acquire(request);
  *answered_mono = clock.MonotonicNow();
  if (response.ok()) {
    source_error_ = absl::OkStatus();
    remote_remaining_.store(response->remaining());
    window_end_hint_.store(ToNanos(FromProto(response->window_end())));
    const absl::Duration ttl = FromProto(response->expires_at()) - *sent_wall;
    if (ttl > absl::ZeroDuration()) heartbeat_ = std::max(ttl / 3, absl::Milliseconds(100));
  }
  return response;
}

absl::Time Quota::UsableUntil(const AcquireLeaseResponse& response, absl::Time sent_wall,
                              absl::Time sent_mono, absl::Time answered_mono) {
  // The source's times are wall times; measured from when the question left (the earliest the
  // source could have answered) and shortened by the round trip and a margin.
  const absl::Time expires = FromProto(response.expires_at());
  const absl::Time window_end = FromProto(response.window_end());
  const absl::Duration rtt = answered_mono - sent_mono;
  const absl::Time by_expiry = sent_mono + (expires - sent_wall) - rtt - kExpiryMargin;
  const absl::Time by_window = sent_mono + (window_end - sent_wall);
  return std::min(by_expiry, by_window);
}

bool Quota::Open(LeaseSource& source, Clock& clock, int64_t need) {
  int free_index = -1;
  for (int i = 0; i < kSlots; ++i) {
    if (!slots_[i].open && slots_[i].inflight.load() == 0) {
      free_index = i;
      break;
    }
  }
  if (free_index < 0) return false;  // every slot still has requests in flight
  AcquireLeaseRequest request;
  request.set_requested(SliceSize(need));
  request.set_minimum(std::max<int64_t>(need, 1));
  absl::Time sent_wall, sent_mono, answered_mono;
  absl::StatusOr<AcquireLeaseResponse> response =
      Ask(source, clock, std::move(request), &sent_wall, &sent_mono, &answered_mono);
  if (!response.ok()) {
    source_error_ = response.status();
    return false;
  }
  if (response->granted() <= 0 || response->lease_id().empty()) {
    exhausted_ = true;
    last_refused_ = answered_mono;
    return false;
  }
  exhausted_ = false;
  Slot& slot = slots_[free_index];
  slot.open = true;
  slot.lease_id = response->lease_id();
  slot.granted = response->granted();
  slot.window_end = FromProto(response->window_end());
  slot.last_heartbeat = sent_mono;
  slot.reserved.store(0);
  slot.spent.store(0);
  // The source counts the whole grant as spent until the first report; a budget's lease admits
  // from a hot part only, and reports at once so that the parked rest would return.
  const int64_t hot = std::min(response->granted(), HotCap(need));
  slot.parked.store(response->granted() - hot);
  slot.report_due = response->granted() > hot;
  const uint64_t generation = next_generation_++ & ((uint64_t{1} << (64 - kHeadroomBits)) - 1);
  const uint64_t headroom = std::min<uint64_t>(static_cast<uint64_t>(hot), kHeadroomMask);
  slot.word.store((generation << kHeadroomBits) | headroom);
  // Published last: a request that sees a usable lease sees all of it.
  slot.usable_until.store(ToNanos(UsableUntil(*response, sent_wall, sent_mono, answered_mono)));
  current_.store(free_index);
  SetLowMark(slot);
  return true;
}

bool Quota::Renew(LeaseSource& source, Clock& clock, Slot& slot, int64_t want, int64_t minimum,
                  int64_t hot_need) {
  const int64_t parked = slot.parked.load();
  const int64_t unpark = std::min(
      parked, std::max<int64_t>(0, HotCap(hot_need) - static_cast<int64_t>(Headroom(slot))));
  const int64_t spent = slot.spent.load();
  AcquireLeaseRequest request;
  request.set_lease_id(slot.lease_id);
  request.set_requested(want);
  request.set_minimum(minimum);
  request.set_spent(spent);
  // Reported ahead: all of the grant not yet settled and not parked once this report is
  // answered. It covers the requests in flight and everything the hot path can admit before the
  // next report (spent only grows, so reading it first over-counts, never under-counts).
  request.set_reserved(std::max<int64_t>(0, slot.granted - (parked - unpark) - spent));
  absl::Time sent_wall, sent_mono, answered_mono;
  absl::StatusOr<AcquireLeaseResponse> response =
      Ask(source, clock, std::move(request), &sent_wall, &sent_mono, &answered_mono);
  if (!response.ok()) {
    if (HasReason(response.status(), "LEASE_EXPIRED") ||
        HasReason(response.status(), "LEASE_WINDOW_ENDED") ||
        response.status().code() == absl::StatusCode::kNotFound) {
      return false;  // the lease is over; it is released once its requests settle
    }
    source_error_ = response.status();
    return true;  // unreachable source: keep spending the lease until it lapses
  }
  slot.last_heartbeat = sent_mono;
  slot.report_due = false;
  if (unpark > 0) {
    slot.parked.store(parked - unpark);
    AddHeadroom(slot, unpark);
  }
  const int64_t granted = response->granted();
  if (granted > 0) {
    // The source counts a top-up as spent until the next report: a budget parks it and reports
    // again, so it would return if the gateway died.
    slot.granted += granted;
    if (park_) {
      slot.parked.fetch_add(granted);
      slot.report_due = true;
    } else {
      AddHeadroom(slot, granted);
    }
  }
  exhausted_ = minimum > 0 && granted < minimum;
  if (exhausted_) last_refused_ = answered_mono;
  slot.usable_until.store(ToNanos(UsableUntil(*response, sent_wall, sent_mono, answered_mono)));
  SetLowMark(slot);
  return true;
}

bool Quota::ReleaseSlot(LeaseSource& source, Slot& slot, int64_t spent) {
  budget::v1::ReleaseLeaseRequest request;
  request.set_lease_id(slot.lease_id);
  request.set_spent(spent);
  if (kind_ == Kind::kUsdMicros) request.set_spent_usd_micros(spent);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> response = source.Release(request);
  if (!response.ok() &&
      (absl::IsUnavailable(response.status()) || absl::IsDeadlineExceeded(response.status()))) {
    return false;  // try again later
  }
  slot.open = false;
  slot.usable_until.store(0);
  return true;
}

bool Quota::ReleaseAll(LeaseSource& source, bool source_answers) {
  std::deque<Waiter> waiters;
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters.swap(waiters_);
  }
  for (Waiter& waiter : waiters) {
    waiter.done(absl::UnavailableError("the gateway is shutting down"));
  }
  current_.store(-1);
  for (Slot& slot : slots_) {
    slot.usable_until.store(0);
    // Anything still in flight at shutdown is reported as spent (the safe side).
    if (slot.open && source_answers) {
      source_answers = ReleaseSlot(source, slot, slot.spent.load() + slot.reserved.load());
    }
  }
  return source_answers;
}

}  // namespace turnpike
