// UsageSpool keeps every finished request's usage record on the gateway's disk until the control
// plane has acknowledged it (docs/usage.md, "On the gateway"). Append() only queues the record
// in memory, so request threads never touch the disk; a writer thread appends the queued records
// to the open segment file and fsyncs them together every `commit_interval` (group commit). A
// segment is sealed (renamed `seg-<n>.log`) when it is large or old enough; the shipper reads
// sealed segments in order and removes each one once every record in it was acknowledged. On
// start the spool recovers what the last process left: an unsealed segment is cut at its last
// whole, checksummed record and sealed.
//
// The spool is bounded (`max_bytes`, on disk and queued together). When it is full, Append()
// refuses the record and counts it; the gateway decides whether to keep serving (the default)
// or to refuse new requests (`Full()`). Segments the control plane refused are set aside as
// `bad-<n>.log` (Quarantine) for an operator to inspect; they stay on disk, so they count toward
// the bound, across restarts too, until the operator deletes them (seen at the next NextSealed).
//
// Thread-safe: Append() and Full() from any thread; NextSealed() and Remove() from one shipper
// thread.
#ifndef TURNPIKE_SERVER_USAGE_USAGE_SPOOL_H_
#define TURNPIKE_SERVER_USAGE_USAGE_SPOOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike {

class UsageSpool {
 public:
  struct Options {
    std::string dir;  // created if missing (mode 0700)
    // How long an appended record may wait before it is written and fsynced.
    absl::Duration commit_interval = absl::Milliseconds(20);
    // A segment is sealed (made available to the shipper) at this size...
    size_t segment_bytes = 1 << 20;
    // ...or when its oldest record is this old.
    absl::Duration seal_after = absl::Milliseconds(500);
    // Bytes on disk plus bytes queued; beyond it Append() refuses records.
    size_t max_bytes = 256 << 20;
  };

  struct Segment {
    uint64_t sequence = 0;
    std::string path;
    std::vector<usage::v1::UsageRecord> records;
  };

  struct Stats {
    uint64_t appended = 0;           // records accepted by Append()
    uint64_t durable = 0;            // records written and fsynced
    uint64_t dropped = 0;            // records refused because the spool was full
    uint64_t removed = 0;            // records removed after acknowledgement
    uint64_t recovered = 0;          // records found on disk at start
    uint64_t truncated_bytes = 0;    // torn tail bytes cut at start
    uint64_t write_errors = 0;       // failed writes or fsyncs (the records stay queued)
    uint64_t bytes = 0;              // on disk and queued now (quarantined segments included)
    uint64_t quarantined_bytes = 0;  // in bad-<n>.log segments, part of `bytes`
    uint64_t quarantined = 0;        // records set aside by Quarantine() since start
  };

  // Opens (and recovers) the spool in `options.dir` and starts the writer thread. `clock` drives
  // the commit and seal intervals and must outlive the spool.
  static absl::StatusOr<std::unique_ptr<UsageSpool>> Open(Options options, Clock& clock);
  // Stops the writer after writing and fsyncing everything queued.
  ~UsageSpool();

  // Queues `record` for the next group commit. False (and counted) if the spool is full.
  bool Append(const usage::v1::UsageRecord& record);
  // True while the spool is at its bound: it refused a record since it last shipped one, or only
  // its last tenth (at most 64 KiB) is left.
  bool Full() const;
  // Writes and fsyncs everything queued now, and seals the open segment (tests, shutdown).
  void Flush();

  // The oldest sealed segment, or nullopt if none is sealed. Reads it from disk each time, and
  // recounts the quarantined segments' bytes (an operator may have deleted some).
  absl::StatusOr<std::optional<Segment>> NextSealed();
  // Deletes a segment whose records were all acknowledged.
  absl::Status Remove(const Segment& segment);
  // Sets aside a segment the control plane refused as `bad-<n>.log` in the spool's directory
  // (returned), never to be shipped again. Its bytes still count toward the bound.
  absl::StatusOr<std::string> Quarantine(const Segment& segment);

  Stats stats() const;
  // Records appended or recovered and neither acknowledged nor set aside yet.
  static uint64_t PendingRecords(const Stats& s) {
    const uint64_t in = s.appended + s.recovered;
    const uint64_t out = s.removed + s.quarantined;
    return in > out ? in - out : 0;
  }

 private:
  UsageSpool(Options options, Clock& clock);
  absl::Status Recover();
  void Run();
  // Writes `frames` to the open segment (opening one if needed) and fsyncs it.
  absl::Status WriteFrames(const std::string& frames);
  absl::Status SealOpenSegment();

  // Constant after construction.
  const Options options_;
  Clock& clock_;

  mutable absl::Mutex mu_;
  std::string queued_ ABSL_GUARDED_BY(mu_);  // framed records waiting for the writer
  size_t queued_records_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time oldest_queued_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  uint64_t flush_requests_ ABSL_GUARDED_BY(mu_) = 0;   // Flush() calls so far
  uint64_t flushed_through_ ABSL_GUARDED_BY(mu_) = 0;  // the newest request a pass completed
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool refused_since_removal_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;

  int lock_fd_ = -1;  // holds the directory's flock for the spool's life

  // Writer-thread state.
  int open_fd_ = -1;
  uint64_t open_sequence_ = 0;
  size_t open_bytes_ = 0;
  absl::Time open_since_ = absl::InfiniteFuture();
  std::atomic<uint64_t> next_sequence_{1};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_USAGE_SPOOL_H_
