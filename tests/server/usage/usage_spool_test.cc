// The gateway's usage spool on real files: group commit on the injected clock, sealing, crash
// recovery (a torn tail is cut, whole records are kept), the bound, and restart.
#include "server/usage/usage_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "server/usage/usage_spool_files.h"

namespace turnpike {
namespace {

usage::v1::UsageRecord Record(int i) {
  usage::v1::UsageRecord r;
  r.set_request_id(absl::StrCat("req-", i));
  r.set_capability("cap");
  r.set_cost_usd_micros(i);
  return r;
}

// Waits (real time, bounded) for `cond`.
template <typename F>
bool Eventually(F cond) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return cond();
}

class UsageSpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/turnpike-spool-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<UsageSpool> Open(size_t max_bytes = 1 << 20) {
    UsageSpool::Options options;
    options.dir = dir_;
    options.commit_interval = absl::Milliseconds(20);
    options.seal_after = absl::Milliseconds(500);
    options.max_bytes = max_bytes;
    auto spool = UsageSpool::Open(options, clock_);
    EXPECT_TRUE(spool.ok()) << spool.status();
    return spool.ok() ? *std::move(spool) : nullptr;
  }
  // The segment files.
  std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  SimulatedClock clock_;
  std::string dir_;
};

TEST_F(UsageSpoolTest, RecordsBecomeDurableAtTheGroupCommitAndShipOnceSealed) {
  auto spool = Open();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(spool->Append(Record(i)));
  // Nothing is written before the commit interval has passed on the spool's clock.
  EXPECT_EQ(spool->stats().durable, 0u);
  clock_.Advance(absl::Milliseconds(20));
  ASSERT_TRUE(Eventually([&] { return spool->stats().durable == 3; }));
  // Durable, but the segment is still open: the shipper sees nothing yet.
  auto none = spool->NextSealed();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  clock_.Advance(absl::Milliseconds(500));
  std::optional<UsageSpool::Segment> sealed;
  ASSERT_TRUE(Eventually([&] {
    auto next = spool->NextSealed();
    if (next.ok() && next->has_value()) sealed = **next;
    return sealed.has_value();
  }));
  ASSERT_EQ(sealed->records.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sealed->records[i].request_id(), absl::StrCat("req-", i));
  ASSERT_TRUE(spool->Remove(*sealed).ok());
  EXPECT_EQ(spool->stats().removed, 3u);
  EXPECT_EQ(spool->stats().bytes, 0u);
  EXPECT_TRUE(Files().empty());
}

TEST_F(UsageSpoolTest, AKilledWritersSegmentKeepsWholeRecordsAndLosesOnlyTheTornTail) {
  // What a process killed mid-write leaves: an open segment with two whole records and half of
  // a third.
  std::string data = FrameUsageRecord(Record(1)) + FrameUsageRecord(Record(2));
  const std::string third = FrameUsageRecord(Record(3));
  data += third.substr(0, third.size() / 2);
  {
    std::ofstream out(absl::StrFormat("%s/open-%020d.log", dir_, 7), std::ios::binary);
    out << data;
  }
  auto spool = Open();
  EXPECT_EQ(spool->stats().recovered, 2u);
  EXPECT_EQ(spool->stats().truncated_bytes, third.size() / 2);
  auto next = spool->NextSealed();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  ASSERT_EQ((*next)->records.size(), 2u);
  EXPECT_EQ((*next)->records[1].request_id(), "req-2");
  // New records go to a later segment, after the recovered one.
  ASSERT_TRUE(spool->Append(Record(4)));
  spool->Flush();
  EXPECT_EQ(Files().size(), 2u);
  EXPECT_EQ((*spool->NextSealed())->sequence, 7u);
}

TEST_F(UsageSpoolTest, ACorruptRecordEndsTheSegmentThere) {
  std::string first = FrameUsageRecord(Record(1));
  std::string second = FrameUsageRecord(Record(2));
  second[second.size() - 1] ^= 0x5a;  // fails its checksum
  {
    std::ofstream out(absl::StrFormat("%s/open-%020d.log", dir_, 1), std::ios::binary);
    out << first << second;
  }
  auto spool = Open();
  EXPECT_EQ(spool->stats().recovered, 1u);
  EXPECT_EQ(spool->stats().truncated_bytes, second.size());
}

TEST_F(UsageSpoolTest, AFullSpoolRefusesAndCountsAndTakesRecordsAgainOnceShipped) {
  const size_t frame = FrameUsageRecord(Record(1)).size();
  auto spool = Open(/*max_bytes=*/frame * 3 + frame / 2);
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(spool->Append(Record(i)));
  EXPECT_FALSE(spool->Append(Record(4)));
  EXPECT_EQ(spool->stats().dropped, 1u);
  EXPECT_TRUE(spool->Full());
  spool->Flush();
  auto next = spool->NextSealed();
  ASSERT_TRUE(next.ok() && next->has_value());
  ASSERT_TRUE(spool->Remove(**next).ok());
  EXPECT_FALSE(spool->Full());
  EXPECT_TRUE(spool->Append(Record(5)));
}

// A segment the control plane refused is set aside as bad-<n>.log: never shipped again, but on
// disk, so it counts toward the bound, after a restart too, until an operator deletes it.
TEST_F(UsageSpoolTest, QuarantinedSegmentsCountTowardTheBoundUntilDeleted) {
  const size_t frame = FrameUsageRecord(Record(1)).size();
  const size_t max_bytes = frame * 3 + frame / 2;
  {
    auto spool = Open(max_bytes);
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(spool->Append(Record(i)));
    spool->Flush();
    auto next = spool->NextSealed();
    ASSERT_TRUE(next.ok() && next->has_value());
    absl::StatusOr<std::string> bad = spool->Quarantine(**next);
    ASSERT_TRUE(bad.ok()) << bad.status();
    EXPECT_EQ(*bad, absl::StrFormat("%s/bad-%020d.log", dir_, (*next)->sequence));
    EXPECT_EQ(spool->stats().quarantined_bytes, 2 * frame);
    EXPECT_EQ(spool->stats().bytes, 2 * frame);
    // Not offered to the shipper again.
    auto after = spool->NextSealed();
    ASSERT_TRUE(after.ok());
    EXPECT_FALSE(after->has_value());
    // Room for one more record only: the quarantined two take the rest.
    EXPECT_TRUE(spool->Append(Record(3)));
    EXPECT_FALSE(spool->Append(Record(4)));
    EXPECT_EQ(spool->stats().dropped, 1u);
    spool->Flush();
    auto third = spool->NextSealed();
    ASSERT_TRUE(third.ok() && third->has_value());
    ASSERT_TRUE(spool->Remove(**third).ok());
  }
  // A restart finds the quarantined segment and counts it.
  auto spool = Open(max_bytes);
  EXPECT_EQ(spool->stats().quarantined_bytes, 2 * frame);
  EXPECT_EQ(spool->stats().bytes, 2 * frame);
  EXPECT_EQ(spool->stats().recovered, 0u);  // not shipped again
  EXPECT_TRUE(spool->Append(Record(5)));
  EXPECT_FALSE(spool->Append(Record(6)));
  EXPECT_TRUE(spool->Full());
  // New segments never reuse the quarantined one's sequence.
  spool->Flush();
  auto fifth = spool->NextSealed();
  ASSERT_TRUE(fifth.ok() && fifth->has_value());
  ASSERT_TRUE(spool->Remove(**fifth).ok());
  EXPECT_EQ(Files().size(), 1u);
  // The operator deletes it; the next look for work notices, and the room is back.
  for (const std::string& name : Files()) std::filesystem::remove(dir_ + "/" + name);
  ASSERT_TRUE(spool->NextSealed().ok());
  EXPECT_EQ(spool->stats().quarantined_bytes, 0u);
  EXPECT_EQ(spool->stats().bytes, 0u);
  EXPECT_FALSE(spool->Full());
  for (int i = 7; i <= 9; ++i) EXPECT_TRUE(spool->Append(Record(i)));
}

TEST_F(UsageSpoolTest, AfterFlushReturnsEveryRecordAppendedBeforeItIsOnDiskAndSealed) {
  auto spool = Open();
  // Threads append and flush at once; each checks its own records after its Flush.
  std::vector<std::thread> threads;
  std::atomic<int> missing{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        std::set<std::string> mine;
        for (int i = 0; i < 5; ++i) {
          usage::v1::UsageRecord r = Record(i);
          r.set_request_id(absl::StrCat("t", t, "-r", round, "-", i));
          mine.insert(r.request_id());
          ASSERT_TRUE(spool->Append(r));
        }
        spool->Flush();
        std::set<std::string> sealed;
        for (const auto& e : std::filesystem::directory_iterator(dir_)) {
          const std::string name = e.path().filename().string();
          if (name.rfind("seg-", 0) != 0) continue;
          std::ifstream in(e.path(), std::ios::binary);
          std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          // Frames: 4-byte length, 4-byte CRC, record.
          for (size_t pos = 0; pos + 8 <= data.size();) {
            uint32_t len = 0;
            for (int b = 0; b < 4; ++b) {
              len |= static_cast<uint32_t>(static_cast<unsigned char>(data[pos + b])) << (8 * b);
            }
            usage::v1::UsageRecord r;
            if (pos + 8 + len > data.size() || !r.ParseFromArray(data.data() + pos + 8, len)) break;
            sealed.insert(r.request_id());
            pos += 8 + len;
          }
        }
        for (const std::string& id : mine) {
          if (!sealed.contains(id)) ++missing;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(spool->stats().durable, 4u * 20 * 5);
}

TEST_F(UsageSpoolTest, ASecondProcessCannotOpenASpoolInUse) {
  auto spool = Open();
  UsageSpool::Options options;
  options.dir = dir_;
  auto second = UsageSpool::Open(options, clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST_F(UsageSpoolTest, ARestartKeepsWhatWasNotShipped) {
  {
    auto spool = Open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->Append(Record(i)));
  }  // the destructor writes, fsyncs and seals what was queued
  auto spool = Open();
  EXPECT_EQ(spool->stats().recovered, 5u);
  auto next = spool->NextSealed();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->records.size(), 5u);
}

}  // namespace
}  // namespace turnpike
