// Leases from the control plane's BudgetService over the gateway's channel to it: every gateway
// of a fleet carves its slices from the same ledger, so a limit means the same with one gateway
// or forty (docs/limits.md). The channel is set once the watch stream has one; until then, and
// whenever the control plane does not answer within the deadline, calls fail UNAVAILABLE and the
// quota keeps spending its lease until it lapses. Thread-safe.
#ifndef TURNPIKE_SERVER_ADMISSION_CONTROL_PLANE_LEASE_SOURCE_H_
#define TURNPIKE_SERVER_ADMISSION_CONTROL_PLANE_LEASE_SOURCE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "server/admission/lease_source.h"
#include "turnpike/budget/v1/budget.grpc.pb.h"

namespace turnpike {

class ControlPlaneLeaseSource final : public LeaseSource {
 public:
  struct Options {
    std::string node_id;
    // Longest one lease round trip may take.
    absl::Duration deadline = absl::Seconds(2);
    // Decorates each call (credentials); optional.
    std::function<void(grpc::ClientContext&)> decorate;
  };
  explicit ControlPlaneLeaseSource(Options options) : options_(std::move(options)) {}

  void SetChannel(std::shared_ptr<grpc::Channel> channel);

  absl::StatusOr<budget::v1::AcquireLeaseResponse> Acquire(
      const budget::v1::AcquireLeaseRequest& request) override;
  absl::StatusOr<budget::v1::ReleaseLeaseResponse> Release(
      const budget::v1::ReleaseLeaseRequest& request) override;

 private:
  std::shared_ptr<budget::v1::BudgetService::Stub> stub() const;
  void Prepare(grpc::ClientContext& context) const;

  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<budget::v1::BudgetService::Stub> stub_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_CONTROL_PLANE_LEASE_SOURCE_H_
