#include "server/grpc/authorizer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/string_view_compat.h"

namespace turnpike {
namespace {

absl::Status Unauthenticated(std::string_view message) {
  absl::Status status = absl::UnauthenticatedError(Absl(message));
  AttachReason(status, "UNAUTHENTICATED");
  return status;
}

}  // namespace

absl::StatusOr<Authorization> Authorize(const RuntimeConfig& config,
                                        const grpc::ServerContext& context,
                                        std::string_view capability) {
  const auto& metadata = context.client_metadata();
  auto range = metadata.equal_range("authorization");
  const CallerEntry* caller = nullptr;
  if (range.first != range.second) {
    if (std::next(range.first) != range.second) {
      return Unauthenticated("more than one authorization header");
    }
    absl::string_view value(range.first->second.data(), range.first->second.size());
    value = absl::StripAsciiWhitespace(value);
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      return Unauthenticated("authorization must be \"Bearer <key>\"");
    }
    absl::string_view key = absl::StripAsciiWhitespace(value.substr(7));
    caller = config.FindCallerByKey(Std(key));
    // The same message for every bad key: no oracle for which keys exist.
    if (caller == nullptr) return Unauthenticated("invalid API key");
  }
  const RouteEntry* route = config.FindRoute(capability);
  if (route == nullptr) {
    absl::Status status =
        absl::NotFoundError(absl::StrCat("no route for capability \"", Absl(capability), "\""));
    AttachReason(status, "CAPABILITY_NOT_FOUND");
    return status;
  }
  Authorization result;
  result.route = route;
  if (caller == nullptr) {
    if (!route->allow_unauthenticated) {
      return Unauthenticated("missing API key: send \"authorization: Bearer <key>\" metadata");
    }
    return result;
  }
  if (!caller->Allows(capability)) {
    absl::Status status = absl::PermissionDeniedError(absl::StrCat(
        "caller \"", caller->name, "\" may not use capability \"", Absl(capability), "\""));
    AttachReason(status, "CAPABILITY_NOT_ALLOWED");
    return status;
  }
  result.caller = caller->name;
  result.tier = caller->tier;
  return result;
}

}  // namespace turnpike
