#include "server/status_details.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_compat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace turnpike {
namespace {
constexpr absl::string_view kTypePrefix = "type.googleapis.com/";
}  // namespace

void AttachDetail(absl::Status& status, const google::protobuf::Message& detail) {
  status.SetPayload(absl::StrCat(kTypePrefix, detail.GetDescriptor()->full_name()),
                    absl::Cord(detail.SerializeAsString()));
}

absl::Status InvalidFieldError(std::string_view field, std::string_view description) {
  absl::Status status =
      absl::InvalidArgumentError(absl::StrCat(Absl(field), ": ", Absl(description)));
  google::rpc::BadRequest bad_request;
  auto* violation = bad_request.add_field_violations();
  violation->set_field(std::string(field));
  violation->set_description(std::string(description));
  AttachDetail(status, bad_request);
  return status;
}

void AttachReason(absl::Status& status, std::string_view reason) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(kErrorDomain);
  AttachDetail(status, info);
}

void AttachRetryInfo(absl::Status& status, int64_t retry_after_ms) {
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(retry_after_ms / 1000);
  retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>(retry_after_ms % 1000) * 1000000);
  AttachDetail(status, retry);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (!absl::StartsWith(type_url, kTypePrefix)) return;
    auto* any = rpc_status.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (rpc_status.details_size() == 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      rpc_status.SerializeAsString());
}

}  // namespace turnpike
