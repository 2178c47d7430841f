#include "controlplane/errors.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace turnpike::controlplane {
namespace {

constexpr char kTypePrefix[] = "type.googleapis.com/";
constexpr char kDomain[] = "turnpike.dev";

}  // namespace

absl::Status Violations::ToStatus(absl::StatusCode code, const std::string& message_prefix) const {
  if (items_.empty()) return absl::OkStatus();
  std::string msg = absl::StrCat(message_prefix, items_[0].first, ": ", items_[0].second);
  if (items_.size() > 1) absl::StrAppend(&msg, " (and ", items_.size() - 1, " more)");
  absl::Status s(code, msg);
  google::rpc::BadRequest br;
  for (const auto& [field, description] : items_) {
    auto* v = br.add_field_violations();
    v->set_field(field);
    v->set_description(description);
  }
  AttachDetail(s, br);
  return s;
}

void AttachDetail(absl::Status& status, const google::protobuf::Message& detail) {
  if (status.ok()) return;
  status.SetPayload(absl::StrCat(kTypePrefix, detail.GetDescriptor()->full_name()),
                    absl::Cord(detail.SerializeAsString()));
}

void AttachReason(absl::Status& status, const std::string& reason) {
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain(kDomain);
  AttachDetail(status, info);
}

absl::Status ErrorWithReason(absl::StatusCode code, const std::string& message,
                             const std::string& reason) {
  absl::Status s(code, message);
  AttachReason(s, reason);
  return s;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(std::string(status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    if (!absl::StartsWith(url, kTypePrefix)) return;
    auto* any = rpc.add_details();
    any->set_type_url(std::string(url));
    any->set_value(std::string(payload));
  });
  if (rpc.details_size() == 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      rpc.SerializeAsString());
}

}  // namespace turnpike::controlplane
