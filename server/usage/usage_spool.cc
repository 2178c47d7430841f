#include "server/usage/usage_spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/thread_name.h"
#include "server/usage/usage_spool_files.h"

namespace turnpike {

using usage_spool_files::Errno;
using usage_spool_files::FrameInto;
using usage_spool_files::ListSegments;
using usage_spool_files::ParseFrames;
using usage_spool_files::QuarantinedBytes;
using usage_spool_files::ReadFile;
using usage_spool_files::SegmentName;
using usage_spool_files::SyncDir;

UsageSpool::UsageSpool(Options options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

absl::StatusOr<std::unique_ptr<UsageSpool>> UsageSpool::Open(Options options, Clock& clock) {
  if (options.dir.empty()) return absl::InvalidArgumentError("usage spool: no directory given");
  if (mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno("usage spool: cannot create", options.dir);
  }
  std::unique_ptr<UsageSpool> spool(new UsageSpool(std::move(options), clock));
  // One gateway per spool: a second writer would interleave segments.
  const std::string lock_path = absl::StrCat(spool->options_.dir, "/LOCK");
  spool->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (spool->lock_fd_ < 0) return Errno("usage spool: cannot open", lock_path);
  if (flock(spool->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("usage spool ", spool->options_.dir, " is in use by another process"));
  }
  if (absl::Status s = spool->Recover(); !s.ok()) return s;
  spool->writer_ = std::thread([s = spool.get()] {
    NameThisThread("tp-usage-spool");
    s->Run();
  });
  return spool;
}

absl::Status UsageSpool::Recover() {
  uint64_t max_sequence = 0;
  uint64_t bytes = 0;
  uint64_t recovered = 0;
  uint64_t truncated = 0;
  // An open segment is what a process that stopped (or was killed) was writing: keep its whole
  // records, cut a torn tail, and seal it.
  for (const auto& [sequence, name] : ListSegments(options_.dir, "open-")) {
    const std::string path = absl::StrCat(options_.dir, "/", name);
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok()) return data.status();
    const size_t valid = ParseFrames(*data, nullptr);
    if (valid < data->size()) {
      truncated += data->size() - valid;
      if (truncate(path.c_str(), static_cast<off_t>(valid)) != 0) return Errno("truncate", path);
    }
    if (valid == 0) {
      unlink(path.c_str());
      continue;
    }
    const std::string sealed = absl::StrCat(options_.dir, "/", SegmentName("seg", sequence));
    if (rename(path.c_str(), sealed.c_str()) != 0) return Errno("rename", path);
  }
  for (const auto& [sequence, name] : ListSegments(options_.dir, "seg-")) {
    const std::string path = absl::StrCat(options_.dir, "/", name);
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok()) return data.status();
    std::vector<usage::v1::UsageRecord> records;
    ParseFrames(*data, &records);
    recovered += records.size();
    bytes += data->size();
    max_sequence = std::max(max_sequence, sequence);
  }
  // Segments set aside by an earlier process are still on disk: they count toward the bound.
  const uint64_t quarantined = QuarantinedBytes(options_.dir);
  for (const auto& [sequence, name] : ListSegments(options_.dir, "bad-")) {
    max_sequence = std::max(max_sequence, sequence);
  }
  if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
  next_sequence_.store(max_sequence + 1);
  absl::MutexLock lock(&mu_);
  stats_.recovered = recovered;
  stats_.truncated_bytes = truncated;
  stats_.bytes = bytes + quarantined;
  stats_.quarantined_bytes = quarantined;
  return absl::OkStatus();
}

UsageSpool::~UsageSpool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (open_fd_ >= 0) close(open_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

bool UsageSpool::Append(const usage::v1::UsageRecord& record) {
  // Framed in a buffer the calling thread keeps, so a request allocates nothing here.
  thread_local std::string frame;
  FrameInto(record, frame);
  const absl::Time now = clock_.MonotonicNow();
  absl::MutexLock lock(&mu_);
  if (stopping_ || stats_.bytes + frame.size() > options_.max_bytes) {
    ++stats_.dropped;
    refused_since_removal_ = true;
    return false;
  }
  if (queued_.empty()) oldest_queued_ = now;
  queued_.append(frame);
  ++queued_records_;
  ++stats_.appended;
  stats_.bytes += frame.size();
  return true;
}

bool UsageSpool::Full() const {
  absl::MutexLock lock(&mu_);
  // Full once a record was refused (until something is shipped), or when the last tenth (at
  // most 64 KiB) is all that is left, so that requests already running still find room.
  const uint64_t headroom = std::min<uint64_t>(64 << 10, options_.max_bytes / 10);
  return refused_since_removal_ || stats_.bytes + headroom > options_.max_bytes;
}

void UsageSpool::Flush() {
  absl::MutexLock lock(&mu_);
  // A ticket per request: a pass of the writer that took its records before this call must not
  // count as this flush.
  const uint64_t ticket = ++flush_requests_;
  auto done = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return flushed_through_ >= ticket || stopping_;
  };
  mu_.Await(absl::Condition(&done));
}

void UsageSpool::Run() {
  while (true) {
    std::string frames;
    size_t records = 0;
    uint64_t flush_ticket = 0;  // the newest flush request this pass serves, if any
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      // Sleep until there is something to write (or a flush, or a stop); an open segment that
      // grows old meanwhile is sealed so its records ship.
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queued_.empty() || flush_requests_ > flushed_through_ || stopping_;
      };
      const absl::Time seal_at =
          open_fd_ >= 0 ? open_since_ + options_.seal_after : absl::InfiniteFuture();
      clock_.AwaitWithDeadline(mu_, absl::Condition(&has_work), seal_at);
      // Group commit: let records gather until the oldest has waited `commit_interval`.
      if (!queued_.empty() && flush_requests_ == flushed_through_ && !stopping_) {
        auto urgent = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return flush_requests_ > flushed_through_ || stopping_;
        };
        clock_.AwaitWithDeadline(mu_, absl::Condition(&urgent),
                                 oldest_queued_ + options_.commit_interval);
      }
      frames.swap(queued_);
      records = queued_records_;
      queued_records_ = 0;
      oldest_queued_ = absl::InfiniteFuture();
      if (flush_requests_ > flushed_through_) flush_ticket = flush_requests_;
      stop = stopping_;
    }
    absl::Status status;
    if (!frames.empty()) status = WriteFrames(frames);
    const bool seal_due =
        open_fd_ >= 0 && (open_bytes_ >= options_.segment_bytes ||
                          clock_.MonotonicNow() >= open_since_ + options_.seal_after);
    if (status.ok() && (seal_due || flush_ticket != 0 || stop)) status = SealOpenSegment();
    absl::MutexLock lock(&mu_);
    if (!status.ok()) {
      // Keep the records: put them back in front of what was queued since, and try again.
      ++stats_.write_errors;
      frames.append(queued_);
      queued_.swap(frames);
      queued_records_ += records;
      if (oldest_queued_ == absl::InfiniteFuture()) oldest_queued_ = clock_.MonotonicNow();
    } else {
      stats_.durable += records;
    }
    if (flush_ticket != 0) flushed_through_ = std::max(flushed_through_, flush_ticket);
    // At a stop everything queued before it was written (or, on a disk that refuses writes,
    // stays unwritten: the error is counted).
    if (stop) return;
  }
}

absl::Status UsageSpool::WriteFrames(const std::string& frames) {
  if (open_fd_ < 0) {
    open_sequence_ = next_sequence_.fetch_add(1);
    const std::string path = absl::StrCat(options_.dir, "/", SegmentName("open", open_sequence_));
    open_fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (open_fd_ < 0) return Errno("open", path);
    open_bytes_ = 0;
    open_since_ = clock_.MonotonicNow();
  }
  size_t done = 0;
  while (done < frames.size()) {
    const ssize_t n = write(open_fd_, frames.data() + done, frames.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", options_.dir);
    }
    done += static_cast<size_t>(n);
  }
  if (fdatasync(open_fd_) != 0) return Errno("fdatasync", options_.dir);
  open_bytes_ += frames.size();
  return absl::OkStatus();
}

absl::Status UsageSpool::SealOpenSegment() {
  if (open_fd_ < 0) return absl::OkStatus();
  close(open_fd_);
  open_fd_ = -1;
  const std::string from = absl::StrCat(options_.dir, "/", SegmentName("open", open_sequence_));
  const std::string to = absl::StrCat(options_.dir, "/", SegmentName("seg", open_sequence_));
  if (rename(from.c_str(), to.c_str()) != 0) return Errno("rename", from);
  open_since_ = absl::InfiniteFuture();
  return SyncDir(options_.dir);
}

absl::StatusOr<std::optional<UsageSpool::Segment>> UsageSpool::NextSealed() {
  const uint64_t quarantined = QuarantinedBytes(options_.dir);
  {
    absl::MutexLock lock(&mu_);
    if (quarantined != stats_.quarantined_bytes) {
      // An operator deleted (or, unexpectedly, added) quarantined segments.
      stats_.bytes = stats_.bytes - std::min(stats_.bytes, stats_.quarantined_bytes) + quarantined;
      if (quarantined < stats_.quarantined_bytes) refused_since_removal_ = false;
      stats_.quarantined_bytes = quarantined;
    }
  }
  const auto segments = ListSegments(options_.dir, "seg-");
  if (segments.empty()) return std::optional<Segment>();
  Segment segment;
  segment.sequence = segments.front().first;
  segment.path = absl::StrCat(options_.dir, "/", segments.front().second);
  absl::StatusOr<std::string> data = ReadFile(segment.path);
  if (!data.ok()) return data.status();
  ParseFrames(*data, &segment.records);
  return std::optional<Segment>(std::move(segment));
}

absl::Status UsageSpool::Remove(const Segment& segment) {
  struct stat st;
  const uint64_t size = stat(segment.path.c_str(), &st) == 0 ? st.st_size : 0;
  if (unlink(segment.path.c_str()) != 0) return Errno("unlink", segment.path);
  if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  stats_.removed += segment.records.size();
  refused_since_removal_ = false;
  stats_.bytes -= std::min<uint64_t>(stats_.bytes, size);
  return absl::OkStatus();
}

absl::StatusOr<std::string> UsageSpool::Quarantine(const Segment& segment) {
  const std::string bad = absl::StrCat(options_.dir, "/", SegmentName("bad", segment.sequence));
  struct stat st;
  const uint64_t size = stat(segment.path.c_str(), &st) == 0 ? st.st_size : 0;
  if (rename(segment.path.c_str(), bad.c_str()) != 0) return Errno("rename", segment.path);
  if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  stats_.quarantined_bytes += size;  // still in `bytes`: the file is still on disk
  stats_.quarantined += segment.records.size();
  return bad;
}

UsageSpool::Stats UsageSpool::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace turnpike
