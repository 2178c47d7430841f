// UsageShipper sends the usage spool's sealed segments to the control plane
// (turnpike.usage.v1.UsageService/ReportUsage) in batches, oldest first, and removes a segment
// only after every batch of it was acknowledged. Delivery is at least once; the control plane
// skips records whose request id it already has, so a resend after a crash or a lost reply never
// counts twice. A control plane that is down is retried with jittered backoff, forever: nothing
// is dropped. A batch the control plane refuses as malformed (INVALID_ARGUMENT) would be refused
// again, so its segment is set aside as `bad-<n>.log` (kept on disk, counted, logged by main).
// Thread-safe: one shipper thread; stats() from any thread.
#ifndef TURNPIKE_SERVER_USAGE_USAGE_SHIPPER_H_
#define TURNPIKE_SERVER_USAGE_USAGE_SHIPPER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/channel.h"
#include "server/usage/usage_spool.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"

namespace turnpike {

class UsageShipper {
 public:
  struct Options {
    size_t batch_records = 500;
    absl::Duration rpc_timeout = absl::Seconds(10);
    // How often an empty spool is looked at again.
    absl::Duration poll_interval = absl::Milliseconds(100);
    absl::Duration base_backoff = absl::Milliseconds(200);
    absl::Duration max_backoff = absl::Seconds(10);
  };
  struct Stats {
    uint64_t shipped = 0;     // records acknowledged (new or duplicate)
    uint64_t duplicates = 0;  // of which the control plane already had
    uint64_t batches = 0;
    uint64_t failures = 0;     // failed ReportUsage calls (retried)
    uint64_t quarantined = 0;  // records set aside as refused
    std::string last_error;    // of the last failed call, empty after a success
    // When the oldest record not yet acknowledged started (its start_time, wall clock): the
    // first of the sealed segment being shipped; InfiniteFuture when no sealed segment waits.
    absl::Time oldest_pending = absl::InfiniteFuture();
  };

  // Starts the shipper thread. `spool` and `clock` must outlive the shipper.
  UsageShipper(UsageSpool& spool, std::shared_ptr<grpc::Channel> channel, Options options,
               Clock& clock);
  // Stops the thread (a call in flight is cancelled; its segment ships again next time).
  ~UsageShipper();

  Stats stats() const;

 private:
  void Run();
  // Ships one segment; OK once all of it was acknowledged.
  absl::Status Ship(const UsageSpool::Segment& segment);
  // Waits `d` on the clock unless stopping; false if stopping.
  bool Wait(absl::Duration d);

  // Constant after construction.
  UsageSpool& spool_;
  const std::unique_ptr<usage::v1::UsageService::Stub> stub_;
  const Options options_;
  Clock& clock_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::BitGen bitgen_;  // shipper thread only
  std::thread thread_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_USAGE_SHIPPER_H_
