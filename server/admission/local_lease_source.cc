#include "server/admission/local_lease_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace turnpike {
namespace {

// Seconds and nanos separately: a total budget's window ends in 9999 (TotalWindowEnd), past what
// int64 nanoseconds can hold.
google::protobuf::Timestamp ToProto(absl::Time t) {
  if (t > TotalWindowEnd()) t = TotalWindowEnd();
  google::protobuf::Timestamp out;
  const int64_t seconds = absl::ToUnixSeconds(t);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  return out;
}

}  // namespace

std::string QuotaKey(const budget::v1::Quota& quota) {
  if (!quota.budget().empty()) return absl::StrCat("budget/", quota.budget());
  const char* unit = quota.unit() == budget::v1::QUOTA_UNIT_TOKENS ? "tokens/" : "requests/";
  return absl::StrCat(unit, quota.rate_limit(), "/", quota.key());
}

LocalLeaseSource::LocalLeaseSource(SpecLookup spec, Clock& clock, absl::Duration ttl)
    : spec_(std::move(spec)), clock_(clock), ttl_(ttl) {}

void LocalLeaseSource::ExpireLocked(absl::Time now) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    Counter& c = counters_[it->second.counter];
    c.leased -= it->second.granted;
    c.settled += it->second.spent + it->second.reserved;  // in flight counts as spent
    it = leases_.erase(it);
  }
  // Past windows with no live lease are over for good (a new window is a new counter).
  absl::erase_if(counters_, [now](const auto& entry) {
    return entry.second.leased == 0 && entry.second.window_end <= now;
  });
}

absl::StatusOr<budget::v1::AcquireLeaseResponse> LocalLeaseSource::Acquire(
    const budget::v1::AcquireLeaseRequest& request) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  ExpireLocked(now);
  Lease* lease = nullptr;
  if (!request.lease_id().empty()) {
    auto it = leases_.find(request.lease_id());
    if (it == leases_.end()) {
      absl::Status status = absl::FailedPreconditionError("lease expired");
      AttachReason(status, "LEASE_EXPIRED");
      return status;
    }
    lease = &it->second;
    if (now >= lease->window_end) {
      absl::Status status = absl::FailedPreconditionError("the lease's window has ended");
      AttachReason(status, "LEASE_WINDOW_ENDED");
      return status;
    }
    lease->spent = request.spent();
    lease->reserved = request.reserved();
    lease->expires = now + ttl_;
  }
  absl::StatusOr<QuotaSpec> spec = spec_(request.quota(), now);
  if (!spec.ok()) return spec.status();
  const std::string counter_key =
      absl::StrCat(QuotaKey(request.quota()), "@", absl::ToUnixSeconds(spec->window.start));
  Counter& counter = counters_[counter_key];
  counter.window_end = spec->window.end;
  const int64_t available = std::max<int64_t>(0, spec->limit - counter.settled - counter.leased);
  int64_t granted = std::min(request.requested(), available);
  if (granted < request.minimum() || granted <= 0) granted = 0;
  budget::v1::AcquireLeaseResponse response;
  if (lease == nullptr && granted > 0) {
    const std::string id = absl::StrCat("local-", next_id_++);
    lease = &leases_[id];
    lease->counter = counter_key;
    lease->window_end = spec->window.end;
    response.set_lease_id(id);
  } else if (lease != nullptr) {
    response.set_lease_id(request.lease_id());
  }
  counter.leased += granted;
  if (lease != nullptr) {
    lease->granted += granted;
    lease->reserved += granted;  // counted in full until the next report (docs/budgets.md)
    lease->expires = now + ttl_;
    response.set_lease_total(lease->granted);
    *response.mutable_expires_at() = ToProto(lease->expires);
  }
  response.set_granted(granted);
  if (!request.quota().budget().empty()) response.set_granted_usd_micros(granted);
  *response.mutable_window_start() = ToProto(spec->window.start);
  *response.mutable_window_end() = ToProto(spec->window.end);
  response.set_limit(spec->limit);
  response.set_remaining(std::max<int64_t>(0, spec->limit - counter.settled - counter.leased));
  return response;
}

absl::StatusOr<budget::v1::ReleaseLeaseResponse> LocalLeaseSource::Release(
    const budget::v1::ReleaseLeaseRequest& request) {
  absl::MutexLock lock(&mu_);
  ExpireLocked(clock_.Now());
  budget::v1::ReleaseLeaseResponse response;
  auto it = leases_.find(request.lease_id());
  if (it == leases_.end()) return response;  // released or expired already: nothing to return
  Counter& c = counters_[it->second.counter];
  c.leased -= it->second.granted;
  c.settled += request.spent();
  leases_.erase(it);
  return response;
}

}  // namespace turnpike
