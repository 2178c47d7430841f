#include "common/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_compat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace turnpike {
namespace {

// A status with `code` and `message` carrying every payload of `from`.
absl::Status Rebuild(const absl::Status& from, absl::StatusCode code, std::string_view message) {
  absl::Status out(code, Absl(message));
  from.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace

std::string DetailTypeUrl(const google::protobuf::Message& message) {
  return absl::StrCat(kPublicDetailPrefix, message.GetDescriptor()->full_name());
}

void AttachDetail(absl::Status& status, const google::protobuf::Message& detail) {
  if (status.ok()) return;
  status.SetPayload(DetailTypeUrl(detail), absl::Cord(detail.SerializeAsString()));
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

absl::Status ErrorWithReason(absl::StatusCode code, std::string_view message,
                             std::string_view reason) {
  absl::Status status(code, Absl(message));
  AttachReason(status, reason);
  return status;
}

absl::Status InvalidFieldError(std::string_view field, std::string_view description) {
  Violations v;
  v.Add(std::string(field), std::string(description));
  return v.ToStatus();
}

absl::Status Violations::ToStatus(absl::StatusCode code, std::string_view message_prefix) const {
  if (items_.empty()) return absl::OkStatus();
  std::string message = absl::StrCat(Absl(message_prefix), items_[0].first, ": ", items_[0].second);
  if (items_.size() > 1) absl::StrAppend(&message, " (and ", items_.size() - 1, " more)");
  absl::Status status(code, message);
  google::rpc::BadRequest bad_request;
  for (const auto& [field, description] : items_) {
    auto* violation = bad_request.add_field_violations();
    violation->set_field(field);
    violation->set_description(description);
  }
  AttachDetail(status, bad_request);
  return status;
}

absl::Status WithCode(const absl::Status& status, absl::StatusCode code) {
  if (status.ok() || status.code() == code) return status;
  return Rebuild(status, code, Std(status.message()));
}

absl::Status WithMessage(const absl::Status& status, std::string_view message) {
  if (status.ok()) return status;
  return Rebuild(status, status.code(), message);
}

absl::Status WithMessagePrefix(const absl::Status& status, std::string_view prefix) {
  if (status.ok() || prefix.empty()) return status;
  return Rebuild(status, status.code(), absl::StrCat(Absl(prefix), status.message()));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (!absl::StartsWith(type_url, kPublicDetailPrefix)) return;
    auto* any = rpc_status.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (rpc_status.details_size() == 0) return grpc::Status(code, std::string(status.message()));
  return grpc::Status(code, std::string(status.message()), rpc_status.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status rpc_status;
  if (!status.error_details().empty() && rpc_status.ParseFromString(status.error_details())) {
    for (const auto& any : rpc_status.details()) {
      if (!absl::StartsWith(any.type_url(), kPublicDetailPrefix)) continue;
      out.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return out;
}

}  // namespace turnpike
