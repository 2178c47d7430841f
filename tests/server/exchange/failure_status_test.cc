// What a caller is told when its request fails (server/exchange/failure_status.h), on hand-built
// routes: provider text redacted unless the route opted in to FULL, the give-up status with its
// retry hint, and the details a failure carries (ProviderError, the several-targets rewrite, the
// PartialCompletion with the usage after the commit point). The attempt driver's end-to-end
// tests (attempt_driver_test.cc) exercise the same functions through a fake transport.
#include "server/exchange/failure_status.h"

#include <optional>
#include <string>

#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/providers/provider_adapter.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {
namespace {

ProviderError RateLimited(std::string message, int64_t retry_after_ms) {
  ProviderError error;
  error.error_class = ProviderErrorClass::kRateLimited;
  error.http_status = 429;
  error.type = "rate_limit_error";
  error.message = std::move(message);
  error.retry_after_ms = retry_after_ms;
  return error;
}

class FailureStatusTest : public ::testing::Test {
 protected:
  FailureStatusTest() {
    provider_.name = "openai";
    route_.capability = "chat";
    target_.provider = &provider_;
    target_.model = "gpt";
    route_.content_policy = config::v1::CONTENT_POLICY_REDACTED;
  }

  ProviderEntry provider_;
  TargetEntry target_;
  RouteEntry route_;
};

TEST_F(FailureStatusTest, ProviderTextIsRedactedUnlessTheRouteAllowsFullContent) {
  const absl::Status leaked = ProviderErrorStatus(RateLimited("slow down, alice@example.com", 0));
  const absl::Status redacted = RedactProviderText(leaked, route_);
  EXPECT_EQ(redacted.code(), leaked.code());
  EXPECT_EQ(std::string(redacted.message()).find("alice@example.com"), std::string::npos);
  std::optional<ProviderError> error = ProviderErrorFromStatus(redacted);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message.find("alice@example.com"), std::string::npos) << error->message;
  EXPECT_EQ(error->type, "rate_limit_error");

  route_.content_policy = config::v1::CONTENT_POLICY_FULL;
  EXPECT_EQ(RedactProviderText(leaked, route_), leaked);
  // A status the gateway wrote itself (no provider payload, not INTERNAL) is left alone.
  route_.content_policy = config::v1::CONTENT_POLICY_REDACTED;
  const absl::Status own = absl::UnavailableError("bob@example.com");
  EXPECT_EQ(RedactProviderText(own, route_), own);
}

TEST_F(FailureStatusTest, GivingUpWithoutAnAttemptIsUnavailableWithTheRetryHint) {
  const absl::Status status =
      GiveUpStatus(absl::OkStatus(), route_, /*availability_failure=*/true, absl::Seconds(2));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "no target of capability \"chat\" is available now");
  std::optional<google::rpc::RetryInfo> retry = GetDetail<google::rpc::RetryInfo>(status);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 2);
}

TEST_F(FailureStatusTest, ForcedUnavailableAndTheProvidersRetryAfterWins) {
  route_.degradation.force_unavailable = true;
  const absl::Status internal = absl::InternalError("bad payload");
  EXPECT_EQ(GiveUpStatus(internal, route_, true, absl::ZeroDuration()).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(GiveUpStatus(internal, route_, false, absl::ZeroDuration()).code(),
            absl::StatusCode::kInternal);
  // The provider said when to come back: the gateway's hint does not replace it.
  const absl::Status limited = ProviderErrorStatus(RateLimited("later", 5000));
  const absl::Status status = GiveUpStatus(limited, route_, true, absl::Seconds(1));
  EXPECT_FALSE(GetDetail<google::rpc::RetryInfo>(status).has_value());
}

TEST_F(FailureStatusTest, OneProvidersErrorIsNamedAndCarriesItsDetails) {
  FailureFacts facts;
  facts.caller_deadline_passed = false;
  facts.target = &target_;
  facts.targets_involved = 1;
  const absl::Status status = DecorateFailure(ProviderErrorStatus(RateLimited("later", 3000)),
                                              facts, route_, RequestFinished{});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(std::string(status.message()).rfind("openai: ", 0), 0u) << status.message();
  std::optional<v1::ProviderError> detail = GetDetail<v1::ProviderError>(status);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->provider(), "openai");
  EXPECT_EQ(detail->model(), "gpt");
  EXPECT_EQ(detail->retry_after_ms(), 3000);
  std::optional<google::rpc::RetryInfo> retry = GetDetail<google::rpc::RetryInfo>(status);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 3);
  EXPECT_TRUE(GetDetail<v1::PartialCompletion>(status).has_value());
}

TEST_F(FailureStatusTest, SeveralTargetsFailedIsUnavailableUnlessTheRequestWasWrong) {
  FailureFacts facts;
  facts.target = &target_;
  facts.targets_involved = 2;
  google::protobuf::RepeatedPtrField<v1::Attempt> attempts;
  attempts.Add()->set_provider("openai");
  attempts.Add()->set_provider("anthropic");
  facts.attempts = &attempts;
  const absl::Status status = DecorateFailure(ProviderErrorStatus(RateLimited("later", 0)), facts,
                                              route_, RequestFinished{});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      std::string(status.message()).rfind("all 2 targets of \"chat\" failed; last: openai: ", 0),
      0u)
      << status.message();
  std::optional<v1::PartialCompletion> partial = GetDetail<v1::PartialCompletion>(status);
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->attempts_size(), 2);
  EXPECT_FALSE(partial->has_usage());

  EXPECT_EQ(
      DecorateFailure(absl::InvalidArgumentError("bad"), facts, route_, RequestFinished{}).code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(FailureStatusTest, AnUpstreamTimeoutIsUnavailableUnlessTheCallersDeadlinePassed) {
  FailureFacts facts;
  const absl::Status timeout = absl::DeadlineExceededError("upstream sent no token");
  EXPECT_EQ(DecorateFailure(timeout, facts, route_, RequestFinished{}).code(),
            absl::StatusCode::kUnavailable);
  facts.caller_deadline_passed = true;
  EXPECT_EQ(DecorateFailure(timeout, facts, route_, RequestFinished{}).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(FailureStatusTest, AfterTheCommitPointThePartialCompletionCarriesTheUsage) {
  FailureFacts facts;
  facts.target = &target_;
  facts.targets_involved = 2;
  facts.committed = true;
  RequestFinished event;
  event.input_tokens = 11;
  event.output_tokens = 7;
  event.cost_usd_micros = 42;
  const absl::Status status = DecorateFailure(
      absl::UnavailableError("upstream stream interrupted: reset"), facts, route_, event);
  // Committed: the code is the attempt's own, not the several-targets rewrite.
  EXPECT_EQ(status.message(), "upstream stream interrupted: reset");
  std::optional<v1::PartialCompletion> partial = GetDetail<v1::PartialCompletion>(status);
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->usage().input_tokens(), 11);
  EXPECT_EQ(partial->usage().output_tokens(), 7);
  EXPECT_EQ(partial->usage().cost_usd_micros(), 42);
}

}  // namespace
}  // namespace turnpike
