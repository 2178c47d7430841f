#include "server/admission/control_plane_lease_source.h"

#include "common/status.h"

namespace turnpike {

void ControlPlaneLeaseSource::SetChannel(std::shared_ptr<grpc::Channel> channel) {
  auto stub = std::make_shared<budget::v1::BudgetService::Stub>(std::move(channel));
  absl::MutexLock lock(&mu_);
  stub_ = std::move(stub);
}

std::shared_ptr<budget::v1::BudgetService::Stub> ControlPlaneLeaseSource::stub() const {
  absl::MutexLock lock(&mu_);
  return stub_;
}

void ControlPlaneLeaseSource::Prepare(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  if (options_.decorate) options_.decorate(context);
}

absl::StatusOr<budget::v1::AcquireLeaseResponse> ControlPlaneLeaseSource::Acquire(
    const budget::v1::AcquireLeaseRequest& request) {
  std::shared_ptr<budget::v1::BudgetService::Stub> s = stub();
  if (s == nullptr) return absl::UnavailableError("not connected to the control plane yet");
  budget::v1::AcquireLeaseRequest with_node = request;
  with_node.set_node_id(options_.node_id);
  grpc::ClientContext context;
  Prepare(context);
  budget::v1::AcquireLeaseResponse response;
  grpc::Status status = s->AcquireLease(&context, with_node, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<budget::v1::ReleaseLeaseResponse> ControlPlaneLeaseSource::Release(
    const budget::v1::ReleaseLeaseRequest& request) {
  std::shared_ptr<budget::v1::BudgetService::Stub> s = stub();
  if (s == nullptr) return absl::UnavailableError("not connected to the control plane yet");
  budget::v1::ReleaseLeaseRequest with_node = request;
  with_node.set_node_id(options_.node_id);
  grpc::ClientContext context;
  Prepare(context);
  budget::v1::ReleaseLeaseResponse response;
  grpc::Status status = s->ReleaseLease(&context, with_node, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace turnpike
