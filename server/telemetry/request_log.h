// The request log (docs/request-log.md): one JSON object per line per finished request, written
// by its own thread to stdout or to a file rotated by size. OnRequestFinished copies the event
// (without its admission ticket) into a bounded queue and returns: a full queue drops the line
// and counts it, so a gRPC or transport thread never waits for disk. Hashing and redacting the
// request's and reply's text, as the route's content policy asks, happen on the writer thread.
// Thread-safe.
#ifndef TURNPIKE_SERVER_TELEMETRY_REQUEST_LOG_H_
#define TURNPIKE_SERVER_TELEMETRY_REQUEST_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/exchange/request_finished.h"

namespace turnpike {

class RequestLog final : public RequestFinishedSink {
 public:
  struct Options {
    // "stdout", or a file path (created, appended to).
    std::string path = "stdout";
    // A file is rotated before a line would take it past this size (0: never): `path` becomes
    // `path`.1, `path`.1 becomes `path`.2, ... up to `max_files` rotated files.
    int64_t max_bytes = int64_t{100} << 20;
    int max_files = 5;
    // Lines waiting for the writer; beyond it lines are dropped (counted).
    size_t queue_capacity = 8192;
    // CONTENT_POLICY_REDACTED: the most bytes of request text, and of reply text, per line.
    size_t excerpt_max_bytes = 2048;
  };

  struct Stats {
    int64_t written = 0;       // lines written
    int64_t dropped = 0;       // lines dropped because the queue was full
    int64_t write_errors = 0;  // failed writes, opens or rotations
    int64_t rotations = 0;
  };

  // INVALID_ARGUMENT for bad options; the OS error when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<RequestLog>> Create(Options options);
  // Writes what is queued, then stops the writer.
  ~RequestLog() override;

  void OnRequestFinished(const RequestFinished& event) override;
  // Waits until every line accepted before the call is written (tests, shutdown).
  void Flush();
  Stats stats() const;

  // The line for `event` (no newline): pure, used by the writer and by tests.
  static std::string FormatLine(const RequestFinished& event, size_t excerpt_max_bytes);

 private:
  RequestLog(Options options, int fd, int64_t size);
  void WriterLoop();
  void Write(const std::string& bytes);
  void Rotate();

  // Constant after construction.
  const Options options_;
  const bool to_stdout_;

  mutable absl::Mutex mu_;
  std::deque<RequestFinished> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;  // lines queued so far
  int64_t handled_ ABSL_GUARDED_BY(mu_) = 0;   // of those, written or failed
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // Writer-thread state.
  int fd_;
  int64_t file_bytes_;

  std::thread writer_;  // last: starts once everything above is set
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_TELEMETRY_REQUEST_LOG_H_
