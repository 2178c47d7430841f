// The usage spool's files (server/usage/usage_spool_files.h) on a temporary directory: a frame
// written into a kept buffer is the same as FrameUsageRecord's, parsing stops at the first torn or
// corrupt frame, and segment files are listed by sequence under their prefix only.
#include "server/usage/usage_spool_files.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace turnpike {
namespace {

using usage_spool_files::FrameInto;
using usage_spool_files::ListSegments;
using usage_spool_files::ParseFrames;
using usage_spool_files::QuarantinedBytes;
using usage_spool_files::ReadFile;
using usage_spool_files::SegmentName;

usage::v1::UsageRecord Record(int i) {
  usage::v1::UsageRecord r;
  r.set_request_id(absl::StrCat("req-", i));
  r.set_cost_usd_micros(i);
  return r;
}

class UsageSpoolFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/turnpike-spool-files-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(absl::StrCat(dir_, "/", name), std::ios::binary) << bytes;
  }

  std::string dir_;
};

TEST_F(UsageSpoolFilesTest, AFrameInAKeptBufferIsTheSameAsFrameUsageRecords) {
  std::string buffer = "left over from the last record";
  FrameInto(Record(1), buffer);
  EXPECT_EQ(buffer, FrameUsageRecord(Record(1)));
  FrameInto(Record(2), buffer);
  EXPECT_EQ(buffer, FrameUsageRecord(Record(2)));
  // Length and CRC first, then the record's bytes.
  EXPECT_EQ(buffer.substr(8), Record(2).SerializeAsString());
}

TEST_F(UsageSpoolFilesTest, ParsingStopsAtTheFirstTornOrCorruptFrame) {
  const std::string first = FrameUsageRecord(Record(1));
  const std::string second = FrameUsageRecord(Record(2));
  std::vector<usage::v1::UsageRecord> records;
  EXPECT_EQ(ParseFrames(first + second, &records), first.size() + second.size());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].request_id(), "req-2");

  // Torn: the second frame lacks its last byte.
  records.clear();
  const std::string torn = first + second.substr(0, second.size() - 1);
  EXPECT_EQ(ParseFrames(torn, &records), first.size());
  EXPECT_EQ(records.size(), 1u);

  // Corrupt: a byte of the second record flipped, so its CRC no longer matches.
  std::string corrupt = first + second;
  corrupt.back() ^= 0x01;
  EXPECT_EQ(ParseFrames(corrupt, nullptr), first.size());
}

TEST_F(UsageSpoolFilesTest, SegmentsAreListedBySequenceUnderTheirPrefixOnly) {
  EXPECT_EQ(SegmentName("seg", 7), "seg-00000000000000000007.log");
  Write(SegmentName("seg", 12), "");
  Write(SegmentName("seg", 3), "");
  Write(SegmentName("open", 5), "");
  Write("seg-notanumber.log", "");
  Write("seg-00000000000000000009.tmp", "");
  const auto segments = ListSegments(dir_, "seg-");
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[0].first, 3u);
  EXPECT_EQ(segments[0].second, SegmentName("seg", 3));
  EXPECT_EQ(segments[1].first, 12u);
  EXPECT_TRUE(ListSegments(dir_ + "/missing", "seg-").empty());
}

TEST_F(UsageSpoolFilesTest, QuarantinedBytesCountOnlyBadSegments) {
  Write(SegmentName("bad", 1), std::string(100, 'x'));
  Write(SegmentName("bad", 2), std::string(23, 'x'));
  Write(SegmentName("seg", 3), std::string(1000, 'x'));
  EXPECT_EQ(QuarantinedBytes(dir_), 123u);
}

TEST_F(UsageSpoolFilesTest, ReadFileReturnsTheBytesOrNamesThePath) {
  Write("f", std::string("a\0b", 3));
  absl::StatusOr<std::string> data = ReadFile(dir_ + "/f");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, std::string("a\0b", 3));
  absl::StatusOr<std::string> missing = ReadFile(dir_ + "/missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(missing.status().message().find(dir_ + "/missing"), absl::string_view::npos);
}

}  // namespace
}  // namespace turnpike
