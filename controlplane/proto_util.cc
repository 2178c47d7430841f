#include "controlplane/proto_util.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"

namespace turnpike::controlplane {
namespace {
constexpr char kTokenPrefix[] = "tp1:";
}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

absl::Status FromJson(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(json, message, opts);
  if (!s.ok()) {
    return absl::DataLossError(std::string("stored spec is not valid JSON for ") +
                               message->GetDescriptor()->full_name() + ": " +
                               std::string(s.message()));
  }
  return absl::OkStatus();
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  int64_t us = absl::ToUnixMicros(t);
  int64_t secs = us / 1000000;
  int64_t rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --secs;
  }
  ts.set_seconds(secs);
  ts.set_nanos(static_cast<int32_t>(rem * 1000));
  return ts;
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) {
    Violations v;
    v.Add("page_size", "must not be negative");
    return v.ToStatus();
  }
  if (requested == 0) return 100;
  return requested > 1000 ? 1000 : requested;
}

std::string EncodePageToken(const std::string& last_key) {
  std::string out;
  absl::WebSafeBase64Escape(kTokenPrefix + last_key, &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  if (token.empty()) return std::string();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || !absl::StartsWith(raw, kTokenPrefix)) {
    Violations v;
    v.Add("page_token", "is not a token returned by this API");
    return v.ToStatus();
  }
  return raw.substr(sizeof(kTokenPrefix) - 1);
}

}  // namespace turnpike::controlplane
