#include "server/usage/usage_shipper.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/thread_name.h"

namespace turnpike {

UsageShipper::UsageShipper(UsageSpool& spool, std::shared_ptr<grpc::Channel> channel,
                           Options options, Clock& clock)
    : spool_(spool),
      stub_(usage::v1::UsageService::NewStub(std::move(channel))),
      options_(options),
      clock_(clock) {
  thread_ = std::thread([this] {
    NameThisThread("tp-usage-ship");
    Run();
  });
}

UsageShipper::~UsageShipper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  }
  thread_.join();
}

UsageShipper::Stats UsageShipper::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool UsageShipper::Wait(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
  return !clock_.AwaitWithDeadline(mu_, absl::Condition(&stopping), clock_.MonotonicNow() + d);
}

void UsageShipper::Run() {
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<std::optional<UsageSpool::Segment>> next = spool_.NextSealed();
    absl::Status status = next.status();
    if (status.ok()) {
      absl::Time oldest = absl::InfiniteFuture();
      if (next->has_value()) {
        for (const usage::v1::UsageRecord& r : (*next)->records) {
          if (!r.has_start_time()) continue;
          oldest = std::min(oldest, absl::FromUnixSeconds(r.start_time().seconds()) +
                                        absl::Nanoseconds(r.start_time().nanos()));
        }
      }
      absl::MutexLock lock(&mu_);
      stats_.oldest_pending = oldest;
    }
    if (status.ok() && !next->has_value()) {
      if (!Wait(options_.poll_interval)) return;
      continue;
    }
    if (status.ok()) status = Ship(**next);
    if (status.ok()) {
      failures = 0;
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      ++stats_.failures;
      stats_.last_error = std::string(status.message());
    }
    const absl::Duration wait =
        FullJitterBackoff(options_.base_backoff, options_.max_backoff, failures++, bitgen_);
    if (!Wait(std::max(wait, absl::Milliseconds(1)))) return;
  }
}

absl::Status UsageShipper::Ship(const UsageSpool::Segment& segment) {
  const auto& records = segment.records;
  for (size_t start = 0; start < records.size(); start += options_.batch_records) {
    usage::v1::ReportUsageRequest request;
    const size_t end = std::min(records.size(), start + options_.batch_records);
    for (size_t i = start; i < end; ++i) *request.add_records() = records[i];
    usage::v1::ReportUsageResponse response;
    grpc::ClientContext context;
    // An RPC deadline is real time whatever clock paces the shipper.
    context.set_deadline(absl::ToChronoTime(Clock::Real().Now() + options_.rpc_timeout));
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("shipper stopping");
      in_flight_ = &context;
    }
    const grpc::Status status = stub_->ReportUsage(&context, request, &response);
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = nullptr;
    }
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      // Sending it again would be refused again: keep it aside, and move on.
      absl::StatusOr<std::string> bad = spool_.Quarantine(segment);
      if (!bad.ok()) {
        return absl::InternalError(
            absl::StrCat("cannot set aside ", segment.path, ": ", bad.status().message()));
      }
      absl::MutexLock lock(&mu_);
      stats_.quarantined += records.size();
      stats_.last_error = absl::StrCat("control plane refused usage records, kept in ", *bad, ": ",
                                       status.error_message());
      return absl::OkStatus();
    }
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "ReportUsage: ", status.error_message().empty() ? std::to_string(status.error_code())
                                                          : status.error_message()));
    }
    absl::MutexLock lock(&mu_);
    stats_.shipped += end - start;
    stats_.duplicates += response.duplicates();
    ++stats_.batches;
    stats_.last_error.clear();
  }
  return spool_.Remove(segment);
}

}  // namespace turnpike
