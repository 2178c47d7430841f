// ParseRetryHeader: every header form a provider sends, with the wall time passed in.
#include "server/upstream/retry_after.h"

#include "gtest/gtest.h"

namespace turnpike {
namespace {

// Wed, 21 Oct 2015 07:28:00 GMT (RFC 9110's example date).
const absl::Time kNow = absl::FromUnixSeconds(1445412480);

int64_t Parse(absl::string_view line, int64_t so_far = 0) {
  return ParseRetryHeader(line, kNow, so_far);
}

TEST(RetryAfterTest, RetryAfterMs) {
  EXPECT_EQ(Parse("retry-after-ms: 1500\r\n"), 1500);
  EXPECT_EQ(Parse("Retry-After-Ms:250"), 250);
}

TEST(RetryAfterTest, DeltaSeconds) {
  EXPECT_EQ(Parse("Retry-After: 2\r\n"), 2000);
  EXPECT_EQ(Parse("retry-after: 0"), 0);
}

TEST(RetryAfterTest, FractionsAreTruncatedToMilliseconds) {
  EXPECT_EQ(Parse("retry-after: 1.5"), 1500);
  EXPECT_EQ(Parse("retry-after: 0.0005"), 0);
  EXPECT_EQ(Parse("retry-after-ms: 12.9"), 12);
}

TEST(RetryAfterTest, NegativeValuesAreIgnored) {
  EXPECT_EQ(Parse("retry-after: -3"), 0);
  EXPECT_EQ(Parse("retry-after-ms: -100"), 0);
  EXPECT_EQ(Parse("retry-after-ms: -100", 700), 700);
}

TEST(RetryAfterTest, HttpDateInTheFutureIsMeasuredFromNow) {
  EXPECT_EQ(Parse("Retry-After: Wed, 21 Oct 2015 07:28:30 GMT\r\n"), 30000);
}

TEST(RetryAfterTest, HttpDateInThePastMeansNoWait) {
  EXPECT_EQ(Parse("Retry-After: Wed, 21 Oct 2015 07:27:00 GMT"), 0);
  EXPECT_EQ(Parse("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT"), 0);
}

TEST(RetryAfterTest, GarbageLeavesTheHintUnchanged) {
  EXPECT_EQ(Parse("retry-after: soon"), 0);
  EXPECT_EQ(Parse("retry-after-ms: 5s", 40), 40);
  EXPECT_EQ(Parse("retry-after: nan"), 0);
  EXPECT_EQ(Parse("retry-after"), 0);
  EXPECT_EQ(Parse(""), 0);
  EXPECT_EQ(Parse("content-type: application/json", 40), 40);
  EXPECT_EQ(Parse("x-retry-after: 9"), 0);
}

TEST(RetryAfterTest, HugeValuesAreClamped) {
  EXPECT_EQ(Parse("retry-after: inf"), kMaxRetryAfterMs);
  EXPECT_EQ(Parse("retry-after-ms: 1e300"), kMaxRetryAfterMs);
}

TEST(RetryAfterTest, RetryAfterMsTakesPrecedenceInEitherOrder) {
  // retry-after-ms first: a later retry-after does not replace it.
  EXPECT_EQ(Parse("retry-after: 5", Parse("retry-after-ms: 1200")), 1200);
  // retry-after first: a later retry-after-ms replaces it.
  EXPECT_EQ(Parse("retry-after-ms: 1200", Parse("retry-after: 5")), 1200);
}

}  // namespace
}  // namespace turnpike
