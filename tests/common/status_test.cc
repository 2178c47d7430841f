// common/status.h: each helper once. Public details (type.googleapis.com/...) reach the client in
// grpc-status-details-bin; internal payloads never leave the process; rewriting a status's code
// or message keeps every detail.
#include "common/status.h"

#include "absl/strings/cord.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

constexpr char kInternalUrl[] = "turnpike.internal/test_marker";

google::rpc::Status DecodeDetails(const grpc::Status& status) {
  google::rpc::Status rpc;
  EXPECT_TRUE(rpc.ParseFromString(status.error_details()));
  return rpc;
}

TEST(StatusTest, AttachDetailIsPublicAndReplacesTheSameType) {
  absl::Status status = absl::InternalError("boom");
  google::rpc::ErrorInfo first;
  first.set_reason("FIRST");
  AttachDetail(status, first);
  google::rpc::ErrorInfo second;
  second.set_reason("SECOND");
  AttachDetail(status, second);
  EXPECT_TRUE(status.GetPayload("type.googleapis.com/google.rpc.ErrorInfo").has_value());
  EXPECT_EQ(GetDetail<google::rpc::ErrorInfo>(status)->reason(), "SECOND");
}

TEST(StatusTest, AttachDetailOnOkIsANoOp) {
  absl::Status status = absl::OkStatus();
  AttachReason(status, "IGNORED");
  EXPECT_TRUE(status.ok());
  EXPECT_FALSE(GetDetail<google::rpc::ErrorInfo>(status).has_value());
}

TEST(StatusTest, AttachReasonUsesTheProjectDomain) {
  absl::Status status = absl::UnauthenticatedError("no key");
  AttachReason(status, "UNAUTHENTICATED");
  std::optional<google::rpc::ErrorInfo> info = GetDetail<google::rpc::ErrorInfo>(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "UNAUTHENTICATED");
  EXPECT_EQ(info->domain(), kErrorDomain);
}

TEST(StatusTest, AttachRetryInfoSplitsSecondsAndNanos) {
  absl::Status status = absl::UnavailableError("later");
  AttachRetryInfo(status, 2500);
  std::optional<google::rpc::RetryInfo> retry = GetDetail<google::rpc::RetryInfo>(status);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 2);
  EXPECT_EQ(retry->retry_delay().nanos(), 500000000);
}

TEST(StatusTest, ErrorWithReason) {
  absl::Status status =
      ErrorWithReason(absl::StatusCode::kNotFound, "no such route", "ROUTE_NOT_FOUND");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such route");
  EXPECT_EQ(GetDetail<google::rpc::ErrorInfo>(status)->reason(), "ROUTE_NOT_FOUND");
}

TEST(StatusTest, InvalidFieldErrorNamesTheField) {
  absl::Status status = InvalidFieldError("messages[0].role", "is required");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "messages[0].role: is required");
  std::optional<google::rpc::BadRequest> bad = GetDetail<google::rpc::BadRequest>(status);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 1);
  EXPECT_EQ(bad->field_violations(0).field(), "messages[0].role");
  EXPECT_EQ(bad->field_violations(0).description(), "is required");
}

TEST(StatusTest, ViolationsReportEveryFieldAndNameTheFirst) {
  Violations v;
  EXPECT_TRUE(v.ToStatus().ok());
  v.Add("route.name", "is required");
  v.Add("route.spec.targets", "must not be empty");
  absl::Status status = v.ToStatus(absl::StatusCode::kFailedPrecondition, "snapshot: ");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "snapshot: route.name: is required (and 1 more)");
  std::optional<google::rpc::BadRequest> bad = GetDetail<google::rpc::BadRequest>(status);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 2);
  EXPECT_EQ(bad->field_violations(1).field(), "route.spec.targets");
}

TEST(StatusTest, WithCodeKeepsMessageAndEveryPayload) {
  absl::Status status = absl::DeadlineExceededError("no first token in 5s");
  AttachReason(status, "UPSTREAM_TIMEOUT");
  status.SetPayload(kInternalUrl, absl::Cord("marker"));
  absl::Status rewritten = WithCode(status, absl::StatusCode::kUnavailable);
  EXPECT_EQ(rewritten.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(rewritten.message(), "no first token in 5s");
  EXPECT_EQ(GetDetail<google::rpc::ErrorInfo>(rewritten)->reason(), "UPSTREAM_TIMEOUT");
  EXPECT_EQ(rewritten.GetPayload(kInternalUrl), absl::Cord("marker"));
  // OK stays OK; rewriting to OK gives a plain OK.
  EXPECT_TRUE(WithCode(absl::OkStatus(), absl::StatusCode::kInternal).ok());
  EXPECT_TRUE(WithCode(status, absl::StatusCode::kOk).ok());
}

TEST(StatusTest, WithMessageAndPrefixKeepCodeAndEveryPayload) {
  absl::Status status = absl::ResourceExhaustedError("quota");
  AttachRetryInfo(status, 1000);
  status.SetPayload(kInternalUrl, absl::Cord("marker"));
  absl::Status prefixed = WithMessagePrefix(status, "openai: ");
  EXPECT_EQ(prefixed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(prefixed.message(), "openai: quota");
  EXPECT_TRUE(GetDetail<google::rpc::RetryInfo>(prefixed).has_value());
  EXPECT_EQ(prefixed.GetPayload(kInternalUrl), absl::Cord("marker"));
  absl::Status replaced = WithMessage(status, "try later");
  EXPECT_EQ(replaced.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(replaced.message(), "try later");
  EXPECT_TRUE(GetDetail<google::rpc::RetryInfo>(replaced).has_value());
  EXPECT_TRUE(WithMessagePrefix(absl::OkStatus(), "x: ").ok());
}

TEST(StatusTest, ToGrpcStatusSendsPublicDetailsAndNeverInternalOnes) {
  absl::Status status = InvalidFieldError("top_p", "must be between 0 and 1");
  AttachReason(status, "INVALID_REQUEST");
  status.SetPayload(kInternalUrl, absl::Cord("secret-ish internal state"));
  grpc::Status out = ToGrpcStatus(status);
  EXPECT_EQ(out.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(out.error_message(), "top_p: must be between 0 and 1");
  google::rpc::Status rpc = DecodeDetails(out);
  EXPECT_EQ(rpc.code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(rpc.message(), out.error_message());
  ASSERT_EQ(rpc.details_size(), 2);
  for (const auto& any : rpc.details()) {
    EXPECT_NE(any.type_url(), kInternalUrl);
    EXPECT_EQ(any.type_url().rfind(kPublicDetailPrefix, 0), 0u) << any.type_url();
  }
  EXPECT_EQ(out.error_details().find("secret-ish"), std::string::npos);
}

TEST(StatusTest, ToGrpcStatusWithoutPublicDetailsHasNoDetailsBlob) {
  absl::Status status = absl::UnavailableError("down");
  status.SetPayload(kInternalUrl, absl::Cord("marker"));
  grpc::Status out = ToGrpcStatus(status);
  EXPECT_EQ(out.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(out.error_message(), "down");
  EXPECT_TRUE(out.error_details().empty());
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

// Details survive the whole path: a code rewrite, then the conversion to gRPC.
TEST(StatusTest, DetailsSurviveACodeRewriteOnTheWire) {
  absl::Status status = absl::DeadlineExceededError("stalled");
  AttachRetryInfo(status, 250);
  grpc::Status out = ToGrpcStatus(WithCode(status, absl::StatusCode::kUnavailable));
  EXPECT_EQ(out.error_code(), grpc::StatusCode::UNAVAILABLE);
  google::rpc::Status rpc = DecodeDetails(out);
  EXPECT_EQ(rpc.code(), static_cast<int>(absl::StatusCode::kUnavailable));
  ASSERT_EQ(rpc.details_size(), 1);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().nanos(), 250000000);
}

}  // namespace
}  // namespace turnpike
