// Small conversions between protos and what the store keeps: compact proto3 JSON for specs and
// audit entries, Timestamps from absl::Time, and opaque page tokens. Stateless; thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_PROTO_UTIL_H_
#define TURNPIKE_CONTROLPLANE_PROTO_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace turnpike::controlplane {

// Compact proto3 JSON with the proto field names (what the database and audit log hold).
std::string ToJson(const google::protobuf::Message& message);
// Parses what ToJson wrote; unknown fields (from a newer binary) are ignored.
absl::Status FromJson(const std::string& json, google::protobuf::Message* message);

google::protobuf::Timestamp ToTimestamp(absl::Time t);

// Page sizes: default 100, maximum 1,000; negative is INVALID_ARGUMENT.
absl::StatusOr<int> PageSize(int requested);
// Opaque page tokens carrying the last key returned.
std::string EncodePageToken(const std::string& last_key);
// INVALID_ARGUMENT (field page_token) if the token was not made by EncodePageToken.
absl::StatusOr<std::string> DecodePageToken(const std::string& token);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_PROTO_UTIL_H_
