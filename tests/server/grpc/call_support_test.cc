// What every call shares: the W3C trace id of `traceparent`, sorted tags.
#include "server/grpc/call_support.h"

#include "gtest/gtest.h"

namespace turnpike {
namespace {

TEST(TraceIdTest, TakesTheTraceIdOfAValidTraceparent) {
  EXPECT_EQ(TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may append fields.
  EXPECT_EQ(TraceIdOf("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceIdTest, RefusesMalformedValues) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // all-zero id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // invalid version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with extra
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
       }) {
    EXPECT_EQ(TraceIdOf(bad), "") << bad;
  }
}

TEST(SortedTagsTest, SortsByKey) {
  google::protobuf::Map<std::string, std::string> tags;
  tags["team"] = "claims";
  tags["env"] = "prod";
  tags["app"] = "x";
  const auto sorted = SortedTags(tags);
  ASSERT_EQ(sorted.size(), 3u);
  EXPECT_EQ(sorted[0].first, "app");
  EXPECT_EQ(sorted[1].first, "env");
  EXPECT_EQ(sorted[2].first, "team");
  EXPECT_EQ(sorted[2].second, "claims");
}

}  // namespace
}  // namespace turnpike
